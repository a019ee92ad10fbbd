"""What a search carries: hypotheses, the prediction network's per-row state, the joint's interface."""

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
    is_factorized: bool  # True for HAT: output_layer's first row is the blank logit of a sigmoid

    def project_encoder(self, enc_out: torch.Tensor) -> torch.Tensor: ...  # (..., De) -> (..., J)

    def project_decoder(self, dec_out: torch.Tensor) -> torch.Tensor: ...  # (..., Dd) -> (..., J)

    def hidden(self, enc_proj: torch.Tensor, dec_proj: torch.Tensor) -> torch.Tensor: ...  # (..., J)

    def output_layer(self) -> Tuple[torch.Tensor, torch.Tensor]: ...  # (V+1, J), (V+1,); HAT: blank row first

    def log_probs_from_logits(self, logits: torch.Tensor) -> torch.Tensor: ...  # (..., V+1) -> (..., V+1)

    # HAT only (is_factorized): log-probs with no labels where the blank logit >= bound, and that mask
    def thresholded_log_probs(self, logits: torch.Tensor, bound: float) -> Tuple[torch.Tensor, torch.Tensor]: ...

    def iam_blank_log_prob(self, enc_out: torch.Tensor) -> torch.Tensor: ...  # (..., De) -> (...,)

    def ilm_from_projection(self, dec_proj: torch.Tensor) -> torch.Tensor: ...  # (..., J) -> (..., V)


class PredictionNetwork:
    """Runs ESPnet's ``TransducerDecoder`` one label at a time for a batch of hypothesis rows.

    The search state (:class:`~espnet_hatiam.search.beam_state.BeamState`) moves states between rows.
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
