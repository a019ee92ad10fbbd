"""HAT joint network (docs/METHOD.md sections 1-2): factorised blank/label output, IAM and ILM.

    h_{t,u} = act(W_e f_t + W_p g_u + b)
    log P(blank | t,u) = log sigmoid(s),  s = w_b . h + c_b
    log P(k | t,u)     = log sigmoid(-s) + log_softmax(W_o h + c_o)_k,  k = 1..V

The bias ``b`` lives in ``lin_enc`` and ``lin_dec`` has none, so that the IAM
(``forward(f, 0)``) and the ILM (``forward(0, g)`` renormalised over labels) are the
same network with one input removed.
"""

from typing import Optional

import torch

from espnet_hatiam.nets.joint_base import AbsTransducerJoint


class _HATLogProbs(torch.autograd.Function):
    """HAT log-probs with a hand-written backward that keeps one full-size tensor alive.

    Composing them from autograd ops (log_softmax, slice assignment, in-place add) holds
    the log_softmax output besides the result, and each slice assignment clones the full
    gradient in backward; here only the output is saved.
    """

    @staticmethod
    def forward(ctx, blank_logit: torch.Tensor, label_logits: torch.Tensor) -> torch.Tensor:
        out = _compose(blank_logit, label_logits)
        ctx.save_for_backward(out, blank_logit)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out, blank_logit = ctx.saved_tensors
        grad_labels = grad[..., 1:]
        grad_label_sum = grad_labels.sum(-1)
        # d/dz_k = g_k - softmax(z)_k * sum_j g_j, with softmax(z)_k = exp(out_k - log sigmoid(-s)).
        log_label_mass = torch.nn.functional.logsigmoid(-blank_logit).unsqueeze(-1)
        grad_label_logits = (out[..., 1:] - log_label_mass).exp_()
        grad_label_logits.mul_(-grad_label_sum.unsqueeze(-1)).add_(grad_labels)
        # d/ds log sigmoid(s) = sigmoid(-s); d/ds log sigmoid(-s) = -sigmoid(s).
        grad_blank_logit = grad[..., 0] * torch.sigmoid(-blank_logit) - grad_label_sum * torch.sigmoid(blank_logit)
        return grad_blank_logit, grad_label_logits


def _label_log_probs(blank_logit: torch.Tensor, label_logits: torch.Tensor,
                     no_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The label part of the HAT log-probs, the one composition: ``(..., 1)`` and ``(..., V)`` -> ``(..., V)``.

        log P(k) = log sigmoid(-s) + log_softmax(z)_k

    ``no_labels (..., 1)``: rows whose labels are -inf (HAT-blank thresholding).
    """
    label_mass = torch.nn.functional.logsigmoid(-blank_logit)
    if no_labels is not None:
        label_mass.masked_fill_(no_labels, float("-inf"))
    return torch.log_softmax(label_logits, dim=-1).add_(label_mass)


def _compose(blank_logit: torch.Tensor, label_logits: torch.Tensor) -> torch.Tensor:
    """The HAT log-probs of :func:`hat_log_probs` from ``(...,)`` and ``(..., V)``, in one new tensor."""
    blank_logit = blank_logit.unsqueeze(-1)
    return torch.cat([torch.nn.functional.logsigmoid(blank_logit), _label_log_probs(blank_logit, label_logits)], -1)


def hat_log_probs(blank_logit: torch.Tensor, label_logits: torch.Tensor) -> torch.Tensor:
    """HAT log-probs ``(..., V+1)`` from a blank logit ``(...,)`` and label logits ``(..., V)``.

        log P(blank) = log sigmoid(s);  log P(k) = log sigmoid(-s) + log_softmax(z)_k

    Without gradients (the searches) the autograd function is left out: its ``apply`` costs
    more than the arithmetic at a search round's sizes.
    """
    if torch.is_grad_enabled() and (blank_logit.requires_grad or label_logits.requires_grad):
        return _HATLogProbs.apply(blank_logit, label_logits)
    return _compose(blank_logit, label_logits)


class HATJointNetwork(AbsTransducerJoint):
    """Hybrid Autoregressive Transducer joint network (arguments: :class:`AbsTransducerJoint`)."""

    is_factorized = True

    def build_output(self, joint_space_size: int, vocab_size: int) -> None:
        """The blank logit ``w_b . h + c_b`` and the label logits ``W_o h + c_o`` (V of them)."""
        self.lin_blank = torch.nn.Linear(joint_space_size, 1)
        self.lin_label = torch.nn.Linear(joint_space_size, vocab_size - 1)

    def blank_logit(self, hidden: torch.Tensor) -> torch.Tensor:
        """Blank logit s: ``(..., J)`` -> ``(...,)``; costs J multiply-adds per row."""
        return self.lin_blank(hidden).squeeze(-1)

    def blank_log_prob(self, hidden: torch.Tensor) -> torch.Tensor:
        """log P(blank): ``(..., J)`` -> ``(...,)`` without the label projection."""
        return torch.nn.functional.logsigmoid(self.blank_logit(hidden))

    def log_probs_from_hidden(self, hidden: torch.Tensor, blank_logit: Optional[torch.Tensor] = None) -> torch.Tensor:
        """HAT log-probs: ``(..., J)`` -> ``(..., V+1)``; ``blank_logit`` ``(...,)`` if already computed."""
        return hat_log_probs(self.blank_logit(hidden) if blank_logit is None else blank_logit, self.lin_label(hidden))

    def label_log_probs(self, hidden: torch.Tensor, blank_logit: torch.Tensor) -> torch.Tensor:
        """Label part of the HAT log-probs, ``(N, J)`` and ``(N,)`` -> ``(N, V)``."""
        return _label_log_probs(blank_logit.unsqueeze(-1), self.lin_label(hidden))

    def output_layer(self):
        """``(weight (V+1, J), bias (V+1,))``: the blank row and the label rows as one layer, so that a
        search gets all V+1 logits (blank logit first) from one matrix product."""
        return (torch.cat([self.lin_blank.weight, self.lin_label.weight]),
                torch.cat([self.lin_blank.bias, self.lin_label.bias]))

    def log_probs_from_logits(self, logits: torch.Tensor, no_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """HAT log-probs ``(..., V+1)`` from :meth:`output_layer`'s logits ``(..., V+1)`` (blank logit first);
        labels -inf on the rows ``no_labels (..., 1)``. (One softmax over ``[s + logsumexp(z), z]`` is the same
        distribution in fewer calls, but ``torch.logsumexp`` costs more than it saves at a round's sizes.)"""
        blank_logit = logits[..., :1]
        return torch.cat([torch.nn.functional.logsigmoid(blank_logit),
                          _label_log_probs(blank_logit, logits[..., 1:], no_labels)], -1)

    def thresholded_log_probs(self, logits: torch.Tensor, bound: float):
        """HAT-blank thresholding: ``(log_probs (..., V+1), certain (..., 1))`` with no labels where the blank
        logit s >= ``bound`` (P(blank) >= theta), masked inside the composition (cheaper than on its result)."""
        certain = logits[..., :1] >= bound
        return self.log_probs_from_logits(logits, certain), certain

    def ilm_from_projection(self, dec_proj: torch.Tensor) -> torch.Tensor:
        """ILM label log-probs from ``project_decoder`` output ``(..., J)`` -> ``(..., V)``."""
        hidden = self.activation(dec_proj + self.lin_enc.bias)
        return torch.log_softmax(self.lin_label(hidden), dim=-1)
