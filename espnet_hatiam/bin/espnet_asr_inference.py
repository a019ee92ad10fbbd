#!/usr/bin/env python3
"""Decode an ESPnet ASR model (e.g. hybrid CTC/attention from ``espnet2.bin.asr_train``) with
ESPnet's own ``Speech2Text`` and write the layout of ``hat_asr_inference``.

    python -m espnet_hatiam.bin.espnet_asr_inference --asr_train_config C --asr_model_file M \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound --output_dir D \\
        [--config conf/decode_espnet_ctc_att.yaml] [--beam_size 4] [--ctc_weight 0.3]

writes ``D/1best_recog/{text,token,token_int,score}`` (ESPnet's DatadirWriter),
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
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

SEARCH = "espnet_ctc_att"
UNMEASURED = ("joint_evaluations", "label_projections")


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


def check_inputs(asr_train_config, asr_model_file, data_path_and_name_and_type, key_file, batch_size):
    """Raise ValueError/FileNotFoundError (one line for the CLI) for unusable arguments."""
    if batch_size != 1:
        raise ValueError(f"--batch_size {batch_size}: ESPnet's Speech2Text decodes one utterance at a time (use 1)")
    for option, path in (("--asr_train_config", asr_train_config), ("--asr_model_file", asr_model_file)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{option}: no such file '{path}'")
    if key_file is not None and not Path(key_file).is_file():
        raise FileNotFoundError(f"--key_file: no such file '{key_file}'")
    for path, _, _ in data_path_and_name_and_type:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--data_path_and_name_and_type: no such file '{path}'")


def inference(
    output_dir: str,
    asr_train_config: str,
    asr_model_file: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    key_file: Optional[str],
    batch_size: int,
    num_threads: int,
    device: str = "cpu",
    fs: int = 16000,
    **speech2text_kwargs,
):
    """Decode a data set through ESPnet's streaming iterator and write hat_asr_inference's layout."""
    check_inputs(asr_train_config, asr_model_file, data_path_and_name_and_type, key_file, batch_size)
    from espnet.nets.pytorch_backend.transformer.subsampling import TooShortUttError
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.fileio.datadir_writer import DatadirWriter
    from espnet2.tasks.asr import ASRTask

    torch.set_num_threads(num_threads)
    speech2text = Speech2Text(asr_train_config, asr_model_file, device=device, **speech2text_kwargs)
    loader = ASRTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype=speech2text.dtype,
        batch_size=1,
        key_file=key_file,
        num_workers=1,
        preprocess_fn=ASRTask.build_preprocess_fn(speech2text.asr_train_args, False),
        collate_fn=ASRTask.build_collate_fn(speech2text.asr_train_args, False),
        allow_variable_data_keys=False,
        inference=True,
    )
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    totals: Dict[str, float] = {"utterances": 0, "audio_seconds": 0.0}
    with DatadirWriter(output) as writer, open(output / "utt_stats.jsonl", "w") as utt_stats:
        for keys, batch in loader:
            key = keys[0]
            speech = batch["speech"][0, : int(batch["speech_lengths"][0])]
            try:
                results, stats = decode_one(speech2text, speech)
            except TooShortUttError as error:  # as ESPnet's asr_inference: an empty hypothesis
                logging.warning(f"utterance {key}: {error}")
                results, stats = [], {"frames": 0, "frames_kept": 0, **{name: 0 for name in UNMEASURED}}
            if not results:
                ibest = writer["1best_recog"]
                for name in ("text", "token", "token_int"):
                    ibest[name][key] = ""
                ibest["score"][key] = "0.0"
            for n, (text, tokens, token_ids, hyp) in enumerate(results, 1):
                ibest = writer[f"{n}best_recog"]
                ibest["text"][key] = text if text is not None else "".join(tokens)
                ibest["token"][key] = " ".join(tokens)
                ibest["token_int"][key] = " ".join(map(str, token_ids))
                ibest["score"][key] = str(float(hyp.score))
            utt_stats.write(json.dumps({"utt": key, **{k: v for k, v in stats.items() if "seconds" not in k}}) + "\n")
            for name, value in stats.items():
                totals[name] = totals.get(name, 0) + value
            totals["utterances"] += 1
            totals["audio_seconds"] += speech.numel() / fs
            logging.info(f"decoded {totals['utterances']} utterances")
    for name in ("encoder_seconds", "search_seconds", "frames", "frames_kept") + UNMEASURED:
        totals.setdefault(name, 0)
    stats = {
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in totals.items()},
        "search": SEARCH,
        "beam_size": speech2text_kwargs.get("beam_size"),
        "ctc_weight": speech2text_kwargs.get("ctc_weight"),
        "lm_weight": speech2text_kwargs.get("lm_weight"),
        "penalty": speech2text_kwargs.get("penalty"),
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
    parser.add_argument("--batch_size", type=int, default=1, help="only 1 (ESPnet's Speech2Text)")
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fs", type=int, default=16000, help="sampling rate of the input, for audio_seconds")
    group = parser.add_argument_group("ESPnet joint CTC/attention beam search (Speech2Text)")
    group.add_argument("--beam_size", type=int, default=4)
    group.add_argument("--ctc_weight", type=float, default=0.3)
    group.add_argument("--lm_weight", type=float, default=0.0)
    group.add_argument("--penalty", type=float, default=0.0)
    group.add_argument("--nbest", type=int, default=1)
    group.add_argument("--maxlenratio", type=float, default=0.0)
    group.add_argument("--minlenratio", type=float, default=0.0)
    group.add_argument("--token_type", type=str_or_none, default=None)
    group.add_argument("--bpemodel", type=str_or_none, default=None)
    group.add_argument("--lm_train_config", type=str_or_none, default=None)
    group.add_argument("--lm_file", type=str_or_none, default=None)
    return parser


def main(cmd=None):
    print(" ".join(sys.argv), file=sys.stderr)
    parser = get_parser()
    args = vars(parser.parse_args(cmd))
    args.pop("config", None)
    logging.basicConfig(
        level=args.pop("log_level"), format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"
    )
    try:
        check_inputs(*(args[k] for k in ("asr_train_config", "asr_model_file", "data_path_and_name_and_type",
                                          "key_file", "batch_size")))
    except (OSError, ValueError) as error:
        sys.exit(f"{parser.prog}: {error}")
    inference(**args)


if __name__ == "__main__":
    main()
