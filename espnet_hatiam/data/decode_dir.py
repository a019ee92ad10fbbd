"""A decoding dir, as both inference CLIs (``hat_asr_inference``, ``espnet_asr_inference``) write it:

    <dir>/1best_recog/{text,token,token_int,score}   ESPnet's layout (2best_recog/... for n-best; kaldi.write_table)
    <dir>/utt_stats.jsonl                           per-utterance counters, one JSON object a line
    <dir>/decode_stats.json                         totals (STATS, MEASURED_STATS) and the decoding settings

with what the two CLIs share to get there: their common options, the :class:`DecodeJob` they
describe (its inputs checked with one-line errors, ESPnet's streaming iterator over its data),
the :class:`DecodeDirWriter`; and the split of a data set into parallel jobs
(``<dir>/logdir/keys.N.scp``) and the merge of their outputs (``<dir>/logdir/output.N``).
"""

import argparse
import contextlib
import json
import logging
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from espnet_hatiam.data.checks import check_audio_table, model_sampling_rate
from espnet_hatiam.errors import InputError, one_line_errors
from espnet_hatiam.data.kaldi import read_table, write_table

STATS = (
    "utterances", "audio_seconds", "encoder_seconds", "search_seconds",
    "frames", "frames_kept", "joint_evaluations", "label_projections",
)
"""The totals of ``decode_stats.json``: sums over utterances, and over jobs in :func:`merge_jobs`."""

MEASURED_STATS = ("blank_agreement",)
"""Totals only some decodings measure (``SearchCounters.blank_agreement``: greedy search with
both thresholds off): in ``utt_stats.jsonl`` and ``decode_stats.json`` only where measured,
and merged only when every job measured them."""

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def get_parser(description: str, batch_size_help: str, lm_group_title: str) -> argparse.ArgumentParser:
    """ESPnet's config-file parser with the options both inference CLIs take.

    Input and output: ``--output_dir --asr_train_config --asr_model_file
    --data_path_and_name_and_type --key_file --batch_size --num_threads --device
    --log_level`` (and ``--config``, a yaml of any of them); the tokenizer ``--token_type
    --bpemodel``; the external LM ``--lm_train_config --lm_file``. Each CLI adds its search options.
    """
    from espnet2.utils import config_argparse
    from espnet2.utils.types import str2triple_str, str_or_none

    parser = config_argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO", choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--asr_train_config", required=True)
    parser.add_argument("--asr_model_file", required=True)
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    parser.add_argument("--key_file", type=str_or_none, default=None)
    parser.add_argument("--batch_size", type=int, default=1, help=batch_size_help)
    parser.add_argument("--num_threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    group = parser.add_argument_group("tokenizer (default: the training config's)")
    group.add_argument("--token_type", type=str_or_none, default=None)
    group.add_argument("--bpemodel", type=str_or_none, default=None)
    group = parser.add_argument_group(lm_group_title)
    group.add_argument("--lm_train_config", type=str_or_none, default=None)
    group.add_argument("--lm_file", type=str_or_none, default=None)
    return parser


@dataclass(frozen=True)
class DecodeJob:
    """One decoding job: the trained model, the data set (all of it or the utterances of a key
    file), how many at a time, and the dir it writes. The options of that name of both CLIs."""

    output_dir: str
    asr_train_config: str
    asr_model_file: str
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]]
    key_file: Optional[str] = None
    batch_size: int = 1
    num_threads: int = 1

    @classmethod
    def pop_from(cls, args: Dict[str, Any]) -> "DecodeJob":
        """Remove the job's options from a parsed-argument dict and build the job."""
        return cls(**{f.name: args.pop(f.name) for f in fields(cls)})

    def check_inputs(self) -> None:
        """Raise InputError naming the option, file or utterance of an unusable input.

        The model files must exist; every utterance to decode (all of a ``sound`` table, or
        those of the key file) must be in it and be a readable, non-empty, mono file at the
        model's sampling rate (:func:`check_audio_table`).
        """
        for option, path in (("--asr_train_config", self.asr_train_config),
                             ("--asr_model_file", self.asr_model_file), ("--key_file", self.key_file)):
            if path is not None and not Path(path).is_file():
                raise InputError(f"{option}: no such file '{path}'")
        for path, _, _ in self.data_path_and_name_and_type:
            if not Path(path).is_file():
                raise InputError(f"--data_path_and_name_and_type: no such file '{path}'")
        keys = None if self.key_file is None else list(read_table(Path(self.key_file)))
        for path, _, file_type in self.data_path_and_name_and_type:
            if file_type == "sound":
                check_audio_table(Path(path), self.sampling_rate(), keys)

    def sampling_rate(self) -> int:
        """The model's sampling rate (its training config's frontend)."""
        import yaml

        with open(self.asr_train_config, encoding="utf-8") as f:
            return model_sampling_rate(yaml.safe_load(f))

    def batches(self, dtype: str = "float32", train_args: Optional[argparse.Namespace] = None):
        """ESPnet's ``ASRTask`` streaming iterator of ``(keys, batch)``, in the order of the key file.

        With ``train_args`` the training config's preprocessing and collation (as ESPnet's
        ``asr_inference``), else none and a plain padding collation.
        """
        from espnet2.tasks.asr import ASRTask

        return ASRTask.build_streaming_iterator(
            self.data_path_and_name_and_type,
            dtype=dtype,
            batch_size=self.batch_size,
            key_file=self.key_file,
            num_workers=1,
            preprocess_fn=None if train_args is None else ASRTask.build_preprocess_fn(train_args, False),
            collate_fn=ASRTask.build_collate_fn(train_args or argparse.Namespace(), False),
            allow_variable_data_keys=False,
            inference=True,
        )

    def writer(self, settings: Mapping[str, Any]) -> "DecodeDirWriter":
        """The writer of ``output_dir``; ``decode_stats.json`` records ``settings``, batch size and threads."""
        return DecodeDirWriter(self.output_dir, {**settings, "batch_size": self.batch_size,
                                                 "num_threads": self.num_threads})


