#!/usr/bin/env python3
"""Decode an ESPnet ASR model (e.g. hybrid CTC/attention from ``espnet2.bin.asr_train``) with
ESPnet's own ``Speech2Text`` and write the layout of ``hat_asr_inference``.

    python -m espnet_hatiam.bin.espnet_asr_inference --asr_train_config C --asr_model_file M \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound --output_dir D \\
        [--config conf/decode_espnet_ctc_att.yaml] [--beam_size 4] [--ctc_weight 0.3]

writes ``D/1best_recog/{text,token,token_int,score}`` (ESPnet's layout),
``D/utt_stats.jsonl`` and ``D/decode_stats.json``, so the recipe scores and tabulates it
like the HAT/IAM decodings.

Timing: each utterance goes through ``Speech2Text`` in its two steps, ``asr_model.encode``
(``encoder_seconds``) and ESPnet's beam search on that encoder output
(``Speech2Text._decode_single_sample``, ``search_seconds``), which is exactly what
``Speech2Text.__call__`` does for a plain ASR model. ``frames`` and ``frames_kept`` are the
encoder output frames (this model skips none); ``joint_evaluations`` and
``label_projections`` are transducer counters with no meaning here and are written as 0
(``score.py`` then reports the label-projection ratio as "-").
"""

import argparse
import logging
import time
from typing import Any, Dict, List, Tuple

import torch

from espnet_hatiam.data import decode_dir
from espnet_hatiam.data.checks import check_finite, loading_model
from espnet_hatiam.errors import InputError, one_line_errors

SEARCH = "espnet_ctc_att"
UNMEASURED = ("joint_evaluations", "label_projections")
# Speech2Text's search options: this CLI's default (ESPnet's recipe setting, not Speech2Text's) and
# whether decode_stats.json records it.
SEARCH_OPTIONS = {
    "beam_size": (4, True),
    "ctc_weight": (0.3, True),
    "lm_weight": (0.0, True),
    "penalty": (0.0, True),
    "nbest": (1, False),
    "maxlenratio": (0.0, False),
    "minlenratio": (0.0, False),
}


def decode_one(speech2text, speech: torch.Tensor) -> Tuple[List[Tuple[Any, ...]], Dict[str, float]]:
    """N-best ``(text, tokens, token_ids, hyp)`` of one waveform ``(L,)`` and its counters/timings.

    Mirrors ``Speech2Text.__call__`` for a plain ASR model, timing the encoder and the search apart.
    """
    from espnet2.torch_utils.device_funcs import to_device

    speech = speech.unsqueeze(0).to(getattr(torch, speech2text.dtype))
    lengths = speech.new_full([1], dtype=torch.long, fill_value=speech.size(1))
    batch = to_device({"speech": speech, "speech_lengths": lengths}, device=speech2text.device)
    with torch.no_grad():
        start = time.perf_counter()
        enc, enc_lens = speech2text.asr_model.encode(**batch)
        if isinstance(enc, tuple):  # (output, intermediate CTC outputs) of interctc encoders
            enc = enc[0]
        encoded = time.perf_counter()
        results = speech2text._decode_single_sample(enc[0])
        searched = time.perf_counter()
    frames = int(enc_lens[0])
    stats = {
        "frames": frames,
        "frames_kept": frames,
        **{name: 0 for name in UNMEASURED},
        "encoder_seconds": encoded - start,
        "search_seconds": searched - encoded,
    }
    return results, stats


def check_inputs(job: decode_dir.DecodeJob) -> None:
    """Raise InputError (one line for the CLI) for unusable arguments."""
    if job.batch_size != 1:
        raise InputError(f"--batch_size {job.batch_size}: ESPnet's Speech2Text decodes one utterance at a time (use 1)")
    job.check_inputs()


def inference(job: decode_dir.DecodeJob, device: str = "cpu", **speech2text_kwargs):
    """Decode a data set through ESPnet's streaming iterator and write hat_asr_inference's layout."""
    check_inputs(job)
    from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
    from espnet2.bin.asr_inference import Speech2Text

    torch.set_num_threads(job.num_threads)
    with loading_model(job.asr_train_config, job.asr_model_file):
        speech2text = Speech2Text(job.asr_train_config, job.asr_model_file, device=device, **speech2text_kwargs)
    fs = job.sampling_rate()
    settings = {"search": SEARCH, **{name: speech2text_kwargs.get(name)
                                     for name, (_, reported) in SEARCH_OPTIONS.items() if reported}}
    with job.writer(settings) as writer:
        for keys, batch in job.batches(speech2text.dtype, speech2text.asr_train_args):
            key = keys[0]
            check_finite(keys, batch["speech"], batch["speech_lengths"])
            speech = batch["speech"][0, : int(batch["speech_lengths"][0])]
            try:
                results, stats = decode_one(speech2text, speech)
            except TooShortUttError as error:  # as ESPnet's asr_inference: an empty hypothesis
                logging.warning(f"utterance {key}: {error}")
                results, stats = [], {"frames": 0, "frames_kept": 0, **{name: 0 for name in UNMEASURED}}
            writer.write(key, results, {k: v for k, v in stats.items() if "seconds" not in k})
            writer.add({**stats, "audio_seconds": speech.numel() / fs}, 1)


def get_parser() -> argparse.ArgumentParser:
    parser = decode_dir.get_parser(__doc__, batch_size_help="only 1 (ESPnet's Speech2Text)",
                                   lm_group_title="external LM (weight: --lm_weight)")
    group = parser.add_argument_group("ESPnet joint CTC/attention beam search (Speech2Text)")
    for name, (default, _) in SEARCH_OPTIONS.items():
        group.add_argument(f"--{name}", type=type(default), default=default)
    return parser


def main(cmd=None):
    parser = get_parser()
    job, args = decode_dir.parse_args(parser, cmd, check_inputs)
    with one_line_errors(parser.prog):
        inference(job, **args)


if __name__ == "__main__":
    main()
