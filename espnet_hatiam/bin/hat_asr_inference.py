#!/usr/bin/env python3
"""Decode with a HAT/IAM transducer: Python API (:class:`HATSpeech2Text`) and ESPnet-style CLI.

    python -m espnet_hatiam.bin.hat_asr_inference --asr_train_config C --asr_model_file M \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound --output_dir D \\
        [--config conf/decode_dual_0.95.yaml] [--batch_size 8] [--search_type greedy|beam|espnet] \\
        [--beam_size 4] [--iam_blank_threshold 0.95] [--hat_blank_threshold 0.95] [--device cpu|cuda] \\
        [--streaming true --chunk_size 16 [--num_left_chunks -1]]

writes ``D/1best_recog/{text,token,token_int,score}`` (ESPnet's layout), ``D/utt_stats.jsonl``
(per-utterance counters) and ``D/decode_stats.json`` (totals and timings): the layout of
:mod:`espnet_hatiam.data.decode_dir`. Greedy search with both thresholds off also writes
``blank_agreement`` there (frames where the IAM and the greedy path agree on blank vs label,
:class:`SearchCounters`), which ``plot_results`` turns into the blank synchrony.
"""

import argparse
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from espnet_hatiam.data import checks, decode_dir
from espnet_hatiam.errors import InputError, one_line_errors
from espnet_hatiam.models.long_form import encode_in_windows
from espnet_hatiam.search import Hypothesis, RNNLMFusion, SearchConfig, SearchCounters, decode_encoded

Result = Tuple[str, List[str], List[int], Any]  # (text, tokens, token_ids, hypothesis)


