"""Learning curves from ESPnet's training logs: the one reader of its ``Nepoch results`` lines.

A line ``[vm] ... INFO: 7epoch results: [train] ..., acc=0.9, loss=12.3, ... [valid] ..., cer_ctc=0.3, loss=14.1,
acc=0.8, wer=0.25, ...`` becomes ``{"epoch": 7, "train_loss": 12.3, "train_acc": 0.9, "valid_loss": 14.1,
"valid_acc": 0.8, "valid_cer_ctc": 0.3, "valid_wer": 0.25}`` (only the fields the model reports; accuracy and
CTC CER are ESPnet CTC/attention's, its attention decoder's and its CTC branch's). ``valid_wer`` is what each
model reports on validation: greedy decoding for the transducers, teacher-forced attention output for ESPnet's
CTC/attention model; so each curve says whether its system converged, not which is better.
"""

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_hatiam.scoring.plots import pyplot, save

EPOCH_RESULTS = re.compile(r"(\d+)epoch results: \[train\](.*)\[valid\](.*)$")
FIELDS = {"train_loss": ("train", "loss"), "train_acc": ("train", "acc"), "valid_loss": ("valid", "loss"),
          "valid_acc": ("valid", "acc"), "valid_cer_ctc": ("valid", "cer_ctc"), "valid_wer": ("valid", "wer")}


def _field(segment: str, name: str) -> Optional[float]:
    match = re.search(rf"(?:^|[\s,]){name}=([0-9.e+-]+)", segment)
    return float(match.group(1)) if match else None


def epoch_results(line: str) -> Optional[Dict[str, float]]:
    """The per-epoch figures of one ESPnet trainer log line, or None for another line."""
    match = EPOCH_RESULTS.search(line)
    if not match:
        return None
    segments = {"train": match.group(2), "valid": match.group(3)}
    results = {"epoch": int(match.group(1))}
    for key, (part, name) in FIELDS.items():
        value = _field(segments[part], name)
        if value is not None:
            results[key] = value
    return results


def read_curve(train_log: Path) -> List[Dict[str, float]]:
    """Every epoch's results in ``train_log`` and the logs of earlier runs that a resumed run kept
    (``train.log.1``, ``.2``, ..., read first), in epoch order; an epoch run twice: the later run."""
    earlier = [p for p in train_log.parent.glob(train_log.name + ".*") if p.suffix[1:].isdigit()]
    earlier.sort(key=lambda p: int(p.suffix[1:]))
    epochs: Dict[int, Dict[str, float]] = {}
    for log in [*earlier, train_log]:
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                results = epoch_results(line)
                if results:
                    epochs[results["epoch"]] = results
    return [epochs[e] for e in sorted(epochs)]


def plot_learning_curves(curves: Dict[str, List[Dict[str, float]]], path: Path) -> None:
    """Validation loss and WER per epoch, one line per ``{label: curve}``, as a two-panel PNG. Each label keeps
    one colour and dash in both panels, unique over up to 40 labels (the 10 colours, then the next dash)."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, ylabel in ((axes[0], "valid_loss", "validation loss (each model's own)"),
                            (axes[1], "valid_wer", "validation WER (each model's own, see RESULTS)")):
        for index, (label, curve) in enumerate(sorted(curves.items())):
            points = [(c["epoch"], c[key]) for c in curve if key in c]
            if points:
                ax.plot(*zip(*points), marker=".", label=label, color=f"C{index % 10}",
                        linestyle=("-", "--", ":", "-.")[index // 10 % 4])
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, handlelength=4)  # long enough to show the dash
    save(fig, path)


def curve_table(curves: Dict[str, List[Dict[str, float]]], epochs: Sequence[int]) -> str:
    """Markdown: validation WER (and accuracy where reported) of each curve at ``epochs`` and its last epoch."""
    lines = ["|system|" + "|".join(f"epoch {e}" for e in epochs) + "|last epoch|",
             "|---|" + "---|" * (len(epochs) + 1)]
    for label, curve in sorted(curves.items()):
        by_epoch = {c["epoch"]: c for c in curve}

        def cell(c):
            if c is None or "valid_wer" not in c:
                return "-"
            acc = f", acc {c['valid_acc']:.3f}" if "valid_acc" in c else ""
            return f"{c['valid_wer']:.3f}{acc}"

        last = f"{curve[-1]['epoch']}: {cell(curve[-1])}" if curve else "-"
        lines.append(f"|{label}|" + "|".join(cell(by_epoch.get(e)) for e in epochs) + f"|{last}|")
    return "\n".join(lines) + "\n"
