"""Long recordings encoded in overlapping windows, in memory that grows linearly with their length.

Encoding a recording in one pass costs memory in the square of its length twice over: ESPnet's
``make_pad_mask`` (used by the log-mel layer) builds a ``(T + 1) x (T + 1)`` matrix over the feature
frames, and the conformer attends over all encoder frames. A 300 s recording took about 9 GB on the
an4 model (bench/decode_memory.py), and the models were trained on utterances of seconds.

A transducer's search is time-synchronous, so the encoder output can be made piece by piece: the
feature frames are cut into cores of ``window`` frames; each core is encoded with ``context`` feature
frames on either side, from features computed on just the samples they need (with the STFT's margin,
so that they equal the whole recording's), and the encoder frames of each core are kept and joined,
to as many frames as the one-pass encoding gives. The search then runs once over the joined frames,
so no text is cut or merged at window boundaries. When ``context`` spans the whole recording, every
window is the whole recording and the result is the one-pass encoding.
"""

from typing import Tuple

import torch

from espnet_hatiam.models.padding import subsampled_lengths


def subsampling_factor(encoder: torch.nn.Module) -> int:
    """Feature frames per encoder frame: the product of the time strides of the encoder's subsampling."""
    factor = 1
    for layer in getattr(getattr(encoder, "embed", None), "conv", []):
        if isinstance(layer, torch.nn.Conv2d):
            factor *= layer.stride[0]
    return factor


def _window_features(model, speech: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """Normalised features ``(1, last - first, F)`` of feature frames ``[first, last)`` of ``speech`` ``(L,)``,
    equal to those of the whole recording: computed on the samples they need, with the STFT's margin."""
    stft = model.frontend.stft
    hop = stft.hop_length
    margin = -(-(stft.n_fft // 2) // hop) if stft.center else 0  # frames whose window reaches past the cut
    start = max(0, first - margin)
    end_sample = min(speech.numel(), (last - 1 + margin) * hop + 1) if stft.center else min(
        speech.numel(), (last - 1) * hop + stft.n_fft)
    piece = speech[start * hop : end_sample].unsqueeze(0)
    feats, feats_lengths = model._extract_feats(piece, torch.tensor([piece.size(1)], device=speech.device))
    feats = feats[:, first - start : first - start + (last - first)]
    lengths = feats_lengths.new_tensor([feats.size(1)])
    if model.normalize is not None:
        feats, lengths = model.normalize(feats, lengths)
    return feats


@torch.no_grad()
def encode_in_windows(model, speech: torch.Tensor, window: int, context: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Encode one recording ``(L,)`` in cores of ``window`` feature frames with ``context`` frames each side.

    ``model`` is an :class:`ESPnetHATModel` in eval mode with ESPnet's STFT frontend; ``window`` and
    ``context`` are rounded up to multiples of the subsampling factor. An utterance-level normalisation
    (``utterance_mvn``) normalises each window on its own; the recipes' ``global_mvn`` is exact.
    Returns ``(1, T, De)`` and ``(1,)``, T the frames the one-pass encoding gives.
    """
    stft = model.frontend.stft
    total = 1 + speech.numel() // stft.hop_length if stft.center else 1 + (speech.numel() - stft.n_fft) // stft.hop_length
    factor = subsampling_factor(model.encoder)
    window, context = -(-window // factor) * factor, -(-context // factor) * factor
    embed = getattr(model.encoder, "embed", None)
    frames = int(subsampled_lengths(embed, torch.tensor([total]))[0]) if embed is not None else total
    pieces = []
    for start in range(0, total, window):
        first, last = max(0, start - context), min(total, start + window + context)
        feats = _window_features(model, speech, first, last)
        out, out_lens, _ = model.encoder(feats, torch.tensor([feats.size(1)], device=speech.device))
        offset = (start - first) // factor
        keep = window // factor if start + window < total else int(out_lens[0]) - offset
        pieces.append(out[0, offset : offset + max(keep, 0)])
    enc_out = torch.cat(pieces)[:frames]
    if enc_out.size(0) < frames:  # the windows' edges lost a frame or two: repeat the last one
        enc_out = torch.cat([enc_out, enc_out[-1:].expand(frames - enc_out.size(0), -1)])
    return enc_out.unsqueeze(0), torch.tensor([frames], device=speech.device)
