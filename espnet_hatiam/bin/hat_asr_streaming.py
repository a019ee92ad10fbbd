#!/usr/bin/env python3
"""Streaming recognition with a chunk-trained HAT/IAM model: :class:`HATSpeech2TextStreaming` and a
live-style CLI that feeds a recording as it would arrive and prints the partial hypotheses.

    python -m espnet_hatiam.bin.hat_asr_streaming --asr_train_config C --asr_model_file M \\
        --wav rec.wav [--chunk_size 16] [--num_left_chunks -1] [--feed_ms 100] \\
        [--iam_blank_threshold 0.95] [--hat_blank_threshold 0.95] [--beam_size 4]

prints ``<audio seconds received>  <partial best>`` after each feed whose best hypothesis changed,
then ``final: <text>``. A recipe decodes a test set streamed with ``hat_asr_inference --streaming
true`` (decode yaml ``streaming: true``, ``chunk_size``, ``num_left_chunks``).

A stream goes: samples -> :class:`~espnet_hatiam.models.feature_stream.FeatureStream` (the
frontend's frames as they complete) -> :class:`~espnet_hatiam.models.chunked_encoder.EncoderStream`
(whole chunks of C encoder frames, the left-context caches of every layer) ->
:class:`~espnet_hatiam.search.StreamingDecoder` (IAM frame skipping on each chunk, then the beam or
greedy search from where the last chunk left it, HAT-blank thresholding inside). The final n-best
equals the offline search of the same model over the same chunked encoder output
(``encoder(feats, chunk_size=C)``).
"""

import argparse
import sys
import time
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text, Result
from espnet_hatiam.errors import InputError, one_line_errors
from espnet_hatiam.models.chunked_encoder import EncoderStream
from espnet_hatiam.models.feature_stream import FeatureStream
from espnet_hatiam.search import SearchConfig, SearchCounters, StreamingDecoder


