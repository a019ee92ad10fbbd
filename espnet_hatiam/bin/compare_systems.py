#!/usr/bin/env python3
r"""Compare systems, seeds and decoding modes of several experiments in one markdown file (and a figure).

    python -m espnet_hatiam.bin.compare_systems --exps exp/asr_* --ref_dir dump/raw --sets "train_dev test" \
        --pairs "train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att train_hat_iam@dual_0.95:train_hat_iam@beam" \
        --plot images/compare.png --plot_system train_hat_iam --plot_set test --out COMPARE.md

Experiment dirs are ``asr_<system>_<bpeN|char>_seed<N>``; a pair side is ``<system>`` (its --main_mode, or its
only mode) or ``<system>@<mode>``.
"""

import argparse
import os
import sys
from pathlib import Path

from espnet_hatiam.scoring.compare import EXP_NAME, collect, plot_speed_accuracy, report
from espnet_hatiam.scoring.learning_curves import curve_table, plot_learning_curves, read_curve

CURVES_NOTE = (
    "Validation loss and WER after each epoch, as each model reports them in its train.log (the transducers: "
    "greedy decoding; ESPnet CTC/attention: its attention decoder's teacher-forced output, with accuracy): "
    "each curve says whether its system converged within the budget, not which system is better.\n\n"
)


def learning_curves(exps, png: Path, out: Path) -> str:
    """The learning-curve section of the report, and its figure at ``png``."""
    curves = {}
    for exp in exps:
        match = EXP_NAME.fullmatch(exp.name)
        if match and (exp / "train.log").exists():
            curves[f"{match['system']} seed {match['seed']}"] = read_curve(exp / "train.log")
    png.parent.mkdir(parents=True, exist_ok=True)
    plot_learning_curves(curves, png)
    return (f"\n## Learning curves\n\n{CURVES_NOTE}{curve_table(curves, (5, 10, 15, 20))}\n"
            f"![learning curves]({os.path.relpath(png, out.parent)})\n")


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exps", type=Path, nargs="+", required=True, help="experiment dirs (others are skipped)")
    parser.add_argument("--ref_dir", type=Path, default=Path("dump/raw"), help="references at <ref_dir>/<set>/text")
    parser.add_argument("--sets", required=True, help="space-separated set names")
    parser.add_argument("--model", default="valid.wer.ave", help="checkpoint tag of decode_<mode>_<model>")
    parser.add_argument("--main_mode", default="beam", help="mode of the seed table and of pair sides without @")
    parser.add_argument("--pairs", default="", help="space-separated <system>[@<mode>]:<system>[@<mode>]")
    parser.add_argument("--num_samples", type=int, default=10000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--plot", type=Path, default=None, help="speed/accuracy PNG")
    parser.add_argument("--plot_system", default=None)
    parser.add_argument("--plot_set", default="test")
    parser.add_argument("--curves", type=Path, default=None,
                        help="learning-curve PNG (validation loss and WER per epoch, from each train.log)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(cmd)
    if args.plot and not args.plot_system:
        parser.error("--plot needs --plot_system")
    sets = args.sets.split()
    try:
        decodings = collect(args.exps, sets, args.model)
        link = None
        if args.plot:
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            plot_speed_accuracy(decodings, args.plot_system, args.plot_set, args.plot)
            link = os.path.relpath(args.plot, args.out.parent)
        text = report(decodings, sets, args.pairs.split(), args.ref_dir, args.main_mode, args.num_samples,
                      args.seed, link)
        if args.curves:
            text += learning_curves(args.exps, args.curves, args.out)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