def parse_args(
    parser: argparse.ArgumentParser,
    cmd: Optional[Sequence[str]] = None,
    check: Callable[[DecodeJob], None] = DecodeJob.check_inputs,
) -> Tuple[DecodeJob, Dict[str, Any]]:
    """Echo the command line to stderr (ESPnet's convention), parse, set up logging, ``check`` the job.

    Returns the job and the other options (without ``config`` and ``log_level``). An
    :class:`InputError` of ``check`` exits with one line naming the CLI.
    """
    print(" ".join(sys.argv), file=sys.stderr)
    args = vars(parser.parse_args(cmd))
    args.pop("config", None)
    logging.basicConfig(level=args.pop("log_level"), format=LOG_FORMAT)
    job = DecodeJob.pop_from(args)
    with one_line_errors(parser.prog):
        check(job)
    return job, args


class DecodeDirWriter:
    """Writes one decoding dir; ``decode_stats.json`` only when the ``with`` block ends without an error.

    Args:
        output_dir: the dir (created).
        settings: what ``decode_stats.json`` records after the totals (search options, batch size, ...).
    """

    def __init__(self, output_dir: str, settings: Mapping[str, Any]):
        self.output = Path(output_dir)
        self.settings = dict(settings)
        self.totals: Dict[str, float] = {name: 0 for name in STATS}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "DecodeDirWriter":
        self.output.mkdir(parents=True, exist_ok=True)
        self._recog: Dict[str, List[Tuple[str, str]]] = {}  # "<n>best_recog/<table>" -> rows, in decoding order
        self._utt_stats = self._stack.enter_context(open(self.output / "utt_stats.jsonl", "w"))
        return self

    def write(self, key: str, nbest: Sequence[Tuple[Optional[str], Sequence[str], Sequence[int], Any]],
              counters: Mapping[str, int]) -> None:
        """One utterance: its n-best ``(text, tokens, token_ids, hyp)`` and its ``utt_stats.jsonl`` line.

        A ``text`` of None is the tokens joined; an empty n-best list writes an empty 1-best
        with score 0.0 (as ESPnet's ``asr_inference`` for a too short utterance).
        """
        rows = [
            (text if text is not None else "".join(tokens), " ".join(tokens), " ".join(map(str, token_ids)),
             str(float(hyp.score)))
            for text, tokens, token_ids, hyp in nbest
        ]
        for n, row in enumerate(rows or [("", "", "", "0.0")], 1):
            for name, value in zip(("text", "token", "token_int", "score"), row):
                self._recog.setdefault(f"{n}best_recog/{name}", []).append((key, value))
        self._utt_stats.write(json.dumps({"utt": key, **counters}) + "\n")

    def add(self, totals: Mapping[str, float], utterances: int) -> None:
        """Add to the totals (counters and ``*_seconds``) of ``utterances`` decoded utterances."""
        for name, value in totals.items():
            self.totals[name] = self.totals.get(name, 0) + value
        self.totals["utterances"] += utterances
        logging.info(f"decoded {self.totals['utterances']} utterances")

    def __exit__(self, exc_type, exc, traceback) -> None:
        self._stack.close()
        for table, rows in self._recog.items():  # what was decoded, also after an error (as ESPnet's writer)
            (self.output / table).parent.mkdir(exist_ok=True)
            write_table(self.output / table, rows)
        if exc_type is None:
            rounded = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.totals.items()}
            (self.output / "decode_stats.json").write_text(json.dumps({**rounded, **self.settings}, indent=2) + "\n")


