"""Vanilla RNN-T joint network: one softmax over blank and labels (the baseline).

Same interface as :class:`HATJointNetwork`, so the model, the IAM loss and the search
run unchanged; the blank posterior needs the full output projection here, so HAT
blank thresholding saves nothing and is refused by the search.
"""

import torch

from espnet_hatiam.nets.joint_base import AbsTransducerJoint


class RNNTJointNetwork(AbsTransducerJoint):
    """RNN-T joint: log_softmax(W_o act(W_e f + W_p g + b) + c_o) over V+1 outputs (blank 0).

    Arguments: :class:`AbsTransducerJoint`.
    """

    is_factorized = False

    def build_output(self, joint_space_size: int, vocab_size: int) -> None:
        """``W_o h + c_o``: one projection to all V+1 outputs."""
        self.lin_out = torch.nn.Linear(joint_space_size, vocab_size)

    def log_probs_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., J)`` -> ``(..., V+1)`` log-probs."""
        return torch.log_softmax(self.lin_out(hidden), dim=-1)

    def output_layer(self):
        """``(weight (V+1, J), bias (V+1,))`` of the output projection."""
        return self.lin_out.weight, self.lin_out.bias

    def log_probs_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``(..., V+1)`` logits -> log-probs."""
        return torch.log_softmax(logits, dim=-1)

    def blank_log_prob(self, hidden: torch.Tensor) -> torch.Tensor:
        """log P(blank) ``(..., J)`` -> ``(...,)``; needs the full projection for RNN-T."""
        return self.log_probs_from_hidden(hidden)[..., 0]

    def ilm_from_projection(self, dec_proj: torch.Tensor) -> torch.Tensor:
        """Label part of ``forward(0, g)``, renormalised, from ``W_p g`` ``(..., J)`` -> ``(..., V)``."""
        hidden = self.activation(dec_proj + self.lin_enc.bias)
        return torch.log_softmax(self.lin_out(hidden)[..., 1:], dim=-1)
