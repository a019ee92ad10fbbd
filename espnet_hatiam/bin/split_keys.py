#!/usr/bin/env python3
"""Split a Kaldi scp into contiguous parts, one per decoding job (like ESPnet's split_scp.pl).

    python -m espnet_hatiam.bin.split_keys --scp dump/raw/test/wav.scp --out keys.1.scp keys.2.scp

The work is :func:`espnet_hatiam.data.decode_dir.split_keys`.
"""

import argparse

from espnet_hatiam.data.decode_dir import split_keys


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scp", required=True)
    parser.add_argument("--out", nargs="+", required=True)
    args = parser.parse_args(cmd)
    try:
        split_keys(args.scp, args.out)
    except ValueError as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
