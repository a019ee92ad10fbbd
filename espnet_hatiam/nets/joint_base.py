"""What the HAT and RNN-T joints share: the input projections, broadcasting, IAM."""

import torch


class AbsTransducerJoint(torch.nn.Module):
    """Base of the transducer joints; subclasses define the output layer (:meth:`build_output`).

    Args:
        vocab_size: output size including blank (index 0), i.e. V+1.
        encoder_output_size: De, size of the encoder output f_t.
        decoder_output_size: Dd, size of the prediction-network output g_u.
        joint_space_size: J, size of the shared hidden h_{t,u}.
        joint_activation_type: activation name known to torch.nn.functional ("tanh", "relu", ...).

    ``forward`` broadcasts like ESPnet's JointNetwork: ``(B,T,1,De)`` with ``(B,1,U+1,Dd)``
    gives ``(B,T,U+1,V+1)``; ``(N,De)`` with ``(N,Dd)`` gives ``(N,V+1)``. A search
    projects the encoder output (``project_encoder``) and the prediction-network output
    (``project_decoder``) once and passes ``no_projection=True``.
    """

    is_factorized: bool

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        decoder_output_size: int,
        joint_space_size: int = 256,
        joint_activation_type: str = "tanh",
    ):
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size counts blank and must be >= 2, got {vocab_size}")
        activation = getattr(torch.nn.functional, joint_activation_type, None) or getattr(
            torch, joint_activation_type, None
        )
        if activation is None:
            raise ValueError(f"unknown joint_activation_type '{joint_activation_type}'")
        self.vocab_size = vocab_size
        self.joint_space_size = joint_space_size
        self.activation = activation
        self.lin_enc = torch.nn.Linear(encoder_output_size, joint_space_size)
        self.lin_dec = torch.nn.Linear(decoder_output_size, joint_space_size, bias=False)
        self.build_output(joint_space_size, vocab_size)

    def build_output(self, joint_space_size: int, vocab_size: int) -> None:
        """Create the output layer(s) from the hidden ``(..., J)`` to the ``V+1`` outputs."""
        raise NotImplementedError

    def project_encoder(self, enc_out: torch.Tensor) -> torch.Tensor:
        """W_e f + b: ``(..., De)`` -> ``(..., J)``."""
        return self.lin_enc(enc_out)

    def project_decoder(self, dec_out: torch.Tensor) -> torch.Tensor:
        """W_p g: ``(..., Dd)`` -> ``(..., J)``."""
        return self.lin_dec(dec_out)

    def hidden(self, enc_proj: torch.Tensor, dec_proj: torch.Tensor) -> torch.Tensor:
        """Shared joint hidden act(enc_proj + dec_proj), broadcasting, ``(..., J)``."""
        return self.activation(enc_proj + dec_proj)

    def forward(
        self, enc_out: torch.Tensor, dec_out: torch.Tensor, no_projection: bool = False
    ) -> torch.Tensor:
        """Normalised log-probs ``(..., V+1)`` (blank 0) from encoder and prediction outputs.

        With ``no_projection`` the inputs are already ``project_encoder``/``project_decoder``
        outputs of size J.
        """
        if not no_projection:
            enc_out, dec_out = self.project_encoder(enc_out), self.project_decoder(dec_out)
        return self.log_probs_from_hidden(self.hidden(enc_out, dec_out))

    def iam(self, enc_out: torch.Tensor) -> torch.Tensor:
        """IAM log-probs ``(..., De)`` -> ``(..., V+1)``; equal to ``forward(enc_out, 0)``."""
        return self.log_probs_from_hidden(self.activation(self.project_encoder(enc_out)))

    def iam_blank_log_prob(self, enc_out: torch.Tensor) -> torch.Tensor:
        """IAM log P(blank) ``(..., De)`` -> ``(...,)``, for frame skipping."""
        return self.blank_log_prob(self.activation(self.project_encoder(enc_out)))

    def ilm(self, dec_out: torch.Tensor) -> torch.Tensor:
        """ILM label log-probs ``(..., Dd)`` -> ``(..., V)``: the joint with zero encoder input,
        renormalised over the labels."""
        return self.ilm_from_projection(self.project_decoder(dec_out))

    def log_probs_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def blank_log_prob(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def ilm_from_projection(self, dec_proj: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
