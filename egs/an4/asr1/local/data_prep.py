#!/usr/bin/env python3
"""an4 -> Kaldi data dirs with ESPnet's split (egs2/an4/asr1/local/data_prep.py).

Reads ``etc/an4_{train,test}.{fileids,transcription}`` of the corpus and finds each
recording as ``wav/<fileid>.sph`` (the original NIST SPHERE release) or ``.opus`` (the
copy in ../shared); soundfile reads both. Utterance ids are ``<spk>-<utt>`` as in ESPnet
(``an251-fash-b`` -> ``fash-an251-b``), sorted; the first ``--ndev`` of train are
``train_dev``, the rest ``train_nodev``; ``test`` is the test set.

    local/data_prep.py --an4_root /path/to/an4 --out data
"""

import argparse
import re
import sys
from pathlib import Path
from typing import List, Tuple

from espnet_hatiam.data.kaldi import write_data_dir

AUDIO_EXTENSIONS = (".sph", ".opus", ".flac", ".wav")
TRANSCRIPT = re.compile(r"^(?P<words>.*?)\s*\((?P<source>[^()]+)\)\s*$")


def read_part(root: Path, part: str) -> List[Tuple[str, str, str, str]]:
    """``(utt_id, speaker, audio path, words)`` of ``part`` ("train" or "test"), sorted by id."""
    fileids = root / "etc" / f"an4_{part}.fileids"
    transcription = root / "etc" / f"an4_{part}.transcription"
    for path in (fileids, transcription):
        if not path.is_file():
            raise FileNotFoundError(f"an4: missing '{path}' (is --an4_root the corpus folder with etc/ and wav/?)")
    paths = [line.strip() for line in fileids.read_text().splitlines() if line.strip()]
    lines = [(n, line.strip()) for n, line in enumerate(transcription.read_text().splitlines(), 1) if line.strip()]
    if len(paths) != len(lines):
        raise ValueError(f"an4: {fileids} has {len(paths)} entries but {transcription} has {len(lines)}")
    rows = []
    for fileid, (number, line) in zip(paths, lines):
        match = TRANSCRIPT.match(line)
        if not match:
            raise ValueError(f"an4: {transcription}:{number}: expected 'WORDS (utt-id)', got '{line}'")
        source = match["source"]
        if Path(fileid).name != source:
            raise ValueError(f"an4: {transcription}:{number}: '{source}' does not match {fileids} entry '{fileid}'")
        words = match["words"].removeprefix("<s>").removesuffix("</s>").split()
        parts = source.split("-")
        if len(parts) != 3:
            raise ValueError(f"an4: {transcription}:{number}: utterance id '{source}' is not <utt>-<spk>-<x>")
        utt, speaker, last = parts
        rows.append((f"{speaker}-{utt}-{last}", speaker, str(find_audio(root / "wav" / fileid)), " ".join(words)))
    return sorted(rows)


def find_audio(stem: Path) -> Path:
    for extension in AUDIO_EXTENSIONS:
        candidate = stem.with_name(stem.name + extension)
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(f"an4: no audio for '{stem}' (looked for {', '.join(AUDIO_EXTENSIONS)})")


def write_dir(out: Path, rows: List[Tuple[str, str, str, str]]):
    write_data_dir(out, {
        "wav.scp": [(utt, audio) for utt, _, audio, _ in rows],
        "text": [(utt, words) for utt, _, _, words in rows],
        "utt2spk": [(utt, speaker) for utt, speaker, _, _ in rows],
    })
    print(f"{out}: {len(rows)} utterances, {len({speaker for _, speaker, _, _ in rows})} speakers")


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--an4_root", type=Path, required=True, help="corpus folder with etc/ and wav/")
    parser.add_argument("--out", type=Path, default=Path("data"))
    parser.add_argument("--ndev", type=int, default=100, help="first sorted train utterances kept for train_dev")
    args = parser.parse_args(cmd)
    try:
        train, test = read_part(args.an4_root, "train"), read_part(args.an4_root, "test")
    except (OSError, ValueError) as error:
        sys.exit(f"{parser.prog}: {error}")
    write_dir(args.out / "train_dev", train[: args.ndev])
    write_dir(args.out / "train_nodev", train[args.ndev:])
    write_dir(args.out / "test", test)


if __name__ == "__main__":
    main()
