"""Per-utterance work counters of a search and the blank synchrony it measures (docs/METHOD.md section 6)."""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch

from espnet_hatiam.search.state import TransducerJoint


@dataclass
class SearchCounters:
    """Counts for a batch of B utterances; each field is a ``(B,)`` int64 CPU tensor.

    frames: encoder frames; frames_kept: frames left after IAM frame skipping (the search takes the
    frames it drops off it); frames_searched:
    frames the search loop visited (ran a round on: greedy, a label projection; beam, a top-k),
    the kept frames less those settled as blank in a blank-certain run (HAT-blank thresholding);
    joint_evaluations: (hypothesis, frame) pairs whose joint hidden and blank logit were computed
    (in a round, or in the window of upcoming frames a blank-certain run is looked for in);
    label_projections: rounds' (hypothesis, frame) pairs whose labels were needed (all without
    HAT-blank thresholding; with it, those below the threshold; the projection itself runs on
    every row of the round, the others' labels masked).

    blank_agreement: frames on which the IAM and the greedy path agree on blank vs label
    (:func:`blank_agreement`). Measured only by greedy search with both thresholds off
    (``decode_encoded``), where the path is the model's plain greedy path over every frame;
    else None, and then absent from :meth:`utterance` and :meth:`totals` (so from
    ``utt_stats.jsonl`` and ``decode_stats.json``): a decoding that did not measure it
    writes no number for it rather than a 0.
    """

    frames: torch.Tensor
    frames_kept: torch.Tensor
    joint_evaluations: torch.Tensor
    label_projections: torch.Tensor
    frames_searched: torch.Tensor
    blank_agreement: Optional[torch.Tensor] = None

    @classmethod
    def for_lengths(cls, lengths: torch.Tensor) -> "SearchCounters":
        lengths = lengths.detach().cpu().long()
        zeros = torch.zeros_like(lengths)
        return cls(lengths.clone(), lengths.clone(), zeros, zeros.clone(), zeros.clone())

    @classmethod
    def concatenate(cls, parts: Sequence["SearchCounters"]) -> "SearchCounters":
        """The counters of several batches as one batch, in order (blank agreement only if every part has it)."""
        fields = {name: torch.cat([getattr(part, name) for part in parts]) for name in (
            "frames", "frames_kept", "joint_evaluations", "label_projections", "frames_searched")}
        agreements = [part.blank_agreement for part in parts]
        agreement = None if any(a is None for a in agreements) else torch.cat(agreements)
        return cls(**fields, blank_agreement=agreement)

    def utterance(self, b: int) -> Dict[str, int]:
        """The measured counters of utterance ``b``."""
        return {name: int(value[b]) for name, value in vars(self).items() if value is not None}

    def totals(self) -> Dict[str, int]:
        """The measured counters summed over the batch."""
        return {name: int(value.sum()) for name, value in vars(self).items() if value is not None}


IAM_BLANK_DECISION = 0.5
"""The IAM calls a frame blank when P_AM(blank | t) >= this (the blank synchrony's IAM decision)."""


@torch.no_grad()
def blank_agreement(
    joint: TransducerJoint, enc_out: torch.Tensor, enc_lens: torch.Tensor, frame_labels: torch.Tensor
) -> torch.Tensor:
    """Frames per utterance on which the IAM and a search path agree on blank vs label.

    The IAM calls frame t blank when P_AM(blank | t) >= 0.5 (one batched pass,
    ``joint.iam_blank_log_prob``); the path calls it blank when it emitted no label on it
    (``frame_labels[b, t] == 0``, as ``greedy_search`` fills it). Padding is not counted.

    Args:
        enc_out: ``(B, T, De)`` encoder output (every frame: no frame skipping);
        enc_lens: ``(B,)``; frame_labels: ``(B, T)`` labels the path emitted per frame.

    Returns:
        ``(B,)`` int64 CPU tensor; divided by ``enc_lens`` it is each utterance's synchrony.
    """
    valid = torch.arange(enc_out.size(1), device=enc_out.device) < enc_lens.to(enc_out.device).unsqueeze(1)
    iam_blank = joint.iam_blank_log_prob(enc_out).exp() >= IAM_BLANK_DECISION
    path_blank = frame_labels.to(enc_out.device) == 0
    return ((iam_blank == path_blank) & valid).sum(1).cpu().long()
