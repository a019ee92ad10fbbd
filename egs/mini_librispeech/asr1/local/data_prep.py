#!/usr/bin/env python3
"""Mini LibriSpeech -> Kaldi data dirs data/{train,dev,test} (the split of ../shared/corpora/README.md).

- ``test``  = all of ``dev-clean-2`` (1,089 utterances, 26 speakers), as Kaldi reports it;
- ``dev``   = the ``train-clean-5`` speakers 1970 and 3242 (85 utterances), for model
  selection and threshold tuning;
- ``train`` = the other 26 ``train-clean-5`` speakers (1,434 utterances, 5.02 h).

The corpus folder holds ``train-clean-5/`` and ``dev-clean-2/`` (or ``LibriSpeech/`` with
them, as the archives extract) in LibriSpeech's layout, FLAC (the release) or Opus (the
copy in ../shared); ``espnet_hatiam.data.librispeech`` reads it. When the folder has
``splits/{train,dev}_speakers.txt`` (one speaker id a line, as the copy in ../shared does)
they are checked against the corpus and the rule above: together they must list every
``train-clean-5`` speaker once, and the dev list must be the rule's speakers. Without
``splits/`` (the release) the split is made from the rule. A complete copy (the release's
28 ``train-clean-5`` speakers) must also give the split's 1,434 / 85 utterances.
Utterance ids are LibriSpeech's (``<spk>-<chapter>-<nnnn>``), texts its upper-case words.

    local/data_prep.py --corpus_root /path/to/mini_librispeech --out data
"""

from pathlib import Path
from typing import Dict, List, Sequence

from espnet_hatiam.data.librispeech import (
    RELEASE,
    CorpusError,
    Utterance,
    data_prep_main,
    find_set,
    read_set,
    speakers,
)

TRAIN_SET, TEST_SET = "train-clean-5", "dev-clean-2"
DEV_SPEAKERS = ("1970", "3242")
SPLIT_OF_THE_RELEASE = {"train": (26, 1434), "dev": (2, 85)}  # (speakers, utterances)


def read_list(path: Path) -> List[str]:
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise CorpusError(f"{path}: speaker {repeated[0]} is listed twice")
    return ids


def dev_speakers_of(root: Path, corpus_speakers: Sequence[str]) -> List[str]:
    """The dev speakers: the rule's, checked against ``splits/`` when the corpus folder has it."""
    missing_rule = [s for s in DEV_SPEAKERS if s not in corpus_speakers]
    if missing_rule:
        raise CorpusError(
            f"{TRAIN_SET} has no speaker {missing_rule[0]}: the dev speakers are {' and '.join(DEV_SPEAKERS)}"
        )
    splits = root / "splits"
    if not splits.is_dir():
        return list(DEV_SPEAKERS)
    lists = {name: read_list(splits / f"{name}_speakers.txt") for name in ("train", "dev")}
    both = sorted(set(lists["train"]) & set(lists["dev"]))
    if both:
        raise CorpusError(f"{splits}: speaker {both[0]} is in both train_speakers.txt and dev_speakers.txt")
    listed = set(lists["train"]) | set(lists["dev"])
    unlisted = sorted(set(corpus_speakers) - listed, key=int)
    unknown = sorted(listed - set(corpus_speakers), key=int)
    if unlisted:
        raise CorpusError(f"{splits}: {TRAIN_SET} speaker {unlisted[0]} is in neither list ({len(unlisted)} such)")
    if unknown:
        raise CorpusError(f"{splits}: speaker {unknown[0]} is listed but not in {TRAIN_SET}")
    if sorted(lists["dev"]) != sorted(DEV_SPEAKERS):
        raise CorpusError(
            f"{splits}/dev_speakers.txt lists {' '.join(lists['dev'])}, not the recipe's dev speakers "
            f"{' '.join(DEV_SPEAKERS)} (results would not be on the same utterances)"
        )
    return lists["dev"]


def make_split(root: Path) -> Dict[str, List[Utterance]]:
    train_clean_5 = read_set(find_set(root, TRAIN_SET))
    test = read_set(find_set(root, TEST_SET))
    corpus_speakers = speakers(train_clean_5)
    shared = sorted(set(corpus_speakers) & set(speakers(test)), key=int)
    if shared:
        raise CorpusError(f"speaker {shared[0]} is in both {TRAIN_SET} and {TEST_SET}")
    dev = set(dev_speakers_of(root, corpus_speakers))
    parts = {
        "train": [row for row in train_clean_5 if row.speaker not in dev],
        "dev": [row for row in train_clean_5 if row.speaker in dev],
        "test": test,
    }
    if len(corpus_speakers) == RELEASE[TRAIN_SET][0]:  # a complete copy: the split's counts are known
        for name, (num_speakers, num_utterances) in SPLIT_OF_THE_RELEASE.items():
            got = (len(speakers(parts[name])), len(parts[name]))
            if got != (num_speakers, num_utterances):
                raise CorpusError(f"{name} has {got[1]} utterances of {got[0]} speakers, the release's split "
                                  f"{num_utterances} of {num_speakers}")
    return parts


def dev_speakers_note(root: Path, split: Dict[str, List[Utterance]]) -> str:
    source = "checked against splits/" if (root / "splits").is_dir() else "no splits/: from the rule"
    return f"dev speakers {' '.join(speakers(split['dev']))} ({source})"


def main(cmd=None):
    data_prep_main("mini_librispeech", __doc__, "train-clean-5/ and dev-clean-2/", make_split, cmd,
                   note=dev_speakers_note)


if __name__ == "__main__":
    main()
