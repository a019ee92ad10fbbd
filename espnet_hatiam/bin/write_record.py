#!/usr/bin/env python3
"""Write the committed decode record of one experiment (espnet_hatiam.scoring.records): its scored decodings'
hypotheses, per-utterance errors and counters, training config, learning curve, commit and machine.

    python -m espnet_hatiam.bin.write_record --exp exp/asr_train_hat_iam_bpe300_seed2024 --ref_dir dump/raw \\
        --out results/asr_train_hat_iam_bpe300_seed2024
"""

import argparse
import sys
from pathlib import Path

from espnet_hatiam.scoring.records import write_record


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="experiment dir with scored decode_*/<set>")
    parser.add_argument("--ref_dir", type=Path, required=True, help="references at <ref_dir>/<set>/text")
    parser.add_argument("--out", type=Path, required=True, help="the record dir (tracked, e.g. results/<exp name>)")
    args = parser.parse_args(cmd)
    try:
        count = write_record(args.exp, args.ref_dir, args.out)
    except (OSError, ValueError) as e:
        sys.exit(f"write_record: {e}")
    print(f"{args.out}: {count} decodings recorded")


if __name__ == "__main__":
    main()
