"""Features of a stream of samples, equal to the model's frontend on the whole recording.

ESPnet's STFT frontend (``DefaultFrontend``, ``center=True``) reflects the signal by n_fft / 2
samples at both ends, then frames it every hop. :class:`FeatureStream` keeps the samples from the
next frame's start, reflects the first n_fft / 2 + 1 samples once they have arrived, computes
every frame whose window has arrived (the frontend with ``center`` off on those samples), and
reflects the last samples when the stream ends. Only the samples of the frames not yet computed
are kept (less than n_fft + hop). ESPnet's own ``OnlineAudioProcessor`` (``asr_transducer``) trims
frames at the chunk edges instead, which differs from the whole-recording features there.
"""

import contextlib
import copy
from typing import List, Optional, Tuple

import torch

from espnet_hatiam.errors import InputError


class FeatureStream:
    """Normalised features of B streams fed in lock-step: ``push(samples)`` -> the frames now complete.

    Every stream of one :class:`FeatureStream` gets the same number of samples a push (one stream:
    samples ``(S,)``; several side by side: ``(B, S)``), so their frames complete together; a stream
    that ends apart from the others goes on alone from :meth:`select`.

    Args:
        frontend: the model's ESPnet frontend with an ``stft`` (``DefaultFrontend``).
        normalize: the model's feature normalisation: ``GlobalMVN`` (per frame, as the recipes train) or None.
    """

    def __init__(self, frontend: torch.nn.Module, normalize: Optional[torch.nn.Module]):
        stft = getattr(frontend, "stft", None)
        if stft is None:
            raise InputError(f"streaming needs ESPnet's STFT frontend (frontend: default), not "
                             f"{type(frontend).__name__}")
        if normalize is not None and type(normalize).__name__ != "GlobalMVN":
            raise InputError(f"streaming needs per-frame normalisation (normalize: global_mvn, or none), not "
                             f"{type(normalize).__name__}, which needs the whole utterance")
        self.frontend, self.normalize, self.stft = frontend, normalize, stft
        self.n_fft, self.hop = stft.n_fft, stft.hop_length
        self.pad = self.n_fft // 2 if stft.center else 0
        self.head: Optional[torch.Tensor] = None  # (B, n) samples before the left reflection can be made
        self.buffer: Optional[torch.Tensor] = None  # (B, n) padded samples from the next frame's start
        self.tail: Optional[torch.Tensor] = None  # (B, pad + 1) the last samples (the right reflection)

    @torch.no_grad()
    def push(self, samples: torch.Tensor, final: bool = False) -> torch.Tensor:
        """Samples ``(S,)`` or ``(B, S)`` (S may be 0) -> normalised features ``(B, N, F)`` of the frames now complete."""
        samples = samples.view(1, -1) if samples.dim() == 1 else samples
        recent = samples if self.tail is None else torch.cat([self.tail, samples], 1)
        self.tail = recent[:, -(self.pad + 1):]
        if self.buffer is None:
            self.head = samples if self.head is None else torch.cat([self.head, samples], 1)
            if self.head.size(1) > self.pad:
                left = self.head[:, 1: self.pad + 1].flip(1)
                self.buffer, self.head = torch.cat([left, self.head], 1), None
            else:  # a stream shorter than the reflection has no frame (the whole-recording STFT refuses it)
                return samples.new_zeros(samples.size(0), 0, self._dims())
        else:
            self.buffer = torch.cat([self.buffer, samples], 1)
        if final and self.pad:
            self.buffer = torch.cat([self.buffer, self.tail[:, :-1].flip(1)], 1)
        length = self.buffer.size(1)
        frames = (length - self.n_fft) // self.hop + 1 if length >= self.n_fft else 0
        if frames <= 0:
            return samples.new_zeros(samples.size(0), 0, self._dims())
        feats = self._features(self.buffer[:, : (frames - 1) * self.hop + self.n_fft], center=False)
        self.buffer = self.buffer[:, frames * self.hop:]
        return feats

    def select(self, rows: List[int]) -> "FeatureStream":
        """The streams ``rows`` (indices into B) as a stream of their own, from where they are."""
        other = copy.copy(self)
        for name in ("head", "buffer", "tail"):
            value = getattr(self, name)
            setattr(other, name, None if value is None else value[rows])
        return other

    def _features(self, samples: torch.Tensor, center: bool) -> torch.Tensor:
        """The frontend (and normalisation) on ``samples (B, S)``, with the STFT's ``center`` as given."""
        lengths = torch.full((samples.size(0),), samples.size(1), device=samples.device)
        with _stft_center(self.stft, center):
            feats, feats_lengths = self.frontend(samples, lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        return feats

    def _dims(self) -> int:
        return self.frontend.output_size()


@contextlib.contextmanager
def _stft_center(stft: torch.nn.Module, center: bool):
    saved, stft.center = stft.center, center
    try:
        yield
    finally:
        stft.center = saved


def whole_features(frontend: torch.nn.Module, normalize: Optional[torch.nn.Module],
                   samples: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The model's frontend and normalisation on a whole recording ``(S,)``: ``(1, T, F)``, ``(1,)``."""
    feats, lengths = frontend(samples.unsqueeze(0), torch.tensor([samples.numel()]))
    if normalize is not None:
        feats, lengths = normalize(feats, lengths)
    return feats, lengths
