"""Scoring: Kaldi text, WER/CER counts, score.json of a decoding dir, bootstrap significance, system comparison."""