class HATSpeech2Text:
    """Speech to text with a trained HAT/IAM model, like ESPnet's ``Speech2Text``.

    Args:
        asr_train_config, asr_model_file: ``config.yaml`` and ``*.pth`` written by training.
        device: torch device.
        search_config: the decoding options (:class:`SearchConfig`); or give its fields as
            keywords (``beam_size=4, iam_blank_threshold=0.95, ...``), not both.
        token_type, bpemodel: override the tokenizer of the training config.
        lm_train_config, lm_file: an ESPnet RNN LM (``espnet2.bin.lm_train``, ``lm: seq_rnn``)
            on the same token list, for shallow fusion in the beam search
            (``lm_weight``/``ilm_weight`` of the search config).
        encode_window_seconds, encode_context_seconds: a recording longer than the window plus
            twice the context is encoded in windows (``models.long_form``), in memory linear in its
            length; 0 encodes every recording in one pass.

    After each call, :attr:`last_counters` and :attr:`last_timing` describe the batch.
    """

    def __init__(
        self,
        asr_train_config: Union[Path, str],
        asr_model_file: Union[Path, str, None] = None,
        device: str = "cpu",
        search_config: Optional[SearchConfig] = None,
        token_type: Optional[str] = None,
        bpemodel: Optional[str] = None,
        lm_train_config: Optional[str] = None,
        lm_file: Optional[str] = None,
        encode_window_seconds: float = 30.0,
        encode_context_seconds: float = 5.0,
        **search_options: Any,
    ):
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

        from espnet_hatiam.tasks.hat_asr import HATASRTask

        if search_config is not None and search_options:
            raise ValueError("give search_config or search options as keywords, not both")
        config = search_config or SearchConfig.from_options(**search_options)
        with checks.loading_model(asr_train_config, asr_model_file):
            model, train_args = HATASRTask.build_model_from_file(asr_train_config, asr_model_file, device)
        model.eval()
        if config.hat_blank_threshold < 1.0 and not model.joint_network.is_factorized:
            raise ValueError(
                f"hat_blank_threshold={config.hat_blank_threshold} needs a HAT joint; {asr_train_config} "
                "has joint_type rnnt"
            )
        self.model, self.device, self.config = model, device, config
        self.fs = checks.model_sampling_rate(vars(train_args))
        token_type = token_type or train_args.token_type
        bpemodel = bpemodel or train_args.bpemodel
        if token_type == "bpe":
            checks.check_bpemodel(bpemodel, model.token_list)
        self.tokenizer = build_tokenizer(token_type=token_type, bpemodel=bpemodel) if token_type else None
        self.converter = TokenIDConverter(token_list=model.token_list)
        self.fusion = None
        if lm_train_config is not None or lm_file is not None:
            if config.search_type != "beam":
                raise ValueError("LM fusion (lm_train_config/lm_file) needs search_type beam")
            from espnet2.tasks.lm import LMTask

            lm_model, _ = LMTask.build_model_from_file(lm_train_config, lm_file, device)
            self.fusion = RNNLMFusion(lm_model.lm.eval(), model.joint_network, config.lm_weight, config.ilm_weight)
        elif config.lm_weight or config.ilm_weight:
            raise ValueError("lm_weight/ilm_weight need an LM: give lm_train_config and lm_file")
        if encode_window_seconds < 0 or encode_context_seconds < 0:
            raise InputError(f"encode_window_seconds and encode_context_seconds must be >= 0, got "
                             f"{encode_window_seconds} and {encode_context_seconds}")
        stft = getattr(model.frontend, "stft", None)  # windows need ESPnet's STFT frontend
        frames_per_second = self.fs / stft.hop_length if stft is not None else 0.0
        self.window = round(encode_window_seconds * frames_per_second)
        self.context = round(encode_context_seconds * frames_per_second)
        self.one_pass_samples = round((encode_window_seconds + 2 * encode_context_seconds) * self.fs)
        self.last_counters: Optional[SearchCounters] = None
        self.last_timing: Dict[str, float] = {}

    @classmethod
    def from_pretrained(cls, model_file: Union[Path, str], unpack_dir: Optional[str] = None, **kwargs):
        """Load a packed model: the zip of ``espnet2.bin.pack asr`` (recipe stage 14; unpacked to
        ``unpack_dir``), the folder it unpacks to, or the Hugging Face model folder of stage 15."""
        from espnet_hatiam.bin.hf_model_folder import packed_model_files

        with packed_model_files(model_file, unpack_dir) as files:
            return cls(asr_train_config=files["asr_train_config"], asr_model_file=files["asr_model_file"], **kwargs)

    @torch.no_grad()
    def __call__(self, speech: Union[np.ndarray, torch.Tensor]) -> List[Result]:
        """N-best list of ``(text, tokens, token_ids, hypothesis)`` for one waveform ``(L,)``."""
        speech = torch.as_tensor(speech, dtype=torch.float32)
        return self.decode_batch(speech.unsqueeze(0), torch.tensor([speech.size(0)]))[0]

    @torch.no_grad()
    def decode_batch(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> List[List[Result]]:
        """Decode a padded batch ``(B, L)`` with lengths ``(B,)``: one n-best list per utterance."""
        speech, speech_lengths = speech.to(self.device), speech_lengths.to(self.device)
        start = self._clock()
        enc_out, enc_lens = self.encode(speech, speech_lengths)
        encoded = self._clock()
        counters = SearchCounters.for_lengths(enc_lens)
        nbests = self.search_encoded(enc_out, enc_lens, counters)
        searched = self._clock()
        self.last_counters = counters
        self.last_timing = {
            "encoder_seconds": encoded - start,
            "search_seconds": searched - encoded,
            "audio_seconds": float(speech_lengths.sum()) / self.fs,
        }
        return [[self.result(hyp) for hyp in nbest] for nbest in nbests]

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``(B, T, De)``, ``(B,)``; recordings over the one-pass limit in windows."""
        if not self.window or int(speech_lengths.max()) <= self.one_pass_samples:
            return self.model.encode(speech, speech_lengths)
        outs, lens = [], []
        for utterance, length in zip(speech, speech_lengths):
            if int(length) > self.one_pass_samples:
                out, out_len = encode_in_windows(self.model, utterance[: int(length)], self.window, self.context)
            else:
                out, out_len = self.model.encode(utterance[None, : int(length)], length.view(1))
            outs.append(out[0])
            lens.append(out_len)
        return torch.nn.utils.rnn.pad_sequence(outs, batch_first=True), torch.cat(lens)

    def _clock(self) -> float:
        """Wall time after the device's queued work is done (CUDA runs asynchronously)."""
        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @torch.no_grad()
    def search_encoded(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, counters: SearchCounters
    ) -> List[List[Hypothesis]]:
        """The configured search on encoder output ``(B, T, De)``: n-best per utterance."""
        return decode_encoded(self.model.joint_network, self.model.decoder, enc_out, enc_lens, self.config,
                              counters, self.fusion)

    def result(self, hyp: Hypothesis) -> Result:
        """``(text, tokens, token_ids, hyp)`` of a hypothesis."""
        token_ids = [i for i in hyp.token_ids if i != 0]
        tokens = self.converter.ids2tokens(token_ids)
        text = self.tokenizer.tokens2text(tokens) if self.tokenizer is not None else "".join(tokens)
        return text, tokens, token_ids, hyp


def inference(job: decode_dir.DecodeJob, search_config: SearchConfig, streaming: bool = False,
              chunk_size: int = 16, num_left_chunks: Optional[int] = None, **speech2text_kwargs):
    """Decode a data set through ESPnet's streaming iterator and write ESPnet's output layout.

    With ``streaming``, each utterance is fed chunk by chunk to ``HATSpeech2TextStreaming``
    (``bin/hat_asr_streaming``), as a live stream would be, and scored as usual.
    """
    torch.set_num_threads(job.num_threads)
    if streaming:
        from espnet_hatiam.bin.hat_asr_streaming import HATSpeech2TextStreaming

        speech2text = HATSpeech2TextStreaming(job.asr_train_config, job.asr_model_file, search_config=search_config,
                                              chunk_size=chunk_size, num_left_chunks=num_left_chunks,
                                              **speech2text_kwargs)
    else:
        speech2text = HATSpeech2Text(job.asr_train_config, job.asr_model_file, search_config=search_config,
                                     **speech2text_kwargs)
    from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError

    settings = search_config.as_dict()
    if streaming:
        settings.update(streaming=True, chunk_size=chunk_size, num_left_chunks=num_left_chunks,
                        chunk_seconds=speech2text.chunk_seconds, lookahead_seconds=speech2text.lookahead_seconds)
    with job.writer(settings) as writer:
        for keys, batch in job.batches():
            checks.check_finite(keys, batch["speech"], batch["speech_lengths"])
            try:
                results = speech2text.decode_batch(batch["speech"], batch["speech_lengths"])
            except TooShortUttError as error:  # as ESPnet's asr_inference: empty hypotheses
                logging.warning(f"utterances {' '.join(keys)}: {error}")
                empty = SearchCounters.for_lengths(torch.zeros(len(keys)))
                for b, key in enumerate(keys):
                    writer.write(key, [], empty.utterance(b))
                writer.add({**empty.totals(), "audio_seconds": float(batch["speech_lengths"].sum()) / speech2text.fs},
                           len(keys))
                continue
            counters = speech2text.last_counters
            for b, (key, nbest) in enumerate(zip(keys, results)):
                writer.write(key, nbest, counters.utterance(b))
            writer.add({**counters.totals(), **speech2text.last_timing}, len(keys))


def get_parser() -> argparse.ArgumentParser:
    parser = decode_dir.get_parser(
        __doc__, batch_size_help="utterances decoded together",
        lm_group_title="external LM for shallow fusion (weights: --lm_weight, --ilm_weight)",
    )
    SearchConfig.add_arguments(parser)
    group = parser.add_argument_group("long recordings (memory linear in their length)")
    group.add_argument("--encode_window_seconds", type=float, default=30.0,
                       help="a recording longer than window + 2 x context is encoded in windows; 0: one pass")
    group.add_argument("--encode_context_seconds", type=float, default=5.0, help="context on either side")
    from espnet2.utils.types import int_or_none, str2bool

    group = parser.add_argument_group("streaming (a model with encoder: chunked_conformer)")
    group.add_argument("--streaming", type=str2bool, default=False,
                       help="feed each utterance chunk by chunk, as a live stream (HATSpeech2TextStreaming)")
    group.add_argument("--chunk_size", type=int, default=16, help="encoder frames per chunk (16: 640 ms at 40 ms)")
    group.add_argument("--num_left_chunks", type=int_or_none, default=None,
                       help="left chunks each frame attends to (default: the training config's; -1: all)")
    return parser


def main(cmd=None):
    parser = get_parser()
    job, args = decode_dir.parse_args(parser, cmd)
    with one_line_errors(parser.prog):
        inference(job, SearchConfig.pop_from(args), **args)


if __name__ == "__main__":
    main()
