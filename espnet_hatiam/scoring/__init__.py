"""Scoring: reference/hypothesis pairs, WER/CER counts, score.json of a decoding dir, bootstrap significance, system comparison."""
