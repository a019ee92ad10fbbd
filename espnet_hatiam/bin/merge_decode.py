#!/usr/bin/env python3
"""Merge the outputs of split decoding jobs ``DIR/logdir/output.{1..N}`` into ``DIR``.

Concatenates ``*best_recog/*`` and ``utt_stats.jsonl`` and adds up ``decode_stats.json``
(times are summed over jobs: compute seconds, as in RTF).
"""

import argparse
import json
from pathlib import Path

SUMMED = (
    "utterances", "audio_seconds", "encoder_seconds", "search_seconds",
    "frames", "frames_kept", "joint_evaluations", "label_projections",
)


def merge(directory: Path, nj: int):
    parts = [directory / "logdir" / f"output.{n}" for n in range(1, nj + 1)]
    for part in parts:
        if not (part / "decode_stats.json").exists():
            raise FileNotFoundError(f"{part}: job did not finish (no decode_stats.json); see its decode log")
    for recog in sorted({p.relative_to(parts[0]) for p in parts[0].glob("*best_recog/*")}):
        (directory / recog.parent).mkdir(parents=True, exist_ok=True)
        with open(directory / recog, "w", encoding="utf-8") as out:
            for part in parts:
                if (part / recog).exists():
                    out.write((part / recog).read_text(encoding="utf-8"))
    with open(directory / "utt_stats.jsonl", "w", encoding="utf-8") as out:
        for part in parts:
            out.write((part / "utt_stats.jsonl").read_text(encoding="utf-8"))
    stats = [json.loads((p / "decode_stats.json").read_text()) for p in parts]
    merged = dict(stats[0])
    for key in SUMMED:
        merged[key] = round(sum(s[key] for s in stats), 4)
    merged["jobs"] = nj
    (directory / "decode_stats.json").write_text(json.dumps(merged, indent=2) + "\n")


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--nj", type=int, required=True)
    args = parser.parse_args(cmd)
    merge(args.dir, args.nj)


if __name__ == "__main__":
    main()
