"""The experiment layout, the one reader of its names: experiment dirs and their decoding dirs.

    <root>/asr_<system>_<bpeN|char>_seed<N>/        an experiment (exp/) or its committed record (results/)
        decode_<mode>_<model>/<set>/score.json      a scored decoding (mode: the decode config's name
                                                    without ``decode_``; model: the checkpoint, e.g. valid.wer.ave)

Both ``exp/`` (as hat_asr.sh writes it) and ``results/`` (the records of :mod:`.records`) have it.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

EXP_NAME = re.compile(r"asr_(?P<system>.+?)_(?P<tag>bpe\d+|char)_seed(?P<seed>\d+)")
DECODE_NAME = re.compile(r"decode_(?P<mode>.+)_(?P<model>[^_]+)")  # checkpoint tags have no "_"
SWEEP = re.compile(r"(?P<family>.+)_(?P<theta>\d+(?:\.\d+)?)")  # a mode of a threshold sweep, e.g. dual_0.95


@dataclass(frozen=True)
class DecodeDir:
    """One scored decoding ``<exp>/decode_<mode>_<model>/<set>``."""

    mode: str
    model: str
    set: str
    path: Path

    def score(self) -> dict:
        return json.loads((self.path / "score.json").read_text())


def parse_exp(exp: Path) -> Optional[tuple]:
    """``(system, tag, seed)`` of an experiment dir's name, None for a dir of another name."""
    match = EXP_NAME.fullmatch(exp.name)
    return None if match is None else (match["system"], match["tag"], int(match["seed"]))


def decode_dirs(exp: Path, model: Optional[str] = None, dset: Optional[str] = None) -> List[DecodeDir]:
    """The scored decodings of ``exp`` (those with ``score.json``), by name; only ``model``/``dset`` if given."""
    found = []
    for path in sorted(exp.glob("decode_*/*/score.json")):
        match = DECODE_NAME.fullmatch(path.parent.parent.name)
        if match is None or (model and match["model"] != model) or (dset and path.parent.name != dset):
            continue
        found.append(DecodeDir(match["mode"], match["model"], path.parent.name, path.parent))
    return found
