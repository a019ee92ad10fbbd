"""What a search carries: hypotheses, the prediction network's per-row state, the joint's interface."""

import math
import weakref
from typing import List, NamedTuple, Optional, Protocol, Tuple

import torch

State = Tuple[torch.Tensor, Optional[torch.Tensor]]  # (h, c), each (layers, N, H); c None for GRU/RNN


class Hypothesis(NamedTuple):
    """A label sequence (no blanks, no start symbol) and its model log-probability."""

    token_ids: List[int]
    score: float


class TransducerJoint(Protocol):
    """The joint-network methods a search calls (``espnet_hatiam.nets``: HAT and RNN-T joints)."""

    vocab_size: int  # V+1, blank included
    is_factorized: bool  # True for HAT: blank_logit and label_log_probs exist

    def project_encoder(self, enc_out: torch.Tensor) -> torch.Tensor: ...  # (..., De) -> (..., J)

    def project_decoder(self, dec_out: torch.Tensor) -> torch.Tensor: ...  # (..., Dd) -> (..., J)

    def hidden(self, enc_proj: torch.Tensor, dec_proj: torch.Tensor) -> torch.Tensor: ...  # (..., J)

    def log_probs_from_hidden(self, hidden: torch.Tensor, blank_logit: Optional[torch.Tensor] = None) -> torch.Tensor:
        ...  # (..., J) -> (..., V+1); blank_logit (...,) if already computed (HAT only)

    def blank_logit(self, hidden: torch.Tensor) -> torch.Tensor: ...  # (N, J) -> (N,), HAT only

    def label_log_probs(self, hidden: torch.Tensor, blank_logit: torch.Tensor) -> torch.Tensor: ...  # (N, V)

    def iam_blank_log_prob(self, enc_out: torch.Tensor) -> torch.Tensor: ...  # (..., De) -> (...,)

    def ilm_from_projection(self, dec_proj: torch.Tensor) -> torch.Tensor: ...  # (..., J) -> (..., V)


