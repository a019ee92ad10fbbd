"""The speed/accuracy figure: one owner for the per-model figure (RESULTS.md) and the comparison's.

A point per decoding mode: time on a log axis (the searches span two orders of magnitude), WER on the
other; one colour per mode family, a threshold sweep (``dual_0.6`` ... ``dual_0.99``) drawn as one line
from its lowest to its highest threshold, a legend instead of labels on the points (which collide), and
the Pareto front (no other point is both faster and at most as wrong) marked.
"""

from pathlib import Path
from typing import Dict, List, Tuple

from espnet_hatiam.scoring.layout import SWEEP

Points = Dict[str, Tuple[float, float]]  # mode -> (seconds or RTF, WER %)


def pyplot():
    """matplotlib's pyplot on the file-only backend (no display): every figure of the package starts here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    """Lay out, write the PNG ``path`` at 120 dpi and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    pyplot().close(fig)


def families(points: Points) -> Dict[str, List[str]]:
    """Modes grouped by family (``dual_0.9`` -> ``dual``), each family's modes by ascending threshold."""
    grouped: Dict[str, List[Tuple[float, str]]] = {}
    for mode in points:
        match = SWEEP.fullmatch(mode)
        family, theta = (match["family"], float(match["theta"])) if match else (mode, 0.0)
        grouped.setdefault(family, []).append((theta, mode))
    return {family: [m for _, m in sorted(members)] for family, members in sorted(grouped.items())}


def pareto_front(points: Points) -> List[str]:
    """The modes no other mode beats on both axes (faster and at most as many errors, or as fast and fewer),
    fastest first."""
    front = []
    for mode, (x, y) in points.items():
        if not any((ox <= x and oy <= y) and (ox, oy) != (x, y) for ox, oy in points.values()):
            front.append(mode)
    return sorted(front, key=lambda m: points[m])


def speed_accuracy(points: Points, path: Path, xlabel: str, title: str) -> Dict[str, List[str]]:
    """Draw ``points`` to the PNG ``path``; returns what was drawn: ``{"points", "families", "pareto"}``."""
    plt = pyplot()

    if not points:
        raise ValueError(f"{path}: no points to plot")
    grouped = families(points)
    front = pareto_front(points)
    colours = plt.get_cmap("tab20" if len(grouped) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, (family, modes) in enumerate(grouped.items()):
        xs, ys = zip(*(points[m] for m in modes))
        label = family if len(modes) == 1 else (
            f"{family} ({modes[0][len(family) + 1:]} -> {modes[-1][len(family) + 1:]})")
        ax.plot(xs, ys, "o-" if len(modes) > 1 else "o", color=colours(index % colours.N), label=label)
    fx, fy = zip(*(points[m] for m in front))
    ax.plot(fx, fy, "--", color="0.4", linewidth=1, zorder=0, label="Pareto front")
    ax.plot(fx, fy, "o", markersize=12, markerfacecolor="none", markeredgecolor="0.4", zorder=0)
    ax.set_xscale("log")
    ax.set_xlabel(f"{xlabel} (log scale)")
    ax.set_ylabel("WER %")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    save(fig, path)
    return {"points": dict(points), "families": list(grouped), "pareto": front}


def latency_accuracy(lines: Dict[str, List[Tuple[float, float]]], offline: Dict[str, float], path: Path,
                     title: str) -> None:
    """WER against algorithmic latency: one line per search of ``(latency ms, WER %)`` points (the streamed
    chunk sizes), and each search's offline WER (``offline``) as a dashed horizontal line of its colour."""
    plt = pyplot()

    if not lines:
        raise ValueError(f"{path}: no points to plot")
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(6, 4))
    for index, (name, points) in enumerate(sorted(lines.items())):
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, "o-", color=colours(index), label=f"{name}, streamed")
        if name in offline:
            ax.axhline(offline[name], linestyle="--", color=colours(index), linewidth=1, label=f"{name}, offline")
    ax.set_xlabel("algorithmic latency, ms (chunk + look-ahead)")
    ax.set_ylabel("WER %")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, path)
