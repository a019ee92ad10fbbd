"""Every decoding option in one place: :class:`SearchConfig`, validated once, with named errors.

The fields are the decode yaml keys (``conf/decode_*.yaml``), the options of the inference
CLI (``--beam_size`` ...) and the keywords of ``HATSpeech2Text``.
"""

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Dict

import torch

from espnet_hatiam.errors import InputError

SEARCH_TYPES = ("greedy", "beam", "espnet")
ESPNET_SEARCH_TYPES = ("default", "alsd", "tsd", "nsc", "maes")
ROW_PLANS = ("auto", "select", "mask", "compiled")


@dataclass(frozen=True)
class SearchConfig:
    """How to search a HAT/RNN-T model's encoder output (docs/METHOD.md, sections 4-5)."""

    search_type: str = field(default="beam", metadata={
        "help": "greedy (batched), beam (batched modified beam search) or espnet (ESPnet's "
                "BeamSearchTransducer on the same model)"})
    beam_size: int = field(default=4, metadata={"help": "hypotheses kept per utterance (beam and espnet)"})
    nbest: int = field(default=1, metadata={"help": "hypotheses returned per utterance (<= beam_size)"})
    iam_blank_threshold: float = field(default=1.0, metadata={
        "help": "theta_IAM in [0, 1]: frames whose IAM P(blank) >= it are skipped; 1 disables it"})
    hat_blank_threshold: float = field(default=1.0, metadata={
        "help": "theta_HAT in [0, 1]: no label projection where HAT P(blank) >= it; 1 disables it"})
    max_sym_per_frame: int = field(default=4, metadata={
        "help": "labels a hypothesis may emit on one frame (greedy and beam); 4 was chosen on an4 "
                "train_dev over 7 models (egs/an4/asr1/README.md): beam 4's WER fell from 1 to 4, "
                "at 4 at or below ESPnet's best search type on every model"})
    expansion_beam: float = field(default=4.0, metadata={
        "help": "beam search: a hypothesis that emitted on a frame is expanded again on it only while its "
                "score is within this many nats of its utterance's best (inf: up to max_sym_per_frame labels); "
                "4 was chosen on an4 train_dev (bench/README.md): the WER of inf, 1.27x less search time "
                "(2 gave the same WER and 1.36x, 1 lost 0.34 points)"})
    espnet_search_type: str = field(default="default", metadata={
        "help": f"ESPnet's algorithm with search_type espnet: {', '.join(ESPNET_SEARCH_TYPES)}"})
    row_plan: str = field(default="auto", metadata={
        "help": "how the frame loop picks its rows: select (reads small host values to skip work: rounds with "
                "no hypothesis on the frame, prediction-network steps of the rows that did not emit, blank-certain "
                "runs), mask (every row every round under masks, no host synchronisation: CUDA graphs), "
                "compiled (select's beam search, and greedy as its beam of 1, as one compiled loop per stream, on the "
                "CPU, for an LSTM prediction network, a tanh joint and no LM), auto (compiled where it runs, else mask "
                "on CUDA, "
                "select elsewhere); all return the same hypotheses (compiled: up to float rounding)"})
    lm_weight: float = field(default=0.0, metadata={"help": "external LM weight (shallow fusion, beam only)"})
    ilm_weight: float = field(default=0.0, metadata={"help": "internal LM weight subtracted with the LM"})

    def __post_init__(self):
        def refuse(name: str, rule: str):
            raise InputError(f"search option '{name}' must be {rule}, got {getattr(self, name)!r}")

        for f in fields(self):  # the type of each default: what a yaml file or the command line may get wrong
            value, kind = getattr(self, f.name), type(f.default)
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
                refuse(f.name, {int: "an integer", float: "a number", str: "a string"}[kind])
        if self.search_type not in SEARCH_TYPES:
            refuse("search_type", "one of " + ", ".join(SEARCH_TYPES))
        if self.row_plan not in ROW_PLANS:
            refuse("row_plan", "one of " + ", ".join(ROW_PLANS))
        if self.espnet_search_type not in ESPNET_SEARCH_TYPES:
            refuse("espnet_search_type", "one of " + ", ".join(ESPNET_SEARCH_TYPES))
        for name in ("beam_size", "nbest", "max_sym_per_frame"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                refuse(name, "an integer >= 1")
        if self.nbest > self.beam_size or (self.search_type == "greedy" and self.nbest != 1):
            refuse("nbest", "<= beam_size (and 1 for greedy search)")
        if not self.expansion_beam > 0:
            refuse("expansion_beam", "> 0 (inf expands every emitting hypothesis)")
        for name in ("iam_blank_threshold", "hat_blank_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                refuse(name, "in [0, 1] (1 disables the stage)")
        if self.search_type == "espnet" and self.hat_blank_threshold < 1.0:
            refuse("hat_blank_threshold", "1 with search_type espnet (ESPnet's search has no HAT-blank stage)")
        for name in ("lm_weight", "ilm_weight"):
            if getattr(self, name) and self.search_type != "beam":
                refuse(name, "0 unless search_type is beam (LM fusion is in the batched beam search)")
        if self.row_plan == "compiled" and (self.search_type == "espnet" or self.lm_weight):
            refuse("row_plan", "auto, select or mask with search_type espnet or an LM (lm_weight): compiled is the "
                               "greedy and beam searches' without LM fusion")

    def for_joint(self, joint) -> "SearchConfig":
        """This config, refused (``InputError``) where the joint cannot do what it asks."""
        if self.hat_blank_threshold < 1.0 and not joint.is_factorized:
            raise InputError(f"search option 'hat_blank_threshold'={self.hat_blank_threshold} needs the HAT joint "
                             "(joint_type: hat); the RNN-T joint has no separate blank output")
        return self

    def masks_rows(self, device: torch.device) -> bool:
        """True for the masked row plan (``row_plan`` mask, or auto on CUDA)."""
        return self.row_plan == "mask" or (self.row_plan == "auto" and torch.device(device).type == "cuda")

    def compiles(self, joint, decoder: torch.nn.Module, device: torch.device, fused: bool) -> bool:
        """True for the compiled row plan: ``row_plan`` compiled (``InputError`` where the model, device or LM
        fusion rules it out), or auto for a greedy or beam search it can run."""
        if self.row_plan not in ("compiled", "auto") or self.search_type == "espnet":
            return False
        lacking = _compiled_plan_lacks(joint, decoder, device, fused)
        if lacking and self.row_plan == "compiled":
            raise InputError(f"search option 'row_plan'=compiled needs {lacking}; use auto, select or mask")
        return not lacking

    @classmethod
    def from_options(cls, **options: Any) -> "SearchConfig":
        """Like the constructor, but an unknown option is an ``InputError`` that names it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown search option '{unknown[0]}' (known: {', '.join(sorted(known))})")
        return cls(**options)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--name`` option per field, with the field's type, default and help."""
        group = parser.add_argument_group("search (SearchConfig)")
        for f in fields(cls):
            default = f.default if f.default is not MISSING else None
            group.add_argument(f"--{f.name}", type=type(default), default=default, help=f.metadata["help"])

    @classmethod
    def pop_from(cls, args: Dict[str, Any]) -> "SearchConfig":
        """Remove the search options from a parsed-argument dict and build the config."""
        return cls(**{f.name: args.pop(f.name) for f in fields(cls)})

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _compiled_plan_lacks(joint, decoder: torch.nn.Module, device: torch.device, fused: bool) -> str:
    """What the compiled row plan needs and this search lacks ('' if nothing)."""
    if torch.device(device).type != "cpu":
        return f"the CPU (the search runs on {device})"
    if fused:
        return "no LM fusion (lm_weight 0)"
    if getattr(decoder, "dtype", None) != "lstm" or decoder.training:
        return "an LSTM prediction network in eval mode"
    if getattr(joint, "activation", None) not in (torch.tanh, torch.nn.functional.tanh):
        return "a tanh joint (joint_activation_type: tanh)"
    if joint.output_layer()[0].dtype != torch.float32:
        return "float32 weights"
    return ""
