"""Greedy-decoding error rates reported on validation, so ESPnet's trainer can pick checkpoints."""

from typing import List, Sequence, Tuple

import editdistance


def tokens_to_text(token_ids: Sequence[int], token_list: Sequence[str], sym_space: str) -> str:
    """Join tokens into text; ``sym_space`` and sentencepiece's "▁" mark word boundaries."""
    text = "".join(token_list[i] for i in token_ids)
    return " ".join(text.replace(sym_space, " ").replace("\u2581", " ").split())


def error_rates(hyps: List[str], refs: List[str]) -> Tuple[float, float]:
    """Corpus-level (CER, WER) of hypothesis texts against reference texts."""
    char_err = sum(editdistance.eval(h.replace(" ", ""), r.replace(" ", "")) for h, r in zip(hyps, refs))
    char_len = sum(len(r.replace(" ", "")) for r in refs)
    word_err = sum(editdistance.eval(h.split(), r.split()) for h, r in zip(hyps, refs))
    word_len = sum(len(r.split()) for r in refs)
    return char_err / max(char_len, 1), word_err / max(word_len, 1)
