"""Training losses: HAT transducer loss, IAM CTC loss, ILM cross-entropy."""

from espnet_hatiam.losses.transducer_losses import transducer_loss, iam_ctc_loss, ilm_loss

__all__ = ["transducer_loss", "iam_ctc_loss", "ilm_loss"]
