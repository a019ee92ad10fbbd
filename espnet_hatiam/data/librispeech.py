"""LibriSpeech-layout corpora (LibriSpeech, OpenSLR 12; Mini LibriSpeech, OpenSLR 31): the one reader.

Used by the data preparation of ``egs/mini_librispeech/asr1`` and ``egs/librispeech_100/asr1``,
whose ``local/data_prep.py`` each give :func:`data_prep_main` the split of their corpus.
A set is a folder ``<set>/<spk>/<chapter>/`` whose chapters hold ``<spk>-<chapter>.trans.txt``
(one ``<spk>-<chapter>-<nnnn> UPPER CASE WORDS`` line per utterance) and one recording per
line, ``<utt>.flac`` in the official release or ``<utt>.opus`` in the copy in ``../shared``
(soundfile reads both). The archives extract to ``LibriSpeech/<set>/``, so a set is looked
for as ``<root>/<set>`` and then as ``<root>/LibriSpeech/<set>``.

The data dirs keep LibriSpeech's utterance ids and words as they are; the speaker of an
utterance is its reader (``<spk>``), the unit of the corpora's speaker-disjoint sets.
Every id starts with ``<spk>-`` and ``-`` sorts before the digits, so the utterances sorted
by id are also grouped by sorted speaker, as Kaldi's data dirs require.
"""

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from espnet_hatiam.data.kaldi import write_data_dir

AUDIO_EXTENSIONS = (".flac", ".opus", ".wav")
UTTERANCE_ID = re.compile(r"^(?P<speaker>\d+)-(?P<chapter>\d+)-\d+$")
NUMERIC = re.compile(r"^\d+$")

# Speakers and utterances of each set of the releases: a set that has all its speakers but not
# all its utterances is an incomplete copy (an interrupted extraction, a partial sync).
RELEASE: Dict[str, Sequence[int]] = {
    "train-clean-5": (28, 1519),
    "dev-clean-2": (26, 1089),
    "train-clean-100": (251, 28539),
    "dev-clean": (40, 2703),
    "dev-other": (33, 2864),
    "test-clean": (40, 2620),
    "test-other": (33, 2939),
}


class CorpusError(ValueError):
    """The corpus on disk is not in the LibriSpeech layout, or is incomplete."""


@dataclass(frozen=True)
class Utterance:
    utt: str
    speaker: str
    chapter: str
    audio: Path  # absolute
    words: str


def find_set(root: Path, name: str) -> Path:
    """``<root>/<name>``, or ``<root>/LibriSpeech/<name>`` (an extracted archive); CorpusError if neither."""
    for candidate in (root / name, root / "LibriSpeech" / name):
        if candidate.is_dir():
            return candidate
    raise CorpusError(f"missing set '{name}': neither '{root / name}' nor '{root / 'LibriSpeech' / name}' is a folder")


def _subfolders(directory: Path, what: str) -> List[Path]:
    """The numeric folders of ``directory`` sorted (hidden entries and files are ignored)."""
    folders = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if not NUMERIC.match(entry.name):
            raise CorpusError(f"'{entry}' is not a {what} folder (LibriSpeech's are numbers)")
        folders.append(entry)
    return folders


def read_chapter(chapter_dir: Path, speaker: str) -> List[Utterance]:
    """The utterances of one ``<spk>/<chapter>`` folder, in transcript order."""
    chapter = chapter_dir.name
    transcript = chapter_dir / f"{speaker}-{chapter}.trans.txt"
    if not transcript.is_file():
        raise CorpusError(f"missing transcript '{transcript}'")
    audio = {p.stem: p for p in chapter_dir.iterdir() if p.suffix in AUDIO_EXTENSIONS and p.is_file()}
    rows: List[Utterance] = []
    seen = set()
    for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        utt, _, words = line.strip().partition(" ")
        words = " ".join(words.split())
        match = UTTERANCE_ID.match(utt)
        if not match or not words:
            raise CorpusError(f"{transcript}:{number}: expected '<spk>-<chapter>-<nnnn> WORDS', got '{line.strip()}'")
        if (match["speaker"], match["chapter"]) != (speaker, chapter):
            raise CorpusError(
                f"{transcript}:{number}: utterance '{utt}' is not of speaker {speaker}, chapter {chapter}"
            )
        if utt in seen:
            raise CorpusError(f"{transcript}:{number}: utterance '{utt}' repeats")
        seen.add(utt)
        if utt not in audio:
            raise CorpusError(f"no recording for '{utt}' in '{chapter_dir}' (looked for {', '.join(AUDIO_EXTENSIONS)})")
        rows.append(Utterance(utt, speaker, chapter, audio[utt].resolve(), words))
    orphans = sorted(set(audio) - seen)
    if orphans:
        raise CorpusError(f"'{audio[orphans[0]]}' has no line in '{transcript}' ({len(orphans)} such recordings)")
    return rows


