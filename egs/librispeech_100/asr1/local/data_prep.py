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

import argparse
import sys
from pathlib import Path

from espnet_hatiam.data.librispeech import CorpusError, find_set, read_set, write_dir

SETS = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")
VALID = ("dev-clean", "dev-other")  # combined into data/dev, as ESPnet's recipe does


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_root", type=Path, required=True,
                        help="folder with train-clean-100/, dev-clean/, ... (or LibriSpeech/ holding them)")
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(cmd)
    try:
        parts = {name: read_set(find_set(args.corpus_root, name)) for name in SETS}
        ids = [row.utt for name in VALID for row in parts[name]]
        if len(set(ids)) != len(ids):
            raise CorpusError(f"{' and '.join(VALID)} share utterance ids")
    except (OSError, CorpusError) as error:
        sys.exit(f"{parser.prog}: librispeech_100: {error}")
    for name in SETS:
        print(write_dir(args.out / name.replace("-", "_"), parts[name]))
    print(write_dir(args.out / "dev", sorted((row for name in VALID for row in parts[name]), key=lambda r: r.utt)))


if __name__ == "__main__":
    main()
