"""Greedy-decoding error rates reported on validation, so ESPnet's trainer can pick checkpoints."""

from typing import Sequence

from espnet_hatiam.scoring.error_rate import error_rates  # noqa: F401 (the rates the model reports)


def tokens_to_text(token_ids: Sequence[int], token_list: Sequence[str], sym_space: str) -> str:
    """Join tokens into text; ``sym_space`` and sentencepiece's "▁" mark word boundaries."""
    text = "".join(token_list[i] for i in token_ids)
    return " ".join(text.replace(sym_space, " ").replace("\u2581", " ").split())
