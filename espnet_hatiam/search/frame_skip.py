"""The two blank thresholds (docs/METHOD.md section 4), side by side.

IAM-blank frame skipping drops the frames the IAM calls blank from what a search receives
(:func:`iam_frame_skip`: one pass over a chunk before the PyTorch plans' frame loop; the compiled
plan decides each frame inside its loop, from the projected frame it reads). HAT-blank thresholding settles, inside the search, the frames on which
every hypothesis of an utterance has P(blank) >= theta_HAT: while no hypothesis emits, their
prediction-network states are fixed, so the blank logits of a window of upcoming frames are one
product, and the leading blank-certain frames are passed at once with their blank log-probs
added (:func:`blank_certain_run`); the search resumes at the first uncertain frame.
"""

import math
from typing import Optional, Tuple

import torch

from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.state import TransducerJoint


def iam_frame_skip(
    joint: TransducerJoint,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    threshold: float,
    counters: Optional[SearchCounters] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Keep the frames whose IAM blank posterior is below ``threshold``.

    One batched pass of the IAM blank output over all frames; kept frames are packed to
    the front of each row in their original order.

    Args:
        joint: HAT or RNN-T joint (``iam_blank_log_prob``).
        enc_out: ``(B, T, De)`` encoder output.
        enc_lens: ``(B,)`` valid frames.
        threshold: theta_IAM; >= 1 keeps every frame.
        counters: if given, the frames dropped are taken off its ``frames_kept``.

    Returns:
        ``(kept_enc_out (B, T', De), kept_lens (B,))`` with T' = max kept frames.
    """
    if threshold >= 1.0:
        return enc_out, enc_lens
    valid = torch.arange(enc_out.size(1), device=enc_out.device) < enc_lens.unsqueeze(1)
    keep = valid & (joint.iam_blank_log_prob(enc_out).exp() < threshold)
    kept_lens = keep.sum(1)
    if counters is not None:
        counters.frames_kept -= (enc_lens - kept_lens).cpu().long()
    # Stable sort puts kept frames first without reordering them.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    kept = enc_out.gather(1, order.unsqueeze(-1).expand_as(enc_out))
    return kept[:, : int(kept_lens.max()) if kept_lens.numel() else 0], kept_lens


WINDOW = 8
"""Upcoming frames whose blank logits a search computes at once (a blank-certain run is at most this long;
a longer one takes several steps)."""


class WindowBackoff:
    """When the selecting plan looks ahead: after a window that settles no frame, the next windows wait.

    A window costs about half a round and pays only where it settles frames; on a model whose beam
    nearly always holds a hypothesis below theta (or after IAM skipping, which leaves mostly label
    frames), most windows settle none. After each window that settles nothing, the next
    ``wait`` chances to look ahead are passed (1, 3, 7, then ``max_wait`` at most); a window that
    settles a frame resets it. A frame searched instead of passed gets the same hypotheses and
    scores, so the policy changes the cost, not the result. The masked plan always looks ahead
    (it reads nothing on the host).
    """

    def __init__(self, max_wait: int = 8):
        self.max_wait, self.gap, self.wait = max_wait, 0, 0

    def due(self) -> bool:
        """Whether to look ahead at this chance (one chance passed if not)."""
        if self.wait:
            self.wait -= 1
            return False
        return True

    def settled(self, run: torch.Tensor) -> None:
        """Record a window's ``run (B, 1)`` (one host read)."""
        self.gap = 0 if any(r for r, in run.tolist()) else min(2 * self.gap + 1, self.max_wait)
        self.wait = self.gap


def blank_logit_bound(threshold: float) -> float:
    """logit(theta): P(blank) = sigmoid(s) >= theta <=> s >= logit(theta); inf for theta >= 1 (nothing is certain)."""
    if threshold >= 1.0:
        return math.inf
    return math.log(threshold / (1 - threshold)) if threshold > 0 else -math.inf


def blank_certain_run(
    blank_logits: torch.Tensor, bound: float, valid: torch.Tensor, empty: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The leading frames of a window on which every hypothesis of an utterance is blank-certain.

    Args:
        blank_logits: ``(B, K, W)`` HAT blank logits s of K hypotheses on W upcoming frames.
        bound: a frame is certain for a hypothesis where s >= bound (:func:`blank_logit_bound`).
        valid: ``(B, W)`` frames inside the utterance (a run ends at its last frame).
        empty: ``(B, K, 1)`` empty beam slots (score -inf), which never end a run.

    Returns:
        ``run (B, 1)``: the run's length, the offset of the first uncertain (or invalid) frame;
        ``settled (B, W)`` int64, 1 on the run's frames; ``blank (B, K)``: each hypothesis's
        sum of log P(blank) = log sigmoid(s) over the run.
    """
    certain = blank_logits >= bound
    if empty is not None:
        certain |= empty
    settled = (certain.all(1) & valid).cumprod(1)
    blank = (torch.nn.functional.logsigmoid(blank_logits) * settled.unsqueeze(1)).sum(2)
    return settled.sum(1, keepdim=True), settled, blank
