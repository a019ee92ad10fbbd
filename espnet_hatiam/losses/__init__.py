"""Training losses: HAT transducer loss, IAM CTC loss, ILM cross-entropy."""

from espnet_hatiam.losses.hat_loss import hat_transducer_loss, iam_ctc_loss, ilm_loss

__all__ = ["hat_transducer_loss", "iam_ctc_loss", "ilm_loss"]
