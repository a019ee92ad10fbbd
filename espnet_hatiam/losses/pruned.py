"""Pruned transducer loss (Kuang et al., Interspeech 2022; k2's ``rnnt_loss_pruned``) in PyTorch.

The full loss evaluates the joint on every lattice node, a ``(B, T, U+1, V+1)`` tensor. Here:

1. a *trivial joiner* ``log_softmax(am_t + lm_u)`` (two linear layers on the encoder and
   prediction-network outputs, no hidden layer) gives the *simple loss* over the whole lattice
   for the cost of one ``(B, T, V+1) x (B, V+1, U+1)`` matrix product;
2. its arc posteriors (the gradient of the simple loss) choose, per frame t, a window of
   ``prune_range`` label positions ``[r_t, r_t + prune_range)`` that holds most of the
   alignment mass, monotonic in t and connected from node (0, 0) to (T-1, U);
3. the real joint (HAT or RNN-T) runs only on those ``(B, T, prune_range)`` nodes, and the
   *pruned loss* is the transducer loss of the lattice without every other node's arcs.

Both lattices are reduced to scalars per node (the blank and the next label's log-prob) and
scored by :func:`lattice_nll`, the dynamic programme of the full loss. With
``prune_range >= U+1`` the pruned loss equals the full loss.
"""

from typing import Tuple

import torch

from espnet_hatiam.losses.transducer_losses import _reduce, lattice_nll

# log of an arc that does not exist: finite, because torchaudio's kernel turns
# logaddexp(-inf, -inf) into NaN; exp() of it is 0 in float32 and sums of it stay finite.
NO_ARC = -1e10


def lattice_arcs(blank_lp: torch.Tensor, label_lp: torch.Tensor) -> torch.Tensor:
    """``(B, T, U+1, 2)`` input of :func:`lattice_nll` from blank ``(B, T, U+1)`` and label ``(B, T, U)`` log-probs."""
    return torch.stack([blank_lp, torch.nn.functional.pad(label_lp, (0, 1), value=NO_ARC)], dim=-1)


