#!/usr/bin/env python3
"""Copy a Kaldi-style data dir to a dump dir with audio as 16-bit WAV at one sampling rate.

Writes ``<dst>/{wav.scp,text,utt2spk,spk2utt,utt2num_samples}`` and ``<dst>/data/*.wav``.
With ``--min_duration/--max_duration`` it also drops utterances that are too short, too
long or have empty text (ESPnet asr.sh stage 4), and logs how many it dropped.
Re-running over a finished dump rewrites nothing (audio files already present are kept).
The work is :func:`espnet_hatiam.data.datadir.format_data`.

Example:
    python -m espnet_hatiam.bin.format_data --src data/train --dst dump/raw/train --fs 16000 --nj 2
"""

import argparse
import logging
from pathlib import Path

from espnet_hatiam.errors import one_line_errors
from espnet_hatiam.data.datadir import format_data


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="Kaldi-style data dir")
    parser.add_argument("--dst", type=Path, required=True, help="output dump dir")
    parser.add_argument("--fs", type=int, default=16000, help="output sampling rate")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--min_duration", type=float, default=None, help="drop shorter utterances (s)")
    parser.add_argument("--max_duration", type=float, default=None, help="drop longer utterances (s)")
    return parser


def main(cmd=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    parser = get_parser()
    args = parser.parse_args(cmd)
    with one_line_errors(parser.prog):
        format_data(args.src, args.dst, args.fs, args.nj, args.min_duration, args.max_duration)


if __name__ == "__main__":
    main()
