#!/usr/bin/env python3
"""Download a corpus archive, verify its checksum and extract it; skipped when already there.

    python -m espnet_hatiam.data.download --url URL --sha256 HEX --dest downloads [--check DIR]

``--check`` names a path inside the extracted archive (relative to ``--dest``): when it
exists nothing is downloaded. ``file://`` URLs work, which is how the tests use it. A
checksum mismatch deletes the partial archive and exits non-zero, naming both digests.
"""

import argparse
import hashlib
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Optional


class ChecksumError(ValueError):
    """The downloaded archive's digest is not the expected one."""


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_and_extract(url: str, dest: Path, sha256: Optional[str], check: Optional[str] = None) -> Path:
    """Fetch ``url`` into ``dest``, verify ``sha256`` (when given), extract; return the archive path."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1]))
    if check is not None and (dest / check).exists():
        print(f"{dest / check} exists: nothing to download")
        return archive
    if not archive.exists():
        print(f"downloading {url} -> {archive}")
        partial = archive.with_name(archive.name + ".part")
        with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        partial.rename(archive)
    if sha256:
        actual = sha256sum(archive)
        if actual != sha256.lower():
            archive.unlink()
            raise ChecksumError(f"{archive}: sha256 {actual}, expected {sha256} (deleted; download again)")
    print(f"extracting {archive} -> {dest}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return archive


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--sha256", default=None, help="expected digest of the archive")
    parser.add_argument("--check", default=None, help="path under --dest whose presence means done")
    args = parser.parse_args(cmd)
    try:
        download_and_extract(args.url, args.dest, args.sha256, args.check)
    except (ChecksumError, OSError, tarfile.TarError) as error:
        sys.exit(f"{parser.prog}: {error}")


if __name__ == "__main__":
    main()