def simple_lattice(
    am: torch.Tensor, lm: torch.Tensor, targets: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Blank and next-label log-probs of the trivial joiner ``log_softmax(am_t + lm_u)``.

    Args:
        am: ``(B, T, V+1)`` encoder-side logits; lm: ``(B, U+1, V+1)`` prediction-side logits.
        targets: ``(B, U)`` label ids (padding replaced by a valid id).
    Returns:
        ``(B, T, U+1)`` blank and ``(B, T, U)`` label log-probs.

    The normaliser log sum_v exp(am_tv + lm_uv) is one matrix product of the max-shifted
    exponentials (no ``(B, T, U+1, V+1)`` tensor).
    """
    am_max = am.max(-1, keepdim=True).values.detach()  # (B, T, 1)
    lm_max = lm.max(-1, keepdim=True).values.detach()  # (B, U+1, 1)
    mass = torch.matmul((am - am_max).exp(), (lm - lm_max).exp().transpose(1, 2))  # (B, T, U+1)
    normaliser = mass.clamp_min(1e-30).log() + am_max + lm_max.transpose(1, 2)
    blank_lp = am[..., :1] + lm[..., 0].unsqueeze(1) - normaliser
    num_labels = targets.size(1)
    am_label = am.gather(2, targets.unsqueeze(1).expand(-1, am.size(1), -1))  # (B, T, U): am_t[y_{u+1}]
    lm_label = lm[:, :num_labels].gather(2, targets.unsqueeze(-1)).squeeze(-1)  # (B, U): lm_u[y_{u+1}]
    label_lp = am_label + lm_label.unsqueeze(1) - normaliser[..., :num_labels]
    return blank_lp, label_lp


def prune_ranges(
    occupancy: torch.Tensor, enc_lens: torch.Tensor, target_lens: torch.Tensor, prune_range: int
) -> torch.Tensor:
    """Start ``r_t`` of each frame's window of label positions, ``(B, T)`` long.

    Args:
        occupancy: ``(B, T, U+1)`` posterior mass of each node (any non-negative score).
        enc_lens, target_lens: ``(B,)``.
        prune_range: window size S >= 2.

    Per frame the window with the most mass, then constrained so that a path exists through
    the windows: ``r_0 = 0``, the last valid frame's window holds U_b, ``r`` non-decreasing
    and ``r_{t+1} - r_t <= S - 1`` (k2's ``_adjust_pruning_lower_bound``). An utterance with
    U_b > T_b (S - 1) has no path through windows of S positions (its pruned loss is set
    to zero by :class:`PrunedTransducerLoss`).
    """
    batch, frames, positions = occupancy.shape
    step = prune_range - 1
    window_mass = occupancy.cumsum(-1)
    window_mass = window_mass[..., step:] - torch.nn.functional.pad(window_mass, (1, 0))[..., : positions - step]
    starts = window_mass.argmax(-1)  # (B, T) in [0, U+1-S]
    t = torch.arange(frames, device=occupancy.device)
    last_start = (target_lens - step).clamp_min(0).unsqueeze(1)  # (B, 1): window [U_b-S+1, U_b]
    starts = torch.minimum(starts, last_start)
    final = t.unsqueeze(0) >= (enc_lens - 1).unsqueeze(1)  # the last valid frame and the padding
    starts = torch.where(final, last_start.expand(-1, frames), starts)
    starts = torch.minimum(starts, t * step)  # reachable from (0, 0)
    starts = starts.cummax(-1).values  # non-decreasing
    # r_t >= r_{t'} - (t' - t)(S - 1) for every t' > t: a reverse running max.
    shifted = (starts - t * step).flip(-1).cummax(-1).values.flip(-1)
    return shifted + t * step


def pruned_lattice(
    joint: torch.nn.Module,
    enc_proj: torch.Tensor,
    dec_proj: torch.Tensor,
    targets: torch.Tensor,
    starts: torch.Tensor,
    prune_range: int,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Blank and next-label log-probs of the real joint on the windows, ``NO_ARC`` elsewhere.

    Args:
        joint: a transducer joint (:class:`AbsTransducerJoint`).
        enc_proj: ``(B, T, J)`` ``joint.project_encoder(enc_out)``.
        dec_proj: ``(B, U+1, J)`` ``joint.project_decoder(dec_out)``.
        targets: ``(B, U)``; starts: ``(B, T)`` from :func:`prune_ranges`.
    Returns:
        ``(B, T, U+1)`` blank and ``(B, T, U)`` label log-probs; the joint output computed is
        ``(B, T, S, V+1)``.
    """
    batch, frames, size = enc_proj.shape
    positions = dec_proj.size(1)
    index = starts.unsqueeze(-1) + torch.arange(prune_range, device=starts.device)  # (B, T, S)
    dec_window = dec_proj.gather(1, index.reshape(batch, -1, 1).expand(-1, -1, size))
    hidden = joint.hidden(enc_proj.unsqueeze(2), dec_window.reshape(batch, frames, prune_range, size))
    log_probs = joint.log_probs_from_hidden(hidden)  # (B, T, S, V+1)
    padded_targets = torch.nn.functional.pad(targets, (0, 1))  # the label after u = U: none
    next_label = padded_targets.gather(1, index.reshape(batch, -1)).reshape(batch, frames, prune_range)
    # One gather of (blank, next label): its backward is the only other (B, T, S, V+1) tensor.
    window = log_probs.gather(-1, torch.stack([torch.zeros_like(next_label), next_label], dim=-1))
    fill = torch.full((batch, frames, positions), NO_ARC, dtype=log_probs.dtype, device=log_probs.device)
    blank_lp = fill.scatter(2, index, window[..., 0])
    label_lp = fill.scatter(2, index, window[..., 1])[..., : positions - 1]
    return blank_lp, label_lp


class PrunedTransducerLoss(torch.nn.Module):
    """Pruned transducer loss with its trivial joiner (the only parameters it owns).

    Args:
        vocab_size: V+1, blank included.
        encoder_output_size, decoder_output_size: De and Dd.
        prune_range: label positions S evaluated per frame by the real joint (k2's ``s_range``;
            icefall uses 5).
    """

    def __init__(self, vocab_size: int, encoder_output_size: int, decoder_output_size: int, prune_range: int = 5):
        super().__init__()
        if prune_range < 2:
            raise ValueError(f"prune_range must be >= 2, got {prune_range}")
        self.prune_range = prune_range
        self.simple_am_proj = torch.nn.Linear(encoder_output_size, vocab_size)
        self.simple_lm_proj = torch.nn.Linear(decoder_output_size, vocab_size)

    def forward(
        self,
        joint: torch.nn.Module,
        enc_out: torch.Tensor,
        dec_out: torch.Tensor,
        targets: torch.Tensor,
        enc_lens: torch.Tensor,
        target_lens: torch.Tensor,
        reduction: str = "mean",
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pruned and simple losses of a batch.

        Args:
            joint: the model's joint network.
            enc_out: ``(B, T, De)``; dec_out: ``(B, U+1, Dd)``; targets: ``(B, U)`` (no -1).
            enc_lens, target_lens: ``(B,)``; T = max(enc_lens), U = max(target_lens).
        Returns:
            ``(pruned, simple)``, each reduced as ``reduction`` ("mean", "sum", "none").
        """
        simple_blank, simple_label = simple_lattice(self.simple_am_proj(enc_out), self.simple_lm_proj(dec_out), targets)
        simple_arcs = lattice_arcs(simple_blank, simple_label)
        if not simple_arcs.requires_grad:  # no_grad callers: the posteriors still need a graph
            simple_arcs.requires_grad_()
        simple = lattice_nll(simple_arcs, enc_lens, target_lens)
        # The kernel's gradient is minus each arc's posterior; one call serves loss and pruning.
        (posterior,) = torch.autograd.grad(simple.sum(), simple_arcs, retain_graph=True)
        occupancy = -posterior.sum(-1)  # (B, T, U+1): mass through each node
        prune_range = min(self.prune_range, dec_out.size(1))
        starts = prune_ranges(occupancy, enc_lens, target_lens, prune_range)
        pruned_blank, pruned_label = pruned_lattice(
            joint, joint.project_encoder(enc_out), joint.project_decoder(dec_out), targets, starts, prune_range
        )
        pruned = lattice_nll(lattice_arcs(pruned_blank, pruned_label), enc_lens, target_lens)
        no_path = target_lens > enc_lens * (prune_range - 1)  # more labels than the windows can climb
        pruned = torch.where(no_path, torch.zeros_like(pruned), pruned)
        return _reduce(pruned.to(enc_out.dtype), reduction), _reduce(simple.to(enc_out.dtype), reduction)
