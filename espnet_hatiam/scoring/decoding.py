"""``score.json`` of one decoding dir: WER/CER rows, RTF, frame skip and label projection ratios."""

import json
from pathlib import Path

from espnet_hatiam.scoring.error_rate import error_counts
from espnet_hatiam.scoring.text import read_pairs


def _ratio(numerator: float, denominator: float):
    """``numerator / denominator`` rounded, or None when the search counted nothing (ESPnet's own searches)."""
    return round(numerator / denominator, 4) if denominator else None


def score_decoding(ref_file: Path, directory: Path) -> dict:
    """Score ``directory/1best_recog/text`` against ``ref_file`` with ``directory/decode_stats.json``.

    Writes and returns ``{wer, cer, rtf, encoder_rtf, frame_skip_ratio, label_projection_ratio, decode_stats}``;
    the two ratios are None where ``frames`` or ``joint_evaluations`` is 0.
    """
    _, refs, hyps = read_pairs(ref_file, directory / "1best_recog" / "text")
    stats = json.loads((directory / "decode_stats.json").read_text())
    seconds = stats["encoder_seconds"] + stats["search_seconds"]
    skipped = _ratio(stats["frames"] - stats["frames_kept"], stats["frames"])
    result = {
        "wer": error_counts(refs, hyps, "word"),
        "cer": error_counts(refs, hyps, "char"),
        "rtf": round(seconds / stats["audio_seconds"], 4),
        "encoder_rtf": round(stats["encoder_seconds"] / stats["audio_seconds"], 4),
        "frame_skip_ratio": skipped,
        "label_projection_ratio": _ratio(stats["label_projections"], stats["joint_evaluations"]),
        "decode_stats": stats,
    }
    (directory / "score.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