class PredictionNetwork:
    """Runs ESPnet's ``TransducerDecoder`` one label at a time for a batch of hypothesis rows.

    Only rows that just emitted a label are advanced; ``select``/``assign``/``gather_prefix``
    move states between rows.
    """

    def __init__(self, decoder: torch.nn.Module):
        self.decoder = decoder
        self.fast_lstm = decoder.dtype == "lstm" and not decoder.training
        self.input_gates = input_gate_table(decoder) if self.fast_lstm else None  # (V+1, 4H)
        # (4H, 0): the first layer's input weight, its projection being the table's row
        self.no_input_weight = self.input_gates.new_empty((self.input_gates.size(1), 0)) if self.fast_lstm else None

    def initial(self, batch: int, device: torch.device) -> Tuple[torch.Tensor, State]:
        """Output ``(batch, Dd)`` and state after the start symbol (blank, ESPnet's convention)."""
        self.decoder.set_device(device)
        state = self.decoder.init_state(batch)
        blank = torch.full((batch,), self.decoder.blank_id, dtype=torch.long, device=device)
        return self.step(blank, state)

    def step(self, tokens: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Advance ``(N,)`` tokens: returns ``(dec_out (N, Dd), new_state)``.

        An LSTM decoder in eval mode steps with ``torch.lstm_cell`` on its layers' weights, the
        arithmetic of ESPnet's ``rnn_forward`` (``nn.LSTM`` over one step, dropout off) at a
        fraction of its per-call cost on CPU, where the search's prediction network is a call
        per emitting round. The first layer's input projection of every token is a table
        (:func:`input_gate_table`): its rows enter ``lstm_cell`` as a per-row input bias with
        an empty input, so a step multiplies only the recurrent weights.
        """
        if not self.fast_lstm:
            embed = self.decoder.dropout_embed(self.decoder.embed(tokens))
            dec_out, new_state = self.decoder.rnn_forward(embed.unsqueeze(1), state)
            return dec_out.squeeze(1), new_state
        h_prev, c_prev = state
        hs, cs = [], []
        x = h_prev.new_empty((tokens.numel(), 0))
        for layer, lstm in enumerate(self.decoder.decoder):
            if layer == 0:  # x @ W_ih^T + b_ih is the table's row: no input, the row as bias
                weight_ih, bias_ih = self.no_input_weight, self.input_gates[tokens]
            else:
                weight_ih, bias_ih = lstm.weight_ih_l0, lstm.bias_ih_l0
            h, c = torch.lstm_cell(x, (h_prev[layer], c_prev[layer]), weight_ih, lstm.weight_hh_l0, bias_ih,
                                   lstm.bias_hh_l0)
            hs.append(h)
            cs.append(c)
            x = h
        return x, (torch.stack(hs), torch.stack(cs))


_INPUT_GATE_TABLES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # decoder -> (weights key, table)


def input_gate_table(decoder: torch.nn.Module) -> torch.Tensor:
    """``(V+1, 4H)``: the first LSTM layer's input projection of every token's embedding, with its bias.

    Computed once per decoder and again when its embedding or input weights change (an
    optimiser step, ``load_state_dict``, a move to another device: anything that bumps their
    version counters; a write through ``.data`` does not, and is not seen).
    """
    lstm = decoder.decoder[0]
    weights = (decoder.embed.weight, lstm.weight_ih_l0, lstm.bias_ih_l0)
    key = tuple((w.device, w.data_ptr(), w._version) for w in weights)
    cached = _INPUT_GATE_TABLES.get(decoder)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = key, torch.addmm(lstm.bias_ih_l0, decoder.embed.weight, lstm.weight_ih_l0.t())
        _INPUT_GATE_TABLES[decoder] = cached
    return cached[1]


def select(state: State, index: torch.Tensor) -> State:
    """States of rows ``index`` ``(M,)``."""
    h, c = state
    return h[:, index], None if c is None else c[:, index]


def assign(state: State, index: torch.Tensor, new: State) -> None:
    """Write ``new`` into rows ``index`` of ``state`` in place."""
    state[0][:, index] = new[0]
    if state[1] is not None:
        state[1][:, index] = new[1]


def assign_where(state: State, outputs: torch.Tensor, rows: torch.Tensor, new_state: State,
                 new_outputs: torch.Tensor, keep: torch.Tensor) -> None:
    """Write a step's state and ``(N, D)`` outputs into rows ``rows`` ``(N,)`` where ``keep`` ``(N,)``.

    The rows where ``keep`` is False keep their old values: the sync-free searches step every
    row and keep only the ones that emitted, without selecting them on the host.
    """
    mask = keep.view(1, -1, 1)
    assign(state, rows, tuple(None if new is None else torch.where(mask, new, old[:, rows])
                              for new, old in zip(new_state, state)))
    outputs[rows] = torch.where(keep.unsqueeze(1), new_outputs, outputs[rows])


def gather_prefix(state: State, source: torch.Tensor) -> State:
    """Rows ``source`` of the state moved to rows ``0..len(source)-1`` (others unchanged)."""
    h, c = state
    if source.numel() == h.size(1):
        return h[:, source], None if c is None else c[:, source]
    h = h.clone()
    h[:, : source.numel()] = h[:, source]
    if c is not None:
        c = c.clone()
        c[:, : source.numel()] = c[:, source]
    return h, c


def uses_hat_threshold(joint: TransducerJoint, hat_blank_threshold: float) -> bool:
    """True when HAT-blank thresholding is on; refuses it for a joint without a separate blank."""
    if hat_blank_threshold >= 1.0:
        return False
    if not joint.is_factorized:
        raise ValueError(
            f"hat_blank_threshold={hat_blank_threshold} needs the HAT joint (joint_type: hat); "
            "the RNN-T joint has no separate blank output"
        )
    return True


# A gathered label projection (index the rows that need it, project, scatter back) costs a few
# extra tensor operations; it is used only when the rows it skips save at least this many
# multiply-adds (J x V each), about the cost of those operations on a CPU core.
GATHER_MIN_SAVED_MACS = 1 << 20


def hat_thresholded_log_probs(
    joint: TransducerJoint, hidden: torch.Tensor, hat_blank_threshold: float, best_only: bool = False
) -> Tuple[torch.Tensor, torch.Tensor]:
    """HAT log-probs ``(N, V+1)`` of hidden rows ``(N, J)`` with HAT-blank thresholding.

    Rows with P(blank) >= ``hat_blank_threshold`` (blank logit s >= logit(theta)) keep only blank
    (labels -inf). The blank logits come first. On a CPU the label projection then runs on no
    row when every row is above the threshold, on the rows that need it (gathered) when the
    skipped rows save at least ``GATHER_MIN_SAVED_MACS``, else on every row with the skipped
    rows' labels masked: next to the plain log-probs, a comparison, a count and the mask, never
    a gather that saves less than it costs. On CUDA (where counting the rows would wait for the
    device) always the masked form. ``best_only``: the caller takes only each row's best output
    (greedy search); with a threshold >= 0.5 blank is already the best output of a row above
    it, so the mask is left out. Also returns the ``(N,)`` mask of rows that needed their labels.
    """
    rows, size = hidden.shape
    masked = not (best_only and hat_blank_threshold >= 0.5)
    blank_logit = joint.blank_logit(hidden)
    # P(blank) < theta <=> s < logit(theta); theta <= 0: no row needs its labels
    logit = math.log(hat_blank_threshold / (1 - hat_blank_threshold)) if hat_blank_threshold > 0 else -math.inf
    need = blank_logit < logit
    needed = rows if hidden.is_cuda else int(need.sum())  # CUDA: no count, the masked form
    skipped_macs = (rows - needed) * size * (joint.vocab_size - 1)
    if needed and skipped_macs < GATHER_MIN_SAVED_MACS:  # dense: the projection of every row
        log_probs = joint.log_probs_from_hidden(hidden, blank_logit)
        if masked and (hidden.is_cuda or needed < rows):
            log_probs[:, 1:].masked_fill_(~need.unsqueeze(1), float("-inf"))
        return log_probs, need
    log_probs = hidden.new_full((rows, joint.vocab_size), float("-inf"))
    log_probs[:, 0] = torch.nn.functional.logsigmoid(blank_logit)
    if needed:  # gathered: the projection of the rows below the threshold only
        rows_needed = need.nonzero().squeeze(1)
        log_probs[rows_needed, 1:] = joint.label_log_probs(hidden[rows_needed], blank_logit[rows_needed])
    return log_probs, need
