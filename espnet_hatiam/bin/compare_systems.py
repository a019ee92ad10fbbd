#!/usr/bin/env python3
r"""Compare systems, seeds and decoding modes of several experiments in one markdown file (and a figure).

    python -m espnet_hatiam.bin.compare_systems --records results/asr_* --sets "train_dev test" \
        --pairs "train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att train_hat_iam@dual_0.95:train_hat_iam@beam" \
        --plot images/compare.png --plot_system train_hat_iam --plot_set test --out COMPARE.md

Records are the committed decode records of stage 13 (``results/asr_<system>_<bpeN|char>_seed<N>``,
espnet_hatiam.scoring.records): systems trained in different jobs or on different machines compare, and each
record's commit is in the table (a record of other code than the comparison's is flagged). A pair side is
``<system>`` (its --main_mode, or its only mode) or ``<system>@<mode>``.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

from espnet_hatiam.scoring.compare import collect, parse_criteria, plot_speed_accuracy, report
from espnet_hatiam.scoring.layout import parse_exp
from espnet_hatiam.scoring.learning_curves import curve_table, plot_learning_curves
from espnet_hatiam.scoring.records import provenance, provenance_table
from espnet_hatiam.scoring.setup import decoded, describe_systems, environment, set_sizes

CURVES_NOTE = (
    "Validation loss and WER after each epoch, as each model reported them in its train.log (recorded in "
    "learning_curve.json; the transducers: "
    "greedy decoding; ESPnet CTC/attention: its attention decoder's teacher-forced output, with accuracy): "
    "each curve says whether its system converged within the budget, not which system is better.\n\n"
)


def learning_curves(records, png: Path, out: Path) -> str:
    """The learning-curve section of the report, and its figure at ``png``."""
    curves = {}
    for record in records:
        parsed = parse_exp(record)
        if parsed and (record / "learning_curve.json").exists() and decoded(record):
            curves[f"{parsed[0]} seed {parsed[2]}"] = json.loads((record / "learning_curve.json").read_text())
    png.parent.mkdir(parents=True, exist_ok=True)
    plot_learning_curves(curves, png)
    return (f"\n## Learning curves\n\n{CURVES_NOTE}{curve_table(curves, (5, 10, 15, 20))}\n"
            f"![learning curves]({os.path.relpath(png, out.parent)})\n")


MODEL_TITLES = {"valid.wer.ave": "Average of the {n} best checkpoints by validation WER",
                "valid.acc.ave": "Average of the {n} best checkpoints by validation accuracy",
                "valid.wer.best": "Single best checkpoint by validation WER"}


def model_section(text: str, model: str, exps, criteria=()) -> str:
    """One model's report under a ``## <what the model is>`` heading, its own headings one level down."""
    keep = {yaml_value(exp / "config.yaml", "keep_nbest_models") for exp in exps} - {None}
    title = MODEL_TITLES.get(model, model).format(n=" or ".join(map(str, sorted(keep))) or "n")
    title += "".join(f"; {pattern}: `{criterion}.{model.rsplit('.', 1)[-1]}`" for pattern, criterion in criteria)
    body = "\n".join("#" + line if line.startswith("## ") else line for line in text.splitlines()[1:])
    return f"## {title} (`{model}.pth`)\n{body}\n"


def yaml_value(path: Path, key: str):
    """A top-level key of a yaml file, None when the file or the key is missing."""
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return (yaml.safe_load(f) or {}).get(key)


def header(title: str, records, setup_sets, notes) -> str:
    """Title, environment, data sizes, each system's setup (from its config.yaml), the recipe's notes and
    where each record comes from."""
    lines = [f"# {title}", "", f"- made on {environment()}"]
    if setup_sets:
        lines.append(f"- data: {set_sizes(records, setup_sets)}")
    lines += [f"- {line}" for line in describe_systems(records)]
    lines += [f"- {note}" for note in notes]
    lines += ["", "Decode records (results/): the code and machine each model was trained and decoded with.", "",
              provenance_table(list(records), str(provenance()["commit"]))]
    return "\n".join(lines) + "\n\n"


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, nargs="+", required=True,
                        help="decode record dirs results/asr_<system>_<tag>_seed<N> (other names are skipped)")
    parser.add_argument("--sets", required=True, help="space-separated set names")
    parser.add_argument("--models", default="valid.wer.ave",
                        help="space-separated checkpoint tags of decode_<mode>_<model>: the first gets every table, "
                             "the others the main mode's (pairs without @)")
    parser.add_argument("--criteria", default="",
                        help="space-separated <system glob>=<criterion> (e.g. 'train_espnet_*=valid.loss'): matching "
                             "systems are read from the checkpoints of that criterion in each --models role")
    parser.add_argument("--main_mode", default="beam", help="mode of the seed table and of pair sides without @")
    parser.add_argument("--pairs", default="", help="space-separated <system>[@<mode>]:<system>[@<mode>]")
    parser.add_argument("--num_samples", type=int, default=10000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--plot", type=Path, default=None, help="speed/accuracy PNG")
    parser.add_argument("--plot_system", default=None)
    parser.add_argument("--plot_set", default="test")
    parser.add_argument("--curves", type=Path, default=None,
                        help="learning-curve PNG (validation loss and WER per epoch, from each train.log)")
    parser.add_argument("--title", default="System comparison")
    parser.add_argument("--setup_sets", default="", help="sets whose sizes the header gives (e.g. train, dev, test)")
    parser.add_argument("--tune_set", default=None, help="set on which the dual threshold is chosen (e.g. dev)")
    parser.add_argument("--note", action="append", default=[], help="a header line of the recipe's (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(cmd)
    if args.plot and not args.plot_system:
        parser.error("--plot needs --plot_system")
    sets = args.sets.split()
    pairs = args.pairs.split()
    try:
        criteria = parse_criteria(args.criteria)
    except ValueError as e:
        parser.error(f"--{e}")
    try:
        text = header(args.title, args.records, args.setup_sets.split(), args.note)
        for index, model in enumerate(args.models.split()):
            decodings = collect(args.records, sets, model, criteria)
            link = None
            if args.plot and index == 0:
                args.plot.parent.mkdir(parents=True, exist_ok=True)
                plot_speed_accuracy(decodings, args.plot_system, args.plot_set, args.plot)
                link = os.path.relpath(args.plot, args.out.parent)
            model_pairs = pairs if index == 0 else [p for p in pairs if "@" not in p]
            text += model_section(report(decodings, sets, model_pairs, args.main_mode,
                                         args.num_samples, args.seed, link,
                                         args.tune_set if index == 0 else None), model, args.records,
                                  criteria)
        if args.curves:
            text += learning_curves(args.records, args.curves, args.out)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
