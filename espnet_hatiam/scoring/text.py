"""Kaldi ``text`` files: one ``<utt id><space or tab><text>`` per line."""

from pathlib import Path
from typing import Dict, List, Tuple


def read_text(path: Path) -> Dict[str, str]:
    """``{utt id: text}``; a line with only an id maps to ``""``."""
    table = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split(maxsplit=1)
            if fields:
                table[fields[0]] = fields[1].strip() if len(fields) > 1 else ""
    return table


def read_pairs(ref_path: Path, hyp_path: Path) -> Tuple[List[str], List[str], List[str]]:
    """``(utt ids, refs, hyps)`` of every reference utterance, sorted by id; hypotheses of other ids are ignored.

    Raises ValueError naming ``hyp_path`` and an utterance when a reference has no hypothesis.
    """
    refs, hyps = read_text(ref_path), read_text(hyp_path)
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(
            f"{hyp_path}: no hypothesis for {len(missing)} of the {len(refs)} utterances of {ref_path}, "
            f"e.g. '{missing[0]}'"
        )
    keys = sorted(refs)
    return keys, [refs[k] for k in keys], [hyps[k] for k in keys]
