#!/usr/bin/env python3
"""Speed perturbation of a Kaldi data dir (ESPnet asr.sh stage 2), like ``sox speed``.

Each factor f != 1 resamples every utterance so that it plays f times faster (pitch moves
with it) and adds it as ``sp<f>-<utt>`` with speaker ``sp<f>-<spk>``; f = 1 keeps the
originals. Audio is written under ``<dst>/data``. The work is
:func:`espnet_hatiam.data.datadir.speed_perturb`.

    python -m espnet_hatiam.bin.speed_perturb --src data/train --dst data/train_sp --factors 0.9 1.0 1.1
"""

import argparse
import logging
from pathlib import Path

from espnet_hatiam.errors import one_line_errors
from espnet_hatiam.data.datadir import speed_perturb


def main(cmd=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    parser.add_argument("--factors", type=float, nargs="+", required=True)
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=1)
    args = parser.parse_args(cmd)
    if any(f <= 0 for f in args.factors):
        parser.error(f"--factors must be positive, got {args.factors}")
    with one_line_errors(parser.prog):
        speed_perturb(args.src, args.dst, args.factors, args.fs, args.nj)


if __name__ == "__main__":
    main()
