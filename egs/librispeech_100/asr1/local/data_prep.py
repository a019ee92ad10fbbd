#!/usr/bin/env python3
"""LibriSpeech (train-clean-100 and the four evaluation sets) -> Kaldi data dirs, as ESPnet's
egs2/librispeech_100/asr1 names them:

    train-clean-100 -> data/train_clean_100     dev-clean  -> data/dev_clean
    test-clean      -> data/test_clean          dev-other  -> data/dev_other
    test-other      -> data/test_other          dev-clean + dev-other -> data/dev (the valid set)

The corpus folder holds the sets (or ``LibriSpeech/`` with them, as the OpenSLR 12 archives
extract) in LibriSpeech's layout, FLAC or Opus; the reader is the one of
egs/mini_librispeech, ``espnet_hatiam.data.librispeech``. Utterance ids are LibriSpeech's
(``<spk>-<chapter>-<nnnn>``), texts its upper-case words, the speaker the reader. A set
that has all its speakers of the release but not all its utterances is refused.

    local/data_prep.py --corpus_root /path/to/LibriSpeech --out data
"""

from pathlib import Path
from typing import Dict, List

from espnet_hatiam.data.librispeech import CorpusError, Utterance, data_prep_main, find_set, read_set

SETS = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")
VALID = ("dev-clean", "dev-other")  # combined into data/dev, as ESPnet's recipe does


def make_split(root: Path) -> Dict[str, List[Utterance]]:
    parts = {name: read_set(find_set(root, name)) for name in SETS}
    ids = [row.utt for name in VALID for row in parts[name]]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"{' and '.join(VALID)} share utterance ids")
    split = {name.replace("-", "_"): rows for name, rows in parts.items()}
    split["dev"] = sorted((row for name in VALID for row in parts[name]), key=lambda r: r.utt)
    return split


def main(cmd=None):
    data_prep_main("librispeech_100", __doc__, "train-clean-100/, dev-clean/, ...", make_split, cmd)


if __name__ == "__main__":
    main()
