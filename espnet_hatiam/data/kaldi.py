"""Kaldi tables (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ...): one ``<id> <value>`` a line.

The one reader and writer of these files in the project (package, recipes' ``local/``,
benchmarks, tests); :func:`write_data_dir` writes a whole data dir, its ``spk2utt`` made here.
The id ends at the first space or tab; the value is the rest of the line, stripped (``""``
when the line holds only an id).

ESPnet's ``espnet2.fileio.read_text.read_2columns_text`` splits a line the same way, but it
fails on a blank line with an unpacking error that names no file, takes a line that starts
with white space as if it had no indentation, and reports a repeated id as a
``RuntimeError``; so this reader is written here, to the same split.
"""

from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple, Union

from espnet_hatiam.errors import InputError

PathLike = Union[Path, str]


def read_table(path: PathLike) -> Dict[str, str]:
    """``{id: value}`` in file order; blank lines are skipped.

    Raises InputError ``"<path>:<line>: ..."`` for a line that starts with white space (no id),
    an id that an earlier line already has, and bytes that are not UTF-8.
    """
    table: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    number = 0
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if line[0].isspace():
                    raise InputError(f"{path}:{number}: no id at the start of the line {line.rstrip()!r}")
                key, *value = line.split(maxsplit=1)
                if key in table:
                    raise InputError(f"{path}:{number}: id '{key}' repeats line {lines[key]}")
                table[key], lines[key] = (value[0].strip() if value else ""), number
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text after line {number} ({error.reason})") from None
    return table


def write_table(path: PathLike, rows: Iterable[Tuple[str, str]]) -> None:
    """Write ``(id, value)`` rows as ``<id> <value>`` lines, in the order given.

    Raises ValueError for an id that is empty or holds white space, or a value with a line
    break: either would make the file read back as other rows.
    """
    with open(path, "w", encoding="utf-8") as f:
        for key, value in rows:
            if not key or any(c.isspace() for c in key):
                raise ValueError(f"{path}: id {key!r} is empty or holds white space")
            if "\n" in value or "\r" in value:
                raise ValueError(f"{path}: the value of '{key}' holds a line break")
            f.write(f"{key} {value}\n")


def spk2utt(utt2spk: Mapping[str, str]) -> List[Tuple[str, str]]:
    """``spk2utt`` rows of an ``utt2spk`` table: speakers sorted, each one's utterances in table order."""
    speakers: Dict[str, List[str]] = {}
    for utt, spk in utt2spk.items():
        speakers.setdefault(spk, []).append(utt)
    return [(spk, " ".join(utts)) for spk, utts in sorted(speakers.items())]


def write_data_dir(directory: PathLike, tables: Mapping[str, Sequence[Tuple[str, str]]]) -> None:
    """Create ``directory`` and write each ``{file name: rows}`` table, plus ``spk2utt`` from ``utt2spk``.

    ``tables`` must hold ``utt2spk``; rows are written in the order given (:func:`write_table`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        write_table(directory / name, rows)
    write_table(directory / "spk2utt", spk2utt(dict(tables["utt2spk"])))
