#!/usr/bin/env python3
"""Decode with a HAT/IAM transducer: Python API (:class:`HATSpeech2Text`) and ESPnet-style CLI.

    python -m espnet_hatiam.bin.hat_asr_inference --asr_train_config C --asr_model_file M \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound --output_dir D \\
        [--batch_size 8] [--beam_size 4] [--iam_blank_threshold 0.95] [--hat_blank_threshold 0.95]

writes ``D/1best_recog/{text,token,token_int,score}`` (ESPnet's layout), ``D/utt_stats.jsonl``
(per-utterance counters) and ``D/decode_stats.json`` (totals and timings).
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from espnet_hatiam.search import (
    Hypothesis,
    SearchCounters,
    RNNLMFusion,
    greedy_search,
    iam_frame_skip,
    modified_beam_search,
)

SEARCHES = ("hat", "espnet")
Result = Tuple[str, List[str], List[int], Any]  # (text, tokens, token_ids, hypothesis)


class HATSpeech2Text:
    """Speech to text with a trained HAT/IAM model, like ESPnet's ``Speech2Text``.

    Args:
        asr_train_config, asr_model_file: ``config.yaml`` and ``*.pth`` written by training.
        device: torch device.
        beam_size: 1 is greedy search.
        nbest: hypotheses returned per utterance.
        iam_blank_threshold: theta_IAM; frames whose IAM P(blank) >= it are skipped (>= 1: off).
        hat_blank_threshold: theta_HAT; no label projection where HAT P(blank) >= it (>= 1: off).
        search: "hat" (this project's batched search) or "espnet" (ESPnet's
            BeamSearchTransducer on the same model, for comparison).
        max_sym_per_frame: labels per frame (greedy search; the beam search emits at most one).
        token_type, bpemodel: override the tokenizer of the training config.
        fs: sampling rate of the input, for ``audio_seconds``.
        lm_train_config, lm_file: an ESPnet RNN LM (``espnet2.bin.lm_train``, ``lm: seq_rnn``)
            on the same token list, for shallow fusion in the beam search.
        lm_weight, ilm_weight: score += lm_weight log P_LM(k) - ilm_weight log P_ILM(k).

    After each call, :attr:`last_counters` and :attr:`last_timing` describe the batch.
    """

    def __init__(
        self,
        asr_train_config: Union[Path, str],
        asr_model_file: Union[Path, str, None] = None,
        device: str = "cpu",
        beam_size: int = 4,
        nbest: int = 1,
        iam_blank_threshold: float = 1.0,
        hat_blank_threshold: float = 1.0,
        search: str = "hat",
        max_sym_per_frame: int = 1,
        token_type: Optional[str] = None,
        bpemodel: Optional[str] = None,
        fs: int = 16000,
        lm_train_config: Optional[str] = None,
        lm_file: Optional[str] = None,
        lm_weight: float = 0.0,
        ilm_weight: float = 0.0,
    ):
        from espnet2.text.build_tokenizer import build_tokenizer
        from espnet2.text.token_id_converter import TokenIDConverter

        from espnet_hatiam.tasks.hat_asr import HATASRTask

        if search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, got '{search}'")
        if beam_size < 1 or not 1 <= nbest <= beam_size:
            raise ValueError(f"need beam_size >= 1 and 1 <= nbest <= beam_size, got {beam_size}, {nbest}")
        if max_sym_per_frame > 1 and beam_size > 1 and search == "hat":
            raise ValueError("max_sym_per_frame > 1 is supported by greedy search (beam_size 1) only")
        model, train_args = HATASRTask.build_model_from_file(asr_train_config, asr_model_file, device)
        model.eval()
        if hat_blank_threshold < 1.0 and not model.joint_network.is_factorized:
            raise ValueError(
                f"hat_blank_threshold={hat_blank_threshold} needs a HAT joint; {asr_train_config} "
                "has joint_type rnnt"
            )
        if search == "espnet" and hat_blank_threshold < 1.0:
            raise ValueError("hat_blank_threshold applies to search='hat' only")
        self.model = model
        self.device = device
        self.beam_size, self.nbest = beam_size, nbest
        self.iam_blank_threshold = iam_blank_threshold
        self.hat_blank_threshold = hat_blank_threshold
        self.search, self.max_sym_per_frame, self.fs = search, max_sym_per_frame, fs
        token_type = token_type or train_args.token_type
        bpemodel = bpemodel or train_args.bpemodel
        self.tokenizer = build_tokenizer(token_type=token_type, bpemodel=bpemodel) if token_type else None
        self.converter = TokenIDConverter(token_list=model.token_list)
        self.fusion = None
        if lm_train_config is not None or lm_file is not None:
            if search != "hat":
                raise ValueError("LM fusion (lm_train_config/lm_file) is implemented for search='hat'")
            from espnet2.tasks.lm import LMTask

            lm_model, _ = LMTask.build_model_from_file(lm_train_config, lm_file, device)
            self.fusion = RNNLMFusion(lm_model.lm.eval(), model.joint_network, lm_weight, ilm_weight)
        elif lm_weight or ilm_weight:
            raise ValueError("lm_weight/ilm_weight need an LM: give lm_train_config and lm_file")
        self.espnet_search = None
        if search == "espnet":
            from espnet2.asr.transducer.beam_search_transducer import BeamSearchTransducer

            self.espnet_search = BeamSearchTransducer(
                decoder=model.decoder,
                joint_network=model.joint_network,
                beam_size=beam_size,
                nbest=nbest,
                score_norm=False,
                token_list=model.token_list,
            )
        self.last_counters: Optional[SearchCounters] = None
        self.last_timing: Dict[str, float] = {}

    @classmethod
    def from_pretrained(cls, model_file: Union[Path, str], unpack_dir: Optional[str] = None, **kwargs):
        """Load a model zip packed by ``espnet2.bin.pack asr`` (recipe stage 14)."""
        from espnet2.main_funcs.pack_funcs import unpack

        model_file = Path(model_file)
        if not model_file.is_file():
            raise FileNotFoundError(f"no packed model at '{model_file}'")
        files = unpack(model_file, unpack_dir or str(model_file.with_suffix("")) + "_unpacked")
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
        start = time.perf_counter()
        enc_out, enc_lens = self.model.encode(speech, speech_lengths)
        encoded = time.perf_counter()
        counters = SearchCounters.for_lengths(enc_lens)
        nbests = self.search_encoded(enc_out, enc_lens, counters)
        searched = time.perf_counter()
        self.last_counters = counters
        self.last_timing = {
            "encoder_seconds": encoded - start,
            "search_seconds": searched - encoded,
            "audio_seconds": float(speech_lengths.sum()) / self.fs,
        }
        return [[self.result(hyp) for hyp in nbest] for nbest in nbests]

    @torch.no_grad()
    def search_encoded(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, counters: SearchCounters
    ) -> List[List[Hypothesis]]:
        """IAM frame skipping and search on encoder output ``(B, T, De)``: n-best per utterance."""
        joint, decoder = self.model.joint_network, self.model.decoder
        enc_out, enc_lens = iam_frame_skip(joint, enc_out, enc_lens, self.iam_blank_threshold)
        counters.frames_kept = enc_lens.cpu().long()
        if self.search == "espnet":
            nbests = []
            for b in range(enc_out.size(0)):
                hyps = self.espnet_search(enc_out[b, : int(enc_lens[b])])
                nbests.append([Hypothesis([int(i) for i in h.yseq[1:]], float(h.score)) for h in hyps])
            return nbests
        if self.beam_size == 1 and self.fusion is None:
            hyps = greedy_search(
                joint, decoder, enc_out, enc_lens, self.max_sym_per_frame, self.hat_blank_threshold, counters
            )
            return [[h] for h in hyps]
        return modified_beam_search(
            joint, decoder, enc_out, enc_lens, self.beam_size, self.nbest, self.hat_blank_threshold, counters,
            self.fusion,
        )

    def result(self, hyp: Hypothesis) -> Result:
        """``(text, tokens, token_ids, hyp)`` of a hypothesis."""
        token_ids = [i for i in hyp.token_ids if i != 0]
        tokens = self.converter.ids2tokens(token_ids)
        text = self.tokenizer.tokens2text(tokens) if self.tokenizer is not None else "".join(tokens)
        return text, tokens, token_ids, hyp


def inference(
    output_dir: str,
    asr_train_config: str,
    asr_model_file: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    key_file: Optional[str],
    batch_size: int,
    num_threads: int,
    **speech2text_kwargs,
):
    """Decode a data set through ESPnet's streaming iterator and write ESPnet's output layout."""
    from espnet2.fileio.datadir_writer import DatadirWriter
    from espnet2.tasks.asr import ASRTask

    torch.set_num_threads(num_threads)
    speech2text = HATSpeech2Text(asr_train_config, asr_model_file, **speech2text_kwargs)
    loader = ASRTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype="float32",
        batch_size=batch_size,
        key_file=key_file,
        num_workers=1,
        preprocess_fn=None,
        collate_fn=ASRTask.build_collate_fn(argparse.Namespace(), False),
        allow_variable_data_keys=False,
        inference=True,
    )
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    totals: Dict[str, float] = {}
    with DatadirWriter(output) as writer, open(output / "utt_stats.jsonl", "w") as utt_stats:
        for keys, batch in loader:
            results = speech2text.decode_batch(batch["speech"], batch["speech_lengths"])
            counters = speech2text.last_counters
            for b, (key, nbest) in enumerate(zip(keys, results)):
                for n, (text, tokens, token_ids, hyp) in enumerate(nbest, 1):
                    ibest = writer[f"{n}best_recog"]
                    ibest["text"][key] = text
                    ibest["token"][key] = " ".join(tokens)
                    ibest["token_int"][key] = " ".join(map(str, token_ids))
                    ibest["score"][key] = str(hyp.score)
                utt_stats.write(json.dumps({"utt": key, **counters.utterance(b)}) + "\n")
            for name, value in list(counters.totals().items()) + list(speech2text.last_timing.items()):
                totals[name] = totals.get(name, 0) + value
            totals["utterances"] = totals.get("utterances", 0) + len(keys)
            logging.info(f"decoded {int(totals['utterances'])} utterances")
    stats = {
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in totals.items()},
        "search": speech2text.search,
        "beam_size": speech2text.beam_size,
        "iam_blank_threshold": speech2text.iam_blank_threshold,
        "hat_blank_threshold": speech2text.hat_blank_threshold,
        "batch_size": batch_size,
        "num_threads": num_threads,
    }
    (output / "decode_stats.json").write_text(json.dumps(stats, indent=2) + "\n")


def get_parser() -> argparse.ArgumentParser:
    from espnet2.utils import config_argparse
    from espnet2.utils.types import str2triple_str, str_or_none

    parser = config_argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log_level", default="INFO", choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--asr_train_config", required=True)
    parser.add_argument("--asr_model_file", required=True)
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    parser.add_argument("--key_file", type=str_or_none, default=None)
    parser.add_argument("--batch_size", type=int, default=1, help="utterances decoded together")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    group = parser.add_argument_group("search")
    group.add_argument("--search", choices=SEARCHES, default="hat")
    group.add_argument("--beam_size", type=int, default=4)
    group.add_argument("--nbest", type=int, default=1)
    group.add_argument("--iam_blank_threshold", type=float, default=1.0)
    group.add_argument("--hat_blank_threshold", type=float, default=1.0)
    group.add_argument("--max_sym_per_frame", type=int, default=1)
    group.add_argument("--token_type", type=str_or_none, default=None)
    group.add_argument("--bpemodel", type=str_or_none, default=None)
    group.add_argument("--fs", type=int, default=16000)
    group = parser.add_argument_group("external LM shallow fusion with ILM subtraction")
    group.add_argument("--lm_train_config", type=str_or_none, default=None)
    group.add_argument("--lm_file", type=str_or_none, default=None)
    group.add_argument("--lm_weight", type=float, default=0.0)
    group.add_argument("--ilm_weight", type=float, default=0.0)
    return parser


def main(cmd=None):
    print(" ".join(sys.argv), file=sys.stderr)
    args = vars(get_parser().parse_args(cmd))
    args.pop("config", None)
    logging.basicConfig(
        level=args.pop("log_level"), format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
    )
    inference(**args)


if __name__ == "__main__":
    main()