def read_set(set_dir: Path) -> List[Utterance]:
    """Every utterance of a set folder, sorted by utterance id; CorpusError for what is not LibriSpeech's layout."""
    if not set_dir.is_dir():
        raise CorpusError(f"'{set_dir}' is not a folder")
    rows: List[Utterance] = []
    for speaker_dir in _subfolders(set_dir, "speaker"):
        for chapter_dir in _subfolders(speaker_dir, "chapter"):
            rows.extend(read_chapter(chapter_dir, speaker_dir.name))
    if not rows:
        raise CorpusError(f"'{set_dir}' holds no utterance (expected <spk>/<chapter>/<spk>-<chapter>.trans.txt)")
    rows.sort(key=lambda row: row.utt)
    check_release(set_dir.name, rows)
    return rows


def speakers(rows: Iterable[Utterance]) -> List[str]:
    return sorted({row.speaker for row in rows})


def check_release(name: str, rows: Sequence[Utterance]) -> None:
    """CorpusError when a set of the releases has all its speakers but not all its utterances."""
    if name not in RELEASE:
        return
    num_speakers, num_utterances = RELEASE[name]
    if len(speakers(rows)) == num_speakers and len(rows) != num_utterances:
        raise CorpusError(
            f"{name} has the release's {num_speakers} speakers but {len(rows)} utterances, not its "
            f"{num_utterances}: an incomplete copy? (extract the archive again)"
        )


def write_dir(out: Path, rows: Sequence[Utterance]) -> str:
    """Write ``<out>/{wav.scp,text,utt2spk,spk2utt}`` (rows in the order given); return a summary line."""
    write_data_dir(out, {
        "wav.scp": [(row.utt, str(row.audio)) for row in rows],
        "text": [(row.utt, row.words) for row in rows],
        "utt2spk": [(row.utt, row.speaker) for row in rows],
    })
    return f"{out}: {len(rows)} utterances, {len(speakers(rows))} speakers"


Split = Mapping[str, Sequence[Utterance]]  # data dir name -> its utterances


def data_prep_main(
    corpus: str,
    description: str,
    folder_holds: str,
    make_split: Callable[[Path], Split],
    cmd: Optional[Sequence[str]] = None,
    note: Optional[Callable[[Path, Split], str]] = None,
) -> None:
    """The ``local/data_prep.py --corpus_root DIR [--out data]`` of a LibriSpeech-layout recipe.

    ``make_split(corpus_root)`` gives the data dirs; each is written as ``<out>/<name>``
    (:func:`write_dir`) with its summary line, after ``note(corpus_root, split)`` when given.
    A CorpusError or OSError exits with the one line ``<prog>: <corpus>: <error>``.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_root", type=Path, required=True,
                        help=f"folder with {folder_holds} (or LibriSpeech/ holding them)")
    parser.add_argument("--out", type=Path, default=Path("data"))
    args = parser.parse_args(cmd)
    try:
        split = make_split(args.corpus_root)
    except (OSError, CorpusError) as error:
        sys.exit(f"{parser.prog}: {corpus}: {error}")
    if note is not None:
        print(note(args.corpus_root, split))
    for name, rows in split.items():
        print(write_dir(args.out / name, rows))
