#!/usr/bin/env python3
"""Figures and blank synchrony for RESULTS.md, from decoding outputs only (docs/METHOD.md section 6).

Reads ``<exp>/decode_*/<test_set>/`` as stages 12-13 wrote them; no model, no audio:

- ``speed_accuracy.png``: WER against RTF of every scored decoding of the test set
  (:func:`espnet_hatiam.scoring.plots.speed_accuracy`).
- ``blank_synchrony.json`` / ``.png`` (:mod:`espnet_hatiam.scoring.synchrony`), from the first greedy
  decoding with both thresholds off (the others' shares are listed too). Without such a decoding both files
  are removed (no stale figure is linked) and a line says so.

    python -m espnet_hatiam.bin.plot_results --exp exp/asr_x --test_set test --out_dir exp/asr_x/images
"""

import argparse
import json
from pathlib import Path

from espnet_hatiam.scoring.layout import decode_dirs
from espnet_hatiam.scoring.plots import speed_accuracy
from espnet_hatiam.scoring.synchrony import (
    SYNCHRONY_FIGURE,
    SYNCHRONY_JSON,
    blank_synchrony,
    plot_synchrony,
    synchrony_decodings,
)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="the experiment dir holding decode_*/<test_set>")
    parser.add_argument("--test_set", required=True, help="name of the decoding subdirs")
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args(cmd)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    scores = {d.mode: d.score() for d in decode_dirs(args.exp, dset=args.test_set)}
    points = {mode: (score["rtf"], score["wer"]["Err"]) for mode, score in scores.items()}
    if points:
        speed_accuracy(points, args.out_dir / "speed_accuracy.png", "RTF (encoder + search) / audio",
                       f"{args.exp.name} on {args.test_set}: speed and accuracy")
    else:
        print(f"no {args.exp}/decode_*/{args.test_set}/score.json: skipping speed_accuracy.png")

    decodings = synchrony_decodings(args.exp, args.test_set)
    if not decodings:
        for name in (SYNCHRONY_FIGURE, SYNCHRONY_JSON):
            (args.out_dir / name).unlink(missing_ok=True)
        print(f"no greedy decoding of {args.test_set} with both thresholds off measured blank_agreement "
              f"(decode with search_type greedy, iam_blank_threshold 1, hat_blank_threshold 1): "
              f"skipping {SYNCHRONY_FIGURE}")
        return
    synchrony = blank_synchrony(decodings[0])
    others = {f"{d.parent.name}/{d.name}": blank_synchrony(d)["blank_synchrony"] for d in decodings[1:]}
    if others:
        synchrony["other_decodings"] = others
    (args.out_dir / SYNCHRONY_JSON).write_text(json.dumps(synchrony, indent=2) + "\n")
    plot_synchrony(decodings[0], synchrony, args.out_dir / SYNCHRONY_FIGURE)
    print(f"blank synchrony of {synchrony['decode_dir']} ({synchrony['utterances']} utterances, "
          f"{synchrony['frames']} frames): {synchrony['blank_synchrony']:.4f}")


if __name__ == "__main__":
    main()
