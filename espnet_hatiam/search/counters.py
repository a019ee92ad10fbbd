"""Per-utterance work counters of a search (docs/METHOD.md section 6)."""

from dataclasses import dataclass
from typing import Dict

import torch


@dataclass
class SearchCounters:
    """Counts for a batch of B utterances; each field is a ``(B,)`` int64 CPU tensor.

    frames: encoder frames; frames_kept: frames left after IAM frame skipping;
    joint_evaluations: (hypothesis, frame) pairs whose joint hidden and blank score were
    computed; label_projections: those of them for which the label projection was computed.
    """

    frames: torch.Tensor
    frames_kept: torch.Tensor
    joint_evaluations: torch.Tensor
    label_projections: torch.Tensor

    @classmethod
    def for_lengths(cls, lengths: torch.Tensor) -> "SearchCounters":
        lengths = lengths.detach().cpu().long()
        zeros = torch.zeros_like(lengths)
        return cls(lengths.clone(), lengths.clone(), zeros, zeros.clone())

    def utterance(self, b: int) -> Dict[str, int]:
        return {name: int(value[b]) for name, value in vars(self).items()}

    def totals(self) -> Dict[str, int]:
        return {name: int(value.sum()) for name, value in vars(self).items()}