def split_keys(scp: Path, outputs: Sequence[Path]) -> None:
    """Split the table ``scp`` into contiguous parts, one per decoding job (like ESPnet's split_scp.pl).

    Raises ValueError when there are fewer utterances than jobs.
    """
    rows = list(read_table(scp).items())
    if len(rows) < len(outputs):
        raise ValueError(f"{scp}: {len(rows)} utterances cannot fill {len(outputs)} jobs; use fewer jobs")
    size, extra = divmod(len(rows), len(outputs))
    start = 0
    for n, path in enumerate(outputs):
        end = start + size + (n < extra)
        write_table(path, rows[start:end])
        start = end


def merge_jobs(directory: Path, nj: int) -> None:
    """Merge ``directory/logdir/output.{1..nj}`` into ``directory``.

    Concatenates ``*best_recog/*`` and ``utt_stats.jsonl`` in job order and adds up the
    :data:`STATS` of ``decode_stats.json`` (times are summed over jobs: compute seconds, as in
    RTF), and the :data:`MEASURED_STATS` that every job has (one that some lack is dropped);
    its settings are job 1's, plus ``jobs``. Raises FileNotFoundError naming a job that
    did not finish.
    """
    parts = [directory / "logdir" / f"output.{n}" for n in range(1, nj + 1)]
    for part in parts:
        if not (part / "decode_stats.json").exists():
            raise FileNotFoundError(f"{part}: job did not finish (no decode_stats.json); see its decode log")
    for recog in sorted({p.relative_to(parts[0]) for p in parts[0].glob("*best_recog/*")}):
        (directory / recog.parent).mkdir(parents=True, exist_ok=True)
        write_table(directory / recog, [row for part in parts if (part / recog).exists()
                                        for row in read_table(part / recog).items()])
    with open(directory / "utt_stats.jsonl", "w", encoding="utf-8") as out:
        for part in parts:
            out.write((part / "utt_stats.jsonl").read_text(encoding="utf-8"))
    stats = [json.loads((p / "decode_stats.json").read_text()) for p in parts]
    merged = dict(stats[0])
    measured = tuple(k for k in MEASURED_STATS if all(k in s for s in stats))
    for key in set(MEASURED_STATS) - set(measured):
        merged.pop(key, None)
    for key in STATS + measured:
        merged[key] = round(sum(s[key] for s in stats), 4)
    merged["jobs"] = nj
    (directory / "decode_stats.json").write_text(json.dumps(merged, indent=2) + "\n")
