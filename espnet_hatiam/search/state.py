"""What a search carries: hypotheses, the prediction network's per-row state, the joint's interface."""

import weakref
from typing import Callable, List, NamedTuple, Optional, Protocol, Tuple

import torch

State = Tuple[torch.Tensor, Optional[torch.Tensor]]  # (h, c), each (layers, N, H); c None for GRU/RNN


def chunk_frames(enc_out: torch.Tensor, batch: int) -> int:
    """The frames C of a resumable search's chunk ``enc_out (B, C, De)`` of ``batch`` streams (``ValueError`` if not)."""
    if enc_out.dim() != 3 or enc_out.size(0) != batch:
        raise ValueError(f"a chunk of {batch} streams must be (B, C, De), got {tuple(enc_out.shape)}")
    return enc_out.size(1)


class Hypothesis(NamedTuple):
    """A label sequence (no blanks, no start symbol) and its model log-probability."""

    token_ids: List[int]
    score: float


class TransducerJoint(Protocol):
    """The joint-network methods a search calls (``espnet_hatiam.nets``: HAT and RNN-T joints)."""

    vocab_size: int  # V+1, blank included
    is_factorized: bool  # True for HAT: output_layer's first row is the blank logit of a sigmoid
    activation: Callable[[torch.Tensor], torch.Tensor]  # the nonlinearity of ``hidden``

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
        self.weights = lstm_step_weights(decoder) if self.fast_lstm else None

    def initial(self, batch: int, device: torch.device) -> Tuple[torch.Tensor, State]:
        """Output ``(batch, Dd)`` and state after the start symbol (blank, ESPnet's convention)."""
        self.decoder.set_device(device)
        state = self.decoder.init_state(batch)
        blank = torch.full((batch,), self.decoder.blank_id, dtype=torch.long, device=device)
        return self.step(blank, state)

    def step(self, tokens: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Advance ``(N,)`` tokens: returns ``(dec_out (N, Dd), new_state)``.

        An LSTM decoder in eval mode steps on its layers' weights with the arithmetic of ESPnet's
        ``rnn_forward`` (``nn.LSTM`` over one step, dropout off), in a few calls instead of its
        per-call cost on CPU, where the search's prediction network is a call per emitting round:
        the first layer's input gates are a row of a table (:func:`lstm_step_weights`), and each
        layer multiplies its inputs by weights transposed once.
        """
        if not self.fast_lstm:
            embed = self.decoder.dropout_embed(self.decoder.embed(tokens))
            dec_out, new_state = self.decoder.rnn_forward(embed.unsqueeze(1), state)
            return dec_out.squeeze(1), new_state
        h_prev, c_prev = state
        table, layers = self.weights
        hs, cs = [], []
        x = None
        for layer, (weight_ih_t, weight_hh_t, bias) in enumerate(layers):
            gates = table[tokens] if layer == 0 else torch.addmm(bias, x, weight_ih_t)  # (N, 4H): i, f, g, o
            gates.addmm_(h_prev[layer], weight_hh_t)
            i, f, g, o = gates.chunk(4, 1)
            c = torch.addcmul(f.sigmoid_() * c_prev[layer], i.sigmoid_(), g.tanh_())
            x = o.sigmoid_() * c.tanh()
            hs.append(x)
            cs.append(c)
        return x, (torch.stack(hs), torch.stack(cs))


_STEP_WEIGHTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # decoder -> (weights key, weights)


def lstm_step_weights(decoder: torch.nn.Module):
    """An eval-mode LSTM decoder's weights for one step: ``(table (V+1, 4H), layers)``.

    ``table``: the first layer's input gates of every token, ``embed(token) @ W_ih^T + b_ih + b_hh``;
    ``layers``: per layer ``(W_ih^T (H, 4H) or None for the first, W_hh^T (H, 4H), b_ih + b_hh (4H,))``.
    Computed once per decoder and again when any of its weights change (an optimiser step,
    ``load_state_dict``, a move to another device: anything that bumps their version counters; a
    write through ``.data`` does not, and is not seen).
    """
    lstms = list(decoder.decoder)
    weights = [decoder.embed.weight] + [w for lstm in lstms for w in
                                        (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
    key = tuple((w.device, w.data_ptr(), w._version) for w in weights)
    cached = _STEP_WEIGHTS.get(decoder)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            first = lstms[0]
            table = torch.addmm(first.bias_ih_l0 + first.bias_hh_l0, decoder.embed.weight, first.weight_ih_l0.t())
            layers = tuple((None if n == 0 else lstm.weight_ih_l0.t().contiguous(), lstm.weight_hh_l0.t().contiguous(),
                            lstm.bias_ih_l0 + lstm.bias_hh_l0) for n, lstm in enumerate(lstms))
        cached = key, (table, layers)
        _STEP_WEIGHTS[decoder] = cached
    return cached[1]
