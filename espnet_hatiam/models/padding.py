"""Batch-invariant encoding: what an utterance is encoded to does not depend on its batch.

ESPnet's frontend and conformer let the padding of a batch into the valid frames in three places
(docs/RELIABILITY.md, "Batch invariance"); :class:`ESPnetHATModel` closes each, in training
and decoding alike:

1. The STFT (``center=True``) reflects the signal at its ends, but in a padded batch a shorter
   utterance's last frames see the zeros after it: :func:`per_utterance_features` runs the
   frontend on each utterance at its own length.
2. ``Conv2dSubsampling`` slices its output mask out of the padded input mask
   (``mask[:, :, :-2:2][:, :, :-2:2]``), so an utterance gets one or two frames more in a batch
   beside a longer one, computed from padding: :func:`subsampled_lengths` takes the lengths from
   the convolutions' arithmetic, and the hooks of :func:`mask_encoder_padding` make the encoder
   use them.
3. The conformer's depthwise convolution reads the frames after the end of an utterance: the
   same hooks zero them first, as the zero padding of an utterance encoded alone does.

Hooks keep the parameters and their names, so checkpoints load either way. ESPnet's legacy
relative positional encoding (``rel_pos_type: legacy``, its deprecated default) shifts scores
computed for absolute positions, so its output depends on the padded length whatever the
masks: use ``rel_pos_type: latest``, as every config of this project does.
"""

import logging
from typing import List, Optional, Tuple

import torch
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask


def per_utterance_features(frontend, speech: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The frontend on each utterance of ``speech`` ``(B, L)`` cut to its length; ``(B, T, F)``, ``(B,)``."""
    feats: List[torch.Tensor] = []
    feats_lengths: List[torch.Tensor] = []
    for utterance, length in zip(speech, lengths):
        feat, feat_length = frontend(utterance[: int(length)].unsqueeze(0), length.view(1))
        feats.append(feat[0, : int(feat_length)])
        feats_lengths.append(feat_length)
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.cat(feats_lengths)


def subsampled_lengths(embed: torch.nn.Module, lengths: torch.Tensor) -> torch.Tensor:
    """Output lengths of a convolutional subsampling module (its ``conv`` Sequential) for input ``lengths``.

    Each ``Conv2d`` maps a length ``L`` on the time axis (the first spatial one) to
    ``(L + 2 p - d (k - 1) - 1) // s + 1``; never below 0.
    """
    for layer in embed.conv:
        if isinstance(layer, torch.nn.Conv2d):
            k, s, p, d = layer.kernel_size[0], layer.stride[0], layer.padding[0], layer.dilation[0]
            lengths = torch.div(lengths + 2 * p - d * (k - 1) - 1, s, rounding_mode="floor") + 1
    return lengths.clamp(min=0)


class _PaddingMask:
    """The valid frames ``(B, T)`` of the batch being encoded, set by the subsampling's hook."""

    def __init__(self):
        self.valid: Optional[torch.Tensor] = None

    def after_subsampling(self, embed, inputs, output):
        """Replace the sliced mask by the exact one (and remember it for the convolutions)."""
        x, mask = output
        if mask is None:
            return output
        frames = (x[0] if isinstance(x, tuple) else x).size(1)
        lengths = subsampled_lengths(embed, inputs[1].squeeze(1).sum(-1))
        self.valid = ~make_pad_mask(lengths, maxlen=frames).to(mask.device)
        return x, self.valid.unsqueeze(1)

    def before_depthwise_conv(self, conv, inputs):
        """Zero the frames after each utterance's end of the input ``(B, C, T)``."""
        (x,) = inputs
        if self.valid is None or self.valid.shape != (x.size(0), x.size(2)):
            return None
        return (x.masked_fill(~self.valid.unsqueeze(1), 0.0),)


def mask_encoder_padding(encoder: torch.nn.Module) -> List[torch.utils.hooks.RemovableHandle]:
    """Install the hooks of points 2 and 3 on an ESPnet encoder with convolutional subsampling.

    Encoders without it (``input_layer: linear``, ...) keep their lengths; every
    ``depthwise_conv`` of the encoder (the conformer's convolution modules) gets its input masked.
    """
    from espnet.nets.pytorch_backend.transformer.embedding import LegacyRelPositionalEncoding

    if any(isinstance(module, LegacyRelPositionalEncoding) for module in encoder.modules()):
        logging.warning("encoder_conf rel_pos_type: legacy (ESPnet's deprecated default) is not batch-invariant: "
                        "an utterance's encoding depends on its batch; use rel_pos_type: latest")
    embed = getattr(encoder, "embed", None)
    if embed is None or not isinstance(getattr(embed, "conv", None), torch.nn.Sequential):
        return []
    mask = _PaddingMask()
    handles = [embed.register_forward_hook(mask.after_subsampling)]
    for name, module in encoder.named_modules():
        if name.endswith("depthwise_conv") and isinstance(module, torch.nn.Conv1d):
            handles.append(module.register_forward_pre_hook(mask.before_depthwise_conv))
    return handles
