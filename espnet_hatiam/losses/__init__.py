"""Training losses: HAT transducer loss (full or pruned), IAM CTC loss, ILM cross-entropy."""

from espnet_hatiam.losses.pruned import PrunedTransducerLoss
from espnet_hatiam.losses.transducer_losses import transducer_loss, iam_ctc_loss, ilm_loss

__all__ = ["PrunedTransducerLoss", "transducer_loss", "iam_ctc_loss", "ilm_loss"]
