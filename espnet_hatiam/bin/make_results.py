#!/usr/bin/env python3
"""Collect ``exp/<asr>/decode_*/<set>/score.json`` into RESULTS.md (ESPnet's format plus speed columns)."""

import argparse
import json
import platform
from pathlib import Path

import torch

from espnet_hatiam.scoring.layout import decode_dirs

COLUMNS = ["Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]


def table(scores, unit: str) -> str:
    lines = [
        f"|dataset|{'|'.join(COLUMNS)}|RTF|enc RTF|frame skip|label proj|",
        "|---" * (len(COLUMNS) + 5) + "|",
    ]
    for name, s in scores:
        row = [str(s[unit][c]) for c in COLUMNS]
        lines.append(
            f"|{name}|{'|'.join(row)}|{s['rtf']:.4f}|{s['encoder_rtf']:.4f}|"
            f"{_percent(s['frame_skip_ratio'])}|{_percent(s['label_projection_ratio'])}|"
        )
    return "\n".join(lines)


def _percent(ratio) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f} %"


def make_results(exp: Path, images: Path = None) -> str:
    scores = [(f"{d.path.parent.name}/{d.set}", d.score()) for d in decode_dirs(exp)]
    if not scores:
        raise FileNotFoundError(f"{exp}: no decode_*/*/score.json; run scoring (stage 13) first")
    first = scores[0][1]["decode_stats"]
    threads = first.get("num_threads", "?")
    return "\n".join([
        f"# RESULTS: {exp.name}",
        "",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} cores visible, torch {torch.__version__}; "
        f"{threads} torch thread(s) per decoding job, batch size {first.get('batch_size', '?')}",
        "- RTF = (encoder + search seconds) / audio seconds, summed over decoding jobs; "
        "frame skip = frames dropped by the IAM threshold; label proj = label projections / joint evaluations; "
        "- = not counted by that search (ESPnet's own)",
        "",
        "## WER",
        "",
        table(scores, "wer"),
        "",
        "## CER",
        "",
        table(scores, "cer"),
        "",
    ] + _figures(images))


def _figures(images: Path) -> list:
    """Links to the plot_results figures (paths relative to the recipe dir) and the synchrony ratio."""
    if images is None:
        return []
    lines = ["## Figures", ""]
    synchrony = images / "blank_synchrony.json"
    if synchrony.exists():
        s = json.loads(synchrony.read_text())
        source = f", measured by {s['decode_dir']}" if "decode_dir" in s else ""
        lines += [f"Blank synchrony (IAM and HAT greedy path agree on blank vs label): "
                  f"{100 * s['blank_synchrony']:.1f} % of {s['frames']} frames, {s['utterances']} utterances"
                  f"{source}.", ""]
    for name, title in (("speed_accuracy.png", "WER against RTF"), ("blank_synchrony.png", "Blank synchrony")):
        if (images / name).exists():
            lines += [f"![{title}]({images / name})", ""]
    return lines


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp", type=Path, required=True)
    parser.add_argument("--images", type=Path, default=None, help="plot_results output dir to link")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(cmd)
    args.out.write_text(make_results(args.exp, args.images))


if __name__ == "__main__":
    main()
