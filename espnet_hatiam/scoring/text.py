"""Reference and hypothesis transcripts of one test set, paired by utterance id (Kaldi ``text`` tables,
read by :func:`espnet_hatiam.data.kaldi.read_table`)."""

from pathlib import Path
from typing import List, Tuple

from espnet_hatiam.data.kaldi import read_table


def read_pairs(ref_path: Path, hyp_path: Path) -> Tuple[List[str], List[str], List[str]]:
    """``(utt ids, refs, hyps)`` of every reference utterance, sorted by id; hypotheses of other ids are ignored.

    Raises ValueError naming ``hyp_path`` and an utterance when a reference has no hypothesis.
    """
    refs, hyps = read_table(ref_path), read_table(hyp_path)
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(
            f"{hyp_path}: no hypothesis for {len(missing)} of the {len(refs)} utterances of {ref_path}, "
            f"e.g. '{missing[0]}'"
        )
    keys = sorted(refs)
    return keys, [refs[k] for k in keys], [hyps[k] for k in keys]
