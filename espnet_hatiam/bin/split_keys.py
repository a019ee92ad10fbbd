#!/usr/bin/env python3
"""Split a Kaldi scp into contiguous parts, one per decoding job (like ESPnet's split_scp.pl).

    python -m espnet_hatiam.bin.split_keys --scp dump/raw/test/wav.scp --out keys.1.scp keys.2.scp
"""

import argparse


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scp", required=True)
    parser.add_argument("--out", nargs="+", required=True)
    args = parser.parse_args(cmd)
    with open(args.scp, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    if len(lines) < len(args.out):
        raise SystemExit(f"{args.scp}: {len(lines)} utterances cannot fill {len(args.out)} jobs; use fewer jobs")
    size, extra = divmod(len(lines), len(args.out))
    start = 0
    for n, path in enumerate(args.out):
        end = start + size + (n < extra)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines[start:end])
        start = end


if __name__ == "__main__":
    main()
