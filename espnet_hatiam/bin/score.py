#!/usr/bin/env python3
"""Score one decoding directory: WER/CER with jiwer, RTF and skip ratios -> ``DIR/score.json``.

    python -m espnet_hatiam.bin.score --ref dump/raw/test/text --dir exp/asr_x/decode_dual/test
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List


def read_text(path: Path) -> Dict[str, str]:
    table = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, text = line.rstrip("\n").partition(" ")
            if key:
                table[key] = text.strip()
    return table


def error_counts(refs: List[str], hyps: List[str], unit: str) -> Dict[str, float]:
    """ESPnet's sclite-style row: Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err (rates in %)."""
    import jiwer

    split = (lambda s: s.split()) if unit == "word" else (lambda s: list(s.replace(" ", "")))
    # jiwer counts on space-joined units; empty references are skipped (no rate is defined).
    pairs = [(" ".join(split(r)), " ".join(split(h))) for r, h in zip(refs, hyps) if split(r)]
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    words = out.hits + out.substitutions + out.deletions
    rate = lambda n: round(100.0 * n / max(words, 1), 2)  # noqa: E731
    sentence_errors = sum(r != h for r, h in pairs)
    return {
        "Snt": len(pairs), "Wrd": words,
        "Corr": rate(out.hits), "Sub": rate(out.substitutions), "Del": rate(out.deletions),
        "Ins": rate(out.insertions), "Err": rate(out.substitutions + out.deletions + out.insertions),
        "S.Err": round(100.0 * sentence_errors / max(len(pairs), 1), 2),
    }


def score(ref_file: Path, directory: Path) -> dict:
    refs = read_text(ref_file)
    hyps = read_text(directory / "1best_recog" / "text")
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(f"{directory}: no hypothesis for {len(missing)} utterances of {ref_file}, e.g. '{missing[0]}'")
    keys = sorted(refs)
    stats = json.loads((directory / "decode_stats.json").read_text())
    seconds = stats["encoder_seconds"] + stats["search_seconds"]
    result = {
        "wer": error_counts([refs[k] for k in keys], [hyps[k] for k in keys], "word"),
        "cer": error_counts([refs[k] for k in keys], [hyps[k] for k in keys], "char"),
        "rtf": round(seconds / stats["audio_seconds"], 4),
        "encoder_rtf": round(stats["encoder_seconds"] / stats["audio_seconds"], 4),
        "frame_skip_ratio": round(1 - stats["frames_kept"] / max(stats["frames"], 1), 4),
        # ESPnet's BeamSearchTransducer counts no joint evaluations: None, not a false 0.
        "label_projection_ratio": (
            round(stats["label_projections"] / stats["joint_evaluations"], 4) if stats["joint_evaluations"] else None
        ),
        "decode_stats": stats,
    }
    (directory / "score.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=Path, required=True, help="Kaldi text with the references")
    parser.add_argument("--dir", type=Path, required=True, help="decoding dir with 1best_recog/text")
    args = parser.parse_args(cmd)
    result = score(args.ref, args.dir)
    print(f"{args.dir}: WER {result['wer']['Err']} % CER {result['cer']['Err']} % RTF {result['rtf']}")


if __name__ == "__main__":
    main()
