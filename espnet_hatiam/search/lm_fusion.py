"""Shallow fusion of an external LM with ILM subtraction (docs/METHOD.md section 5).

For a label k of a hypothesis:  score += lm_weight * log P_LM(k) - ilm_weight * log P_ILM(k).
The LM is an ESPnet ``SequentialRNNLM`` (``lm: seq_rnn``) trained on the same token list;
its state is carried per hypothesis row like the prediction network's.
"""

from typing import Optional, Tuple

import torch

from espnet_hatiam.search.state import State, TransducerJoint


class RNNLMFusion:
    """Batched label bonuses ``lm_weight * log P_LM - ilm_weight * log P_ILM`` per hypothesis row."""

    def __init__(self, lm: torch.nn.Module, joint: TransducerJoint, lm_weight: float, ilm_weight: float):
        from espnet2.lm.seq_rnn_lm import SequentialRNNLM

        if not isinstance(lm, SequentialRNNLM):
            raise ValueError(f"shallow fusion supports ESPnet's SequentialRNNLM (lm: seq_rnn), got {type(lm).__name__}")
        if lm.decoder.out_features != joint.vocab_size:
            raise ValueError(
                f"the LM has {lm.decoder.out_features} tokens, the ASR model {joint.vocab_size}: "
                "train the LM on the ASR token list"
            )
        self.lm, self.joint = lm, joint
        self.lm_weight, self.ilm_weight = lm_weight, ilm_weight
        self.sos = joint.vocab_size - 1  # ESPnet's <sos/eos> is the last token
        self.is_lstm = isinstance(lm.rnn, torch.nn.LSTM)

    def initial(self, rows: int, device: torch.device) -> Tuple[torch.Tensor, State]:
        """LM log-probs ``(rows, V+1)`` after ``<sos>`` and the LM state."""
        return self.step(torch.full((rows,), self.sos, dtype=torch.long, device=device), None)

    def step(self, tokens: torch.Tensor, state: Optional[State]) -> Tuple[torch.Tensor, State]:
        """Advance the LM by ``(N,)`` tokens: ``(log-probs (N, V+1), new state)``."""
        hidden = None if state is None else (state if self.is_lstm else state[0])
        out, hidden = self.lm(tokens.unsqueeze(1), hidden)
        new_state = hidden if self.is_lstm else (hidden, None)
        return torch.log_softmax(out.squeeze(1), dim=-1), new_state

    def bonus(self, lm_log_probs: torch.Tensor, dec_proj: torch.Tensor) -> torch.Tensor:
        """Label bonuses ``(N, V)`` from LM log-probs ``(N, V+1)`` and projected prediction outputs ``(N, J)``."""
        bonus = self.lm_weight * lm_log_probs[:, 1:]
        if self.ilm_weight:
            bonus = bonus - self.ilm_weight * self.joint.ilm_from_projection(dec_proj)
        return bonus
