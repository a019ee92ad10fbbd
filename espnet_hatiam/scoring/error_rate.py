"""WER/CER by Levenshtein alignment (jiwer): sclite-style rows, per-utterance counts, corpus rates.

Units: ``"word"`` splits on whitespace; ``"char"`` takes the characters with whitespace removed.
"""

from typing import Dict, List, Sequence, Tuple

import jiwer
import numpy as np


def units(text: str, unit: str) -> List[str]:
    """Words or characters (whitespace removed) of ``text``."""
    if unit == "word":
        return text.split()
    if unit == "char":
        return list("".join(text.split()))
    raise ValueError(f"unit must be 'word' or 'char', got '{unit}'")


def edit_counts(refs: Sequence[str], hyps: Sequence[str], unit: str) -> np.ndarray:
    """Per-utterance ``(hits, substitutions, deletions, insertions)``: int array (U, 4)."""
    counts = np.zeros((len(refs), 4), dtype=np.int64)
    ref_units = [units(r, unit) for r in refs]
    hyp_units = [units(h, unit) for h in hyps]
    for i, (r, h) in enumerate(zip(ref_units, hyp_units)):
        if not r:  # jiwer needs a non-empty reference: all insertions
            counts[i, 3] = len(h)
    aligned = [i for i, r in enumerate(ref_units) if r]
    if not aligned:
        return counts
    out = jiwer.process_words([" ".join(ref_units[i]) for i in aligned], [" ".join(hyp_units[i]) for i in aligned])
    column = {"equal": 0, "substitute": 1, "delete": 2}
    for i, chunks in zip(aligned, out.alignments):
        for c in chunks:
            if c.type == "insert":
                counts[i, 3] += c.hyp_end_idx - c.hyp_start_idx
            else:
                counts[i, column[c.type]] += c.ref_end_idx - c.ref_start_idx
    return counts


def utterance_errors(refs: Sequence[str], hyps: Sequence[str], unit: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(errors (U,), reference lengths (U,))`` per utterance; errors = substitutions + deletions + insertions."""
    c = edit_counts(refs, hyps, unit)
    return c[:, 1:].sum(1), c[:, :3].sum(1)


def error_counts(refs: Sequence[str], hyps: Sequence[str], unit: str) -> Dict[str, float]:
    """ESPnet's sclite-style row: Snt, Wrd, Corr, Sub, Del, Ins, Err, S.Err (rates in % of Wrd, S.Err of Snt)."""
    hits, sub, dele, ins = edit_counts(refs, hyps, unit).sum(0).tolist()
    words = hits + sub + dele
    rate = lambda n: round(100.0 * n / max(words, 1), 2)  # noqa: E731
    sentence_errors = sum(units(r, unit) != units(h, unit) for r, h in zip(refs, hyps))
    return {
        "Snt": len(refs), "Wrd": words,
        "Corr": rate(hits), "Sub": rate(sub), "Del": rate(dele), "Ins": rate(ins), "Err": rate(sub + dele + ins),
        "S.Err": round(100.0 * sentence_errors / max(len(refs), 1), 2),
    }


def error_rates(hyps: Sequence[str], refs: Sequence[str]) -> Tuple[float, float]:
    """Corpus-level ``(CER, WER)`` as fractions of hypothesis texts against reference texts."""
    rates = []
    for unit in ("char", "word"):
        errors, lengths = utterance_errors(refs, hyps, unit)
        rates.append(int(errors.sum()) / max(int(lengths.sum()), 1))
    return rates[0], rates[1]
