"""Losses of docs/METHOD.md section 3, as pure functions of normalised log-probabilities.

    L = L_transducer + iam_weight * L_IAM_CTC + ilm_weight * L_ILM_CE   (HAT or RNN-T log-probs)

Every loss is a negative log-likelihood summed over an utterance; ``reduction="mean"``
averages over the batch (ESPnet's convention for its transducer and CTC losses).
"""

import torch
import torchaudio.functional


def _reduce(per_utt: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_utt.mean()
    if reduction == "sum":
        return per_utt.sum()
    if reduction == "none":
        return per_utt
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got '{reduction}'")


def lattice_nll(arcs: torch.Tensor, logit_lengths: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """-log sum over alignments of a transducer lattice given per node, ``(B,)``.

    Args:
        arcs: ``(B, T, U+1, 2)``: ``[..., 0]`` log P(blank | t, u), ``[..., 1]`` log P(y_{u+1} | t, u),
            the arc from (t, u) to (t, u+1) (not read at u = U).
        logit_lengths, target_lengths: ``(B,)`` valid frames and labels.

    torchaudio's kernel scores it as a lattice over the two-symbol vocabulary {blank, next
    label}: the forward-backward it runs over all V+1 outputs costs V/2 times more, for the
    same loss and gradients.
    """
    targets = torch.ones(arcs.size(0), arcs.size(2) - 1, dtype=torch.int32, device=arcs.device)
    return torchaudio.functional.rnnt_loss(
        arcs.float(), targets, logit_lengths.int(), target_lengths.int(), blank=0, reduction="none",
        fused_log_softmax=False,
    )


def transducer_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Transducer loss -log sum_alignments P(y|x) on already-normalised log-probs.

    Args:
        log_probs: ``(B, T, U+1, V+1)`` log-probabilities (HAT or RNN-T joint output).
        targets: ``(B, U)`` label ids (padding values are ignored past ``target_lengths``).
        logit_lengths: ``(B,)`` valid frames T_b.
        target_lengths: ``(B,)`` valid labels U_b.
        blank: blank id.
        reduction: "mean", "sum" or "none" (``(B,)``).

    The lattice must be exactly as large as the longest utterance: T = max(logit_lengths)
    and U+1 = max(target_lengths) + 1 (torchaudio checks this). Only the blank and the next
    label of each node enter the loss: they are gathered and scored by :func:`lattice_nll`
    in float32 (float64 input is computed in float32 and the result cast back).
    """
    # Padding ids (ESPnet pads with -1) must still be valid indices; no label follows u = U.
    next_label = torch.nn.functional.pad(targets.masked_fill(targets < 0, blank), (0, 1), value=blank)
    index = torch.stack([torch.full_like(next_label, blank), next_label], dim=-1)  # (B, U+1, 2)
    # One gather: its backward is one full-size scatter, the only (B, T, U+1, V+1) tensor it adds.
    arcs = log_probs.gather(-1, index.unsqueeze(1).expand(-1, log_probs.size(1), -1, -1))
    return _reduce(lattice_nll(arcs, logit_lengths, target_lengths).to(log_probs.dtype), reduction)


def iam_ctc_loss(
    iam_log_probs: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """CTC loss of the internal acoustic model.

    Args:
        iam_log_probs: ``(B, T, V+1)`` output of ``joint.iam(enc_out)``.
        targets: ``(B, U)`` padded label ids.
        logit_lengths, target_lengths: ``(B,)``.

    Utterances with no valid CTC path (U_b longer than T_b allows) contribute zero, as in
    ESPnet's CTC (``zero_infinity``).
    """
    per_utt = torch.nn.functional.ctc_loss(
        iam_log_probs.transpose(0, 1),
        targets.masked_fill(targets < 0, blank),
        logit_lengths,
        target_lengths,
        blank=blank,
        reduction="none",
        zero_infinity=True,
    )
    return _reduce(per_utt, reduction)


def ilm_loss(
    ilm_log_probs: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of the internal LM on the next label.

    Args:
        ilm_log_probs: ``(B, U, V)`` ``joint.ilm(dec_out[:, :U])``: row u predicts label u+1,
            indexed over the V non-blank labels (label id k is column k-1).
        targets: ``(B, U)`` padded label ids (1..V).
        target_lengths: ``(B,)``.
    """
    mask = torch.arange(targets.size(1), device=targets.device) < target_lengths.unsqueeze(1)
    columns = (targets - 1).clamp(min=0).unsqueeze(-1)
    nll = -ilm_log_probs.gather(-1, columns).squeeze(-1)
    return _reduce(nll.masked_fill(~mask, 0.0).sum(1), reduction)