class HATSpeech2TextStreaming(HATSpeech2Text):
    """Speech to text as audio arrives, like ESPnet's ``Speech2TextStreaming``: a stream by calls, a batch of
    streams side by side by :meth:`decode_batch`.

    Args (besides :class:`HATSpeech2Text`'s):
        chunk_size: C, encoder frames per chunk (16 = 640 ms at 10 ms hops and 4x subsampling); the
            algorithmic latency is C frames plus the subsampling's look-ahead.
        num_left_chunks: left chunks each frame attends to (None: the training config's; 0 or -1: all).

    ``recognizer(samples)`` with samples ``(S,)`` of any length returns the partial n-best;
    ``recognizer(samples, is_final=True)`` ends the stream and returns the final n-best; :meth:`reset`
    starts a new one (a call after the final one is refused). After each call :attr:`last_timing` holds that call's
    compute and :attr:`last_counters` the stream's counters so far.
    """

    def __init__(self, *args, chunk_size: int = 16, num_left_chunks: Optional[int] = None, **kwargs):
        kwargs.setdefault("encode_window_seconds", 0.0)
        super().__init__(*args, **kwargs)
        self.chunk_size, self.num_left_chunks = chunk_size, num_left_chunks
        self.reset()  # first: refuses a model or chunk size that cannot stream
        encoder, stft = self.model.encoder, self.model.frontend.stft
        self.chunk_seconds = chunk_size * encoder.subsampling_factor() * stft.hop_length / self.fs
        # look-ahead: a chunk's last encoder frame reads feature frames up to (receptive field - stride - 1) hops past
        # the chunk's last hop, and that frame's window ends n_fft (less n_fft / 2 when centred) samples after it starts
        extra_frames = encoder.receptive_field() - encoder.subsampling_factor() - 1
        self.lookahead_seconds = (extra_frames * stft.hop_length + stft.n_fft
                                  - (stft.n_fft // 2 if stft.center else 0)) / self.fs

    def reset(self, streams: int = 1) -> None:
        """Start a new stream (refuses, in one line, a model or chunk size that cannot stream); ``streams``
        side by side: the state :meth:`decode_batch` feeds in lock-step."""
        self.features = FeatureStream(self.model.frontend, self.model.normalize)
        self.encoder_stream = EncoderStream(self.model.encoder, self.chunk_size, self.num_left_chunks)
        self.search = StreamingDecoder(self.model.joint_network, self.model.decoder, self.config, streams, self.device,
                                       fusion=self.fusion,
                                       counters=SearchCounters.for_lengths(torch.zeros(streams, dtype=torch.long)))
        self.samples_received, self.ended = 0, False

    @torch.no_grad()
    def __call__(self, speech: Union[np.ndarray, torch.Tensor], is_final: bool = False,
                 sample_rate: Optional[int] = None) -> List[Result]:
        """Samples ``(S,)`` of the stream (mono, at the model's rate) -> its n-best so far (final with ``is_final``)."""
        if self.ended:
            raise InputError("audio after the final chunk (is_final=True) of the stream: call reset() to start a new one")
        samples = self._check(speech, sample_rate)
        start = self._clock()
        feats = self.features.push(samples.to(self.device), final=is_final)
        enc_out = self.encoder_stream.push(feats, final=is_final)
        encoded = self._clock()
        self.search.extend(enc_out, torch.tensor([enc_out.size(1)], device=self.device))
        nbest = self.search.nbest(self.config.nbest if is_final else 1)[0]
        searched = self._clock()
        self.samples_received += samples.numel()
        self.ended = is_final
        self.last_counters = self.search.counters
        self.last_timing = {"encoder_seconds": encoded - start, "search_seconds": searched - encoded,
                            "audio_seconds": samples.numel() / self.fs, "frames": enc_out.size(1)}
        return [self.result(hyp) for hyp in nbest]

    def _check(self, speech: Union[np.ndarray, torch.Tensor], sample_rate: Optional[int]) -> torch.Tensor:
        """One line naming what is wrong with a chunk: rate, channels, NaN or inf."""
        if sample_rate is not None and int(sample_rate) != self.fs:
            raise InputError(f"audio chunk at {sample_rate} Hz: this model expects {self.fs} Hz "
                             "(resample the stream first)")
        samples = torch.as_tensor(speech, dtype=torch.float32)
        if samples.dim() == 2 and 1 in samples.shape:
            samples = samples.reshape(-1)
        if samples.dim() != 1:
            raise InputError(f"audio chunk of shape {tuple(samples.shape)}: expected mono samples (S,); "
                             "pick or mix one channel")
        if not torch.isfinite(samples).all():
            raise InputError(f"audio chunk after {self.samples_received / self.fs:.2f} s of the stream "
                             "has NaN or inf samples")
        return samples

    @torch.no_grad()
    def decode_batch(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> List[List[Result]]:
        """The utterances of a padded batch ``(B, L)`` streamed side by side, in pieces of ``chunk_seconds``.

        Each piece of every utterance still going is one batched pass of the frontend and the encoder and one
        search step of all B streams, as a server would tick its streams; an utterance's last (shorter) piece
        is fed on its own. Each utterance's n-best equals its own stream's (the same chunks). Its frame counts
        do too; the selecting plan's look-ahead is decided for the batch, so with HAT-blank thresholding the
        work counters (``joint_evaluations``, ``frames_searched``) depend on the batch, as in any batched search.
        :attr:`last_timing` and :attr:`last_counters` then cover the batch (a recipe's decode stats).
        """
        step = max(1, round(self.chunk_seconds * self.fs))
        samples = [int(n) for n in speech_lengths]
        lengths = [max(n, 1) for n in samples]  # an empty utterance is one (empty) final piece
        batch = len(lengths)
        speech = speech.to(self.device, torch.float32)  # NaN or inf: the caller's data check (checks.check_finite)
        self.reset(batch)
        features, encoder, going = self.features, self.encoder_stream, list(range(batch))
        timing = {"encoder_seconds": 0.0, "search_seconds": 0.0}
        for begin in range(0, max(lengths), step):
            start = self._clock()
            outputs = {}  # utterance -> its encoder frames of this piece (1, n, D)
            last = [i for i, b in enumerate(going) if begin + step >= lengths[b]]
            for i in last:  # the last piece of an utterance: fed alone, it ends the stream
                b = going[i]
                feats = features.select([i]).push(speech[b: b + 1, begin: samples[b]], final=True)
                outputs[b] = encoder.select([i]).push(feats, final=True)
            if last:
                kept = [i for i in range(len(going)) if i not in last]
                going = [going[i] for i in kept]
                features, encoder = features.select(kept), encoder.select(kept)
            if going:
                enc_out = encoder.push(features.push(speech[going, begin: begin + step]))
                outputs.update((b, enc_out[i: i + 1]) for i, b in enumerate(going))
            frames = torch.zeros(batch, dtype=torch.long)
            chunk = next(iter(outputs.values())).new_zeros(batch, max(o.size(1) for o in outputs.values()),
                                                          self.model.encoder.output_size())
            for b, out in outputs.items():
                chunk[b, : out.size(1)], frames[b] = out[0], out.size(1)
            encoded = self._clock()
            self.search.extend(chunk, frames.to(self.device))
            timing["encoder_seconds"] += encoded - start
            timing["search_seconds"] += self._clock() - encoded
        results = [[self.result(hyp) for hyp in nbest] for nbest in self.search.nbest(self.config.nbest)]
        self.ended = True
        self.last_counters = self.search.counters
        self.last_timing = {**timing, "audio_seconds": float(speech_lengths.sum()) / self.fs}
        return results


def stream_file(speech2text: HATSpeech2TextStreaming, samples: np.ndarray, feed_ms: float, out=sys.stdout) -> str:
    """Feed ``samples`` in pieces of ``feed_ms`` as if live; print each changed partial with its audio time."""
    step = max(1, round(feed_ms * speech2text.fs / 1000))
    shown = None
    for begin in range(0, max(len(samples), 1), step):
        final = begin + step >= len(samples)
        nbest = speech2text(samples[begin: begin + step], is_final=final)
        text = nbest[0][0] if nbest else ""
        seconds = min(begin + step, len(samples)) / speech2text.fs
        if final:
            print(f"final: {text}", file=out)
        elif text != shown:
            print(f"{seconds:7.2f}s  {text}", file=out)
            shown = text
    return text


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asr_train_config", required=True)
    parser.add_argument("--asr_model_file", required=True)
    parser.add_argument("--wav", required=True, help="a mono recording at the model's sampling rate")
    parser.add_argument("--chunk_size", type=int, default=16, help="encoder frames per chunk")
    parser.add_argument("--num_left_chunks", type=int, default=None, help="left chunks attended to (-1: all)")
    parser.add_argument("--feed_ms", type=float, default=100.0, help="audio handed over per call, in ms")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_threads", type=int, default=1)
    SearchConfig.add_arguments(parser)
    return parser


def main(cmd=None):
    import soundfile

    parser = get_parser()
    args = vars(parser.parse_args(cmd))
    with one_line_errors(parser.prog):
        torch.set_num_threads(args.pop("num_threads"))
        wav, feed_ms = args.pop("wav"), args.pop("feed_ms")
        try:
            samples, rate = soundfile.read(wav, dtype="float32")
        except (RuntimeError, OSError) as error:
            raise InputError(f"--wav {wav}: cannot read it ({error})") from error
        search_config = SearchConfig.pop_from(args)
        speech2text = HATSpeech2TextStreaming(search_config=search_config, **args)
        if rate != speech2text.fs:
            raise InputError(f"--wav {wav}: {rate} Hz, the model expects {speech2text.fs} Hz")
        if samples.ndim != 1:
            raise InputError(f"--wav {wav}: {samples.shape[1]} channels, the model expects mono")
        start = time.perf_counter()
        stream_file(speech2text, samples, feed_ms)
        print(f"({len(samples) / rate:.2f} s of audio in {time.perf_counter() - start:.2f} s; chunks of "
              f"{speech2text.chunk_seconds * 1000:.0f} ms, look-ahead {speech2text.lookahead_seconds * 1000:.0f} ms)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
