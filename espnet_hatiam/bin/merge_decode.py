#!/usr/bin/env python3
"""Merge the outputs of split decoding jobs ``DIR/logdir/output.{1..N}`` into ``DIR``.

Concatenates ``*best_recog/*`` and ``utt_stats.jsonl`` and adds up ``decode_stats.json``
(times are summed over jobs: compute seconds, as in RTF). The work is
:func:`espnet_hatiam.data.decode_dir.merge_jobs`.
"""

import argparse
from pathlib import Path

from espnet_hatiam.data.decode_dir import merge_jobs


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--nj", type=int, required=True)
    args = parser.parse_args(cmd)
    merge_jobs(args.dir, args.nj)


if __name__ == "__main__":
    main()
