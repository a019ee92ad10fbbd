"""Blank synchrony from decoding outputs only (docs/METHOD.md section 6): the share of frames on which the IAM
(P_AM(blank) >= 0.5) and the HAT greedy path agree on blank vs label (a frame is "label" when the path emitted
at least one label on it).

The greedy search measures it while decoding (``blank_agreement`` in ``utt_stats.jsonl`` and
``decode_stats.json``), only with both thresholds off, so it is taken from such a decoding dir. Its figure:
on the left a histogram of the per-utterance share with the overall share marked (is disagreement spread
over every utterance or due to a few?), on the right the per-utterance share against utterance length in
frames (do short utterances, mostly leading and trailing silence, drive it?).
"""

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from espnet_hatiam.scoring.layout import decode_dirs
from espnet_hatiam.scoring.plots import pyplot, save

SYNCHRONY_FIGURE = "blank_synchrony.png"
SYNCHRONY_JSON = "blank_synchrony.json"


def synchrony_decodings(exp: Path, test_set: str) -> List[Path]:
    """The scored decoding dirs of ``test_set`` that measured ``blank_agreement`` (greedy, thresholds off), by name."""
    return [d.path for d in decode_dirs(exp, dset=test_set) if "blank_agreement" in d.score()["decode_stats"]]


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


def plot_synchrony(directory: Path, synchrony: Dict, path: Path):
    """Histogram of the per-utterance synchrony, and synchrony against utterance length."""
    agree, frames = utterance_synchrony(directory)
    nonempty = frames > 0
    share, frames = 100 * agree[nonempty] / frames[nonempty], frames[nonempty]
    overall = 100 * synchrony["blank_synchrony"]
    plt = pyplot()
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
    save(fig, path)
