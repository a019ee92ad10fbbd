"""Search output: one hypothesis of an utterance."""

from typing import List, NamedTuple


class Hypothesis(NamedTuple):
    """A label sequence (no blanks, no start symbol) and its model log-probability."""

    token_ids: List[int]
    score: float
