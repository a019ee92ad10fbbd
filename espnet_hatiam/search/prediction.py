"""Step-wise, batched use of ESPnet's ``TransducerDecoder`` (the prediction network) in a search."""

from typing import Optional, Tuple

import torch

State = Tuple[torch.Tensor, Optional[torch.Tensor]]  # (h, c), each (layers, N, H); c None for GRU


class PredictionNetwork:
    """Runs the prediction network one label at a time for a batch of hypotheses.

    Only rows that just emitted a label are advanced; ``select``/``assign`` move states
    between hypothesis slots.
    """

    def __init__(self, decoder: torch.nn.Module):
        self.decoder = decoder

    def initial(self, batch: int, device: torch.device) -> Tuple[torch.Tensor, State]:
        """Output and state after the start symbol (blank, ESPnet's transducer convention).

        Returns ``(dec_out (batch, Dd), state)``.
        """
        self.decoder.set_device(device)
        state = self.decoder.init_state(batch)
        blank = torch.full((batch,), self.decoder.blank_id, dtype=torch.long, device=device)
        return self.step(blank, state)

    def step(self, tokens: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        """Advance ``(N,)`` tokens: returns ``(dec_out (N, Dd), new_state)``."""
        embed = self.decoder.dropout_embed(self.decoder.embed(tokens.unsqueeze(1)))
        dec_out, new_state = self.decoder.rnn_forward(embed, state)
        return dec_out.squeeze(1), new_state

    @staticmethod
    def select(state: State, index: torch.Tensor) -> State:
        """States of rows ``index`` ``(M,)``."""
        h, c = state
        return h[:, index], None if c is None else c[:, index]

    @staticmethod
    def assign(state: State, index: torch.Tensor, new: State) -> None:
        """Write ``new`` into rows ``index`` of ``state`` in place."""
        state[0][:, index] = new[0]
        if state[1] is not None:
            state[1][:, index] = new[1]
