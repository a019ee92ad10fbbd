#!/usr/bin/env python3
"""Figures and blank synchrony for RESULTS.md, from decoding outputs only (docs/METHOD.md section 6).

Reads ``<exp>/decode_*/<test_set>/`` as stages 12-13 wrote them; no model, no audio:

- ``speed_accuracy.png``: WER against RTF of every decoding dir of the test set (``score.json``).
- Blank synchrony: the share of frames on which the IAM (P_AM(blank) >= 0.5) and the HAT
  greedy path agree on blank vs label (a frame is "label" when the path emitted at least
  one label on it). The greedy search measures it while decoding (``blank_agreement`` in
  ``utt_stats.jsonl`` and ``decode_stats.json``), only with both thresholds off, so it is
  taken from such a decoding dir (the first by name when there are several; the others'
  shares are listed too). Written to ``blank_synchrony.json`` (frame-weighted share,
  frames, utterances, the decoding dir, per-utterance quartiles) and drawn as
  ``blank_synchrony.png``: on the left a histogram of the per-utterance share with the
  overall share marked (is disagreement spread over every utterance or due to a few?), on
  the right the per-utterance share against utterance length in frames (do short
  utterances, mostly leading and trailing silence, drive it?). Without such a decoding
  both files are removed (no stale figure is linked) and a line says so.

    python -m espnet_hatiam.bin.plot_results --exp exp/asr_x --test_set test --out_dir exp/asr_x/images
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

SYNCHRONY_FIGURE = "blank_synchrony.png"
SYNCHRONY_JSON = "blank_synchrony.json"


def decoding_name(directory: Path) -> str:
    """``decode_<config>_<model>`` -> ``<config>``, the label of a point in the figure."""
    return directory.name.replace("decode_", "").rsplit("_", 1)[0]


def synchrony_decodings(exp: Path, test_set: str) -> List[Path]:
    """The decoding dirs of ``test_set`` that measured ``blank_agreement`` (greedy, thresholds off), by name."""
    return [
        path.parent
        for path in sorted(exp.glob(f"decode_*/{test_set}/decode_stats.json"))
        if "blank_agreement" in json.loads(path.read_text())
    ]


def utterance_synchrony(directory: Path) -> Tuple[np.ndarray, np.ndarray]:
    """``(agreeing frames, frames)`` per utterance from ``directory/utt_stats.jsonl``."""
    rows = [json.loads(line) for line in (directory / "utt_stats.jsonl").read_text().splitlines() if line.strip()]
    rows = [row for row in rows if "blank_agreement" in row]
    return (np.array([row["blank_agreement"] for row in rows], dtype=np.int64),
            np.array([row["frames"] for row in rows], dtype=np.int64))


def blank_synchrony(directory: Path) -> Dict:
    """The ``blank_synchrony.json`` record of one decoding dir."""
    agree, frames = utterance_synchrony(directory)
    nonempty = frames > 0
    share = agree[nonempty] / frames[nonempty]
    quartiles = np.percentile(share, [0, 25, 50, 75, 100]) if share.size else [float("nan")] * 5
    return {
        "decode_dir": f"{directory.parent.name}/{directory.name}",
        "utterances": int(agree.size),
        "frames": int(frames.sum()),
        "blank_synchrony": round(float(agree.sum()) / max(int(frames.sum()), 1), 4),
        "per_utterance": dict(zip(("min", "q1", "median", "q3", "max"), (round(float(q), 4) for q in quartiles))),
    }


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_speed_accuracy(scores, path: Path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, score in scores:
        ax.plot(score["rtf"], score["wer"]["Err"], "o")
        ax.annotate(name, (score["rtf"], score["wer"]["Err"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("RTF (encoder + search) / audio")
    ax.set_ylabel("WER %")
    ax.set_title("Speed and accuracy of the blank thresholds")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_synchrony(directory: Path, synchrony: Dict, path: Path):
    """Histogram of the per-utterance synchrony, and synchrony against utterance length."""
    agree, frames = utterance_synchrony(directory)
    nonempty = frames > 0
    share, frames = 100 * agree[nonempty] / frames[nonempty], frames[nonempty]
    overall = 100 * synchrony["blank_synchrony"]
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (hist, scatter) = plt.subplots(1, 2, figsize=(9, 3.5))
    low = min(95.0, 5 * np.floor(min(share.min(initial=100), overall) / 5))  # the axis starts at a multiple of 5
    hist.hist(share, bins=np.linspace(low, 100, 21), color="C0")
    hist.set_xlim(low, 100)
    hist.axvline(overall, color="C3", linestyle="--", label=f"all frames: {overall:.1f} %")
    hist.set_xlabel("synchrony of an utterance (% of its frames)")
    hist.set_ylabel("utterances")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.legend(loc="upper left", fontsize=8)
    scatter.plot(frames, share, "o", markersize=3, alpha=0.6)
    scatter.axhline(overall, color="C3", linestyle="--")
    scatter.set_xlabel("encoder frames")
    scatter.set_ylabel("synchrony (%)")
    scatter.grid(alpha=0.3)
    fig.suptitle(f"Blank synchrony of the IAM and the greedy path, {synchrony['decode_dir']} "
                 f"({synchrony['utterances']} utterances)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="the experiment dir holding decode_*/<test_set>")
    parser.add_argument("--test_set", required=True, help="name of the decoding subdirs")
    parser.add_argument("--out_dir", type=Path, required=True)
    args = parser.parse_args(cmd)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    scores = [
        (decoding_name(path.parent.parent), json.loads(path.read_text()))
        for path in sorted(args.exp.glob(f"decode_*/{args.test_set}/score.json"))
    ]
    if scores:
        plot_speed_accuracy(scores, args.out_dir / "speed_accuracy.png")
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
