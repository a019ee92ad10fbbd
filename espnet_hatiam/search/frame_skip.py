"""IAM-blank frame skipping (docs/METHOD.md section 4): drop frames the IAM calls blank."""

from typing import Tuple

import torch

from espnet_hatiam.search.state import TransducerJoint


def iam_frame_skip(
    joint: TransducerJoint,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    threshold: float,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Keep the frames whose IAM blank posterior is below ``threshold``.

    One batched pass of the IAM blank output over all frames; kept frames are packed to
    the front of each row in their original order.

    Args:
        joint: HAT or RNN-T joint (``iam_blank_log_prob``).
        enc_out: ``(B, T, De)`` encoder output.
        enc_lens: ``(B,)`` valid frames.
        threshold: theta_IAM; >= 1 keeps every frame.

    Returns:
        ``(kept_enc_out (B, T', De), kept_lens (B,))`` with T' = max kept frames.
    """
    if threshold >= 1.0:
        return enc_out, enc_lens
    valid = torch.arange(enc_out.size(1), device=enc_out.device) < enc_lens.unsqueeze(1)
    keep = valid & (joint.iam_blank_log_prob(enc_out).exp() < threshold)
    kept_lens = keep.sum(1)
    # Stable sort puts kept frames first without reordering them.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    kept = enc_out.gather(1, order.unsqueeze(-1).expand_as(enc_out))
    return kept[:, : int(kept_lens.max()) if kept_lens.numel() else 0], kept_lens
