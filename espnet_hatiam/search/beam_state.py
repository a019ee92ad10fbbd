"""What a batched search carries between rounds: the encoder frames it reads and its beam of hypotheses.

:class:`EncodedFrames` looks up projected encoder frames at per-utterance frame pointers;
:class:`BeamState` holds B x K hypotheses as rows r = b*K + k (greedy search: K = 1) with
``reorder`` (rows take their parents' hypotheses) and ``advance`` (the prediction network and the LM
step on the rows that emitted).
"""

from dataclasses import dataclass
from typing import Optional

import torch

from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import PredictionNetwork, State, TransducerJoint

NEG_INF = float("-inf")


class EncodedFrames:
    """Projected encoder frames W_e f_t + b of B utterances, read at per-utterance frame pointers.

    ``enc_out (B, T, De)`` is projected once and padded with ``pad`` frames, flattened to
    ``(B * (T + pad), J)``, so that a window of ``pad`` frames from any pointer < T is one index.
    """

    def __init__(self, joint: TransducerJoint, enc_out: torch.Tensor, enc_lens: torch.Tensor, pad: int):
        batch, frames = enc_out.shape[:2]
        proj = joint.project_encoder(enc_out)
        self.flat = torch.nn.functional.pad(proj, (0, 0, 0, pad)).view(batch * (frames + pad), -1)
        self.start = torch.arange(batch, device=enc_out.device).unsqueeze(1) * (frames + pad)  # (B, 1)
        self.lens = enc_lens.to(enc_out.device).view(batch, 1)  # (B, 1)
        self.offsets = torch.arange(pad, device=enc_out.device)  # (W,)

    def window(self, t: torch.Tensor):
        """Frames t .. t+W-1 of each utterance: ``(frames (B, W, J), valid (B, W))`` for pointers ``t (B, 1)``."""
        index = t + self.offsets
        return self.flat[self.start + index], index < self.lens

    def at(self, t: torch.Tensor, repeats: int) -> torch.Tensor:
        """Frame t of each utterance for each of its ``repeats`` rows: ``(B * repeats, J)`` for ``t (B, 1)``."""
        return self.flat[(self.start + t).repeat_interleave(repeats)]


@dataclass
class BeamState:
    """B utterances x K hypotheses as R = B*K rows (row b*K + k: utterance b's slot k).

    scores ``(R, 1)`` (-inf: empty slot); labels ``(R, L)`` zero beyond lengths ``(R, 1)``;
    dec_proj ``(R, J)`` the projected prediction-network output W_p g; state the prediction
    network's ``(layers, R, H)``; with LM fusion, lm_state and bonus ``(R, V)`` (the label bonuses).
    """

    scores: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    dec_proj: torch.Tensor
    state: State
    lm_state: Optional[State] = None
    bonus: Optional[torch.Tensor] = None

    @classmethod
    def initial(cls, joint: TransducerJoint, prediction: PredictionNetwork, fusion: Optional[RNNLMFusion],
                batch: int, beam: int, max_labels: int, device: torch.device) -> "BeamState":
        """Slot 0 of each utterance holds the empty hypothesis (score 0), the others are empty."""
        rows = batch * beam
        dec_out, state = prediction.initial(rows, device)
        scores = torch.full((batch, beam), NEG_INF, device=device)
        scores[:, 0] = 0.0
        beam_state = cls(scores.view(rows, 1), torch.zeros(rows, max_labels, dtype=torch.long, device=device),
                         torch.zeros(rows, 1, dtype=torch.long, device=device), joint.project_decoder(dec_out), state)
        if fusion is not None:
            lm_log_probs, beam_state.lm_state = fusion.initial(rows, device)
            beam_state.bonus = fusion.bonus(lm_log_probs, beam_state.dec_proj)
        return beam_state

    def reorder(self, source: torch.Tensor, token: torch.Tensor, width: int) -> torch.Tensor:
        """Row r takes row ``source[r]``'s hypothesis extended by ``token[r]`` (0: blank, no label).

        ``source (R,)``, ``token (R, 1)``; ``width`` bounds the new lengths (the labels beyond it are
        zero and stay so). Returns the new labels ``(R, width)``, a view of the state's buffer.
        """
        labels = self.labels[:, :width]
        labels.copy_(labels.index_select(0, source))
        self.lengths = self.lengths.index_select(0, source)
        labels.scatter_(1, self.lengths, token)
        self.lengths += token != 0
        self.dec_proj = self.dec_proj.index_select(0, source)
        self.state = _rows(self.state, source)
        if self.bonus is not None:
            self.bonus = self.bonus.index_select(0, source)
            self.lm_state = _rows(self.lm_state, source)
        return labels

    def advance(self, joint: TransducerJoint, prediction: PredictionNetwork, fusion: Optional[RNNLMFusion],
                token: torch.Tensor, stepping: torch.Tensor, select: bool) -> None:
        """The rows ``stepping (R, 1)`` emitted ``token (R, 1)``: step their prediction network (and LM).

        ``select``: step only those rows (their indices read on the host; none: no step);
        else step every row and keep the stepping rows' results (no host synchronisation).
        """
        if select:
            rows = stepping.view(-1).nonzero().squeeze(1)
            if rows.numel() == 0:
                return
            tokens = token.view(-1)[rows]
            out, new_state = prediction.step(tokens, _rows(self.state, rows))
            self.dec_proj.index_copy_(0, rows, joint.project_decoder(out))
            _copy_rows(self.state, rows, new_state)
            if fusion is not None:
                lm_log_probs, new_lm_state = fusion.step(tokens, _rows(self.lm_state, rows))
                self.bonus.index_copy_(0, rows, fusion.bonus(lm_log_probs, self.dec_proj[rows]))
                _copy_rows(self.lm_state, rows, new_lm_state)
            return
        tokens = token.view(-1)
        out, new_state = prediction.step(tokens, self.state)
        self.dec_proj = torch.where(stepping, joint.project_decoder(out), self.dec_proj)
        self.state = _where_rows(stepping, new_state, self.state)
        if fusion is not None:
            lm_log_probs, new_lm_state = fusion.step(tokens, self.lm_state)
            self.bonus = torch.where(stepping, fusion.bonus(lm_log_probs, self.dec_proj), self.bonus)
            self.lm_state = _where_rows(stepping, new_lm_state, self.lm_state)


def _rows(state: State, index: torch.Tensor) -> State:
    """Rows ``index`` of a ``(layers, R, H)`` state."""
    h, c = state
    return h.index_select(1, index), None if c is None else c.index_select(1, index)


def _copy_rows(state: State, index: torch.Tensor, new: State) -> None:
    """Write ``new`` into rows ``index`` of ``state`` in place."""
    for old, value in zip(state, new):
        if old is not None:
            old.index_copy_(1, index, value)


def _where_rows(keep: torch.Tensor, new: State, old: State) -> State:
    """``new`` on the rows ``keep (R, 1)``, ``old`` elsewhere."""
    return tuple(None if n is None else torch.where(keep, n, o) for n, o in zip(new, old))
