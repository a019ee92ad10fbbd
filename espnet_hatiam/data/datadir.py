"""Kaldi-style data dirs (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``) turned into new ones:
the speed-perturbed copy of ESPnet asr.sh stage 2 and the dump dir of stages 3-4.

- :func:`speed_perturb`: each factor f != 1 resamples every utterance so that it plays f
  times faster (pitch moves with it) and adds it as ``sp<f>-<utt>`` with speaker
  ``sp<f>-<spk>``; f = 1 keeps the originals. Audio goes to ``<dst>/data``.
- :func:`format_data`: audio as 16-bit WAV at one sampling rate under ``<dst>/data``, plus
  ``utt2num_samples``; it drops utterances without samples and, with
  ``min_duration``/``max_duration``, those that are too short, too long or have empty text,
  and warns how many.

Audio files already there are kept, so a re-run over a finished dir rewrites nothing.
"""

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_hatiam.data.audio import audio_path, convert_to_wav, write_speed_perturbed
from espnet_hatiam.errors import InputError
from espnet_hatiam.data.kaldi import read_table, write_data_dir

Rows = List[Tuple[str, str]]


def read_data_dir(src: Path) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, str]]:
    """``(wav_scp, text, utt2spk)`` of a data dir; every ``wav.scp`` utterance must have text and speaker.

    Raises InputError for a missing file or naming the file and an utterance it lacks; entries
    of ``text`` or ``utt2spk`` without audio are left out with a warning (as Kaldi's fix_data_dir.sh).
    """
    names = ("wav.scp", "text", "utt2spk")
    for name in names:
        if not (src / name).exists():
            raise InputError(f"{src}: missing '{name}' (a Kaldi-style data dir is expected)")
    wav_scp, text, utt2spk = (read_table(src / name) for name in names)
    for name, table in (("text", text), ("utt2spk", utt2spk)):
        missing = sorted(set(wav_scp) - set(table))
        if missing:
            raise InputError(f"{src}/{name}: no entry for {len(missing)} utterances, e.g. '{missing[0]}'")
        extra = sorted(set(table) - set(wav_scp))
        if extra:
            logging.warning(f"{src}/{name}: {len(extra)} utterances are not in wav.scp and are left out, "
                            f"e.g. '{extra[0]}'")
    return wav_scp, text, utt2spk


def _run(job, jobs: list, nj: int, chunksize: int) -> list:
    # forkserver: a forked child of a process whose torch thread pool already ran can deadlock.
    with ProcessPoolExecutor(max_workers=nj, mp_context=multiprocessing.get_context("forkserver")) as pool:
        return list(pool.map(job, jobs, chunksize=chunksize))


def speed_perturb(src: Path, dst: Path, factors: Sequence[float], fs: int, nj: int) -> None:
    """Write ``dst``: the utterances of ``src`` at every speed factor (1.0 keeps the originals)."""
    wav_scp, text, utt2spk = read_data_dir(src)
    (dst / "data").mkdir(parents=True, exist_ok=True)
    tables: Dict[str, Rows] = {"wav.scp": [], "text": [], "utt2spk": []}
    jobs = []
    for factor in factors:
        for utt in sorted(wav_scp):
            path = audio_path(wav_scp[utt], src)
            if factor == 1.0:
                new_utt, spk = utt, utt2spk[utt]
            else:
                new_utt, spk = f"sp{factor}-{utt}", f"sp{factor}-{utt2spk[utt]}"
                target = str((dst / "data" / f"{new_utt}.wav").resolve())
                jobs.append((utt, path, target, factor, fs))
                path = target
            tables["wav.scp"].append((new_utt, path))
            tables["text"].append((new_utt, text[utt]))
            tables["utt2spk"].append((new_utt, spk))
    _run(write_speed_perturbed, jobs, nj, chunksize=16)
    write_data_dir(dst, {name: sorted(rows) for name, rows in tables.items()})
    logging.info(f"{dst}: {len(tables['wav.scp'])} utterances (factors {' '.join(map(str, factors))})")


def format_data(
    src: Path, dst: Path, fs: int, nj: int, min_duration: Optional[float], max_duration: Optional[float]
) -> None:
    """Write the dump dir ``dst`` of ``src``: 16-bit WAV at ``fs``, filtered by duration and empty text."""
    wav_scp, text, utt2spk = read_data_dir(src)
    (dst / "data").mkdir(parents=True, exist_ok=True)
    paths = {utt: str((dst / "data" / f"{utt}.wav").resolve()) for utt in sorted(wav_scp)}
    jobs = [(utt, audio_path(wav_scp[utt], src), paths[utt], fs) for utt in paths]
    samples = dict(_run(convert_to_wav, jobs, nj, chunksize=32))

    kept: List[str] = []
    silent = [utt for utt in paths if samples[utt] == 0]
    if silent:
        logging.warning(f"{src}/wav.scp: {len(silent)} utterances have no samples and are dropped, e.g. '{silent[0]}'")
    for utt in paths:
        seconds = samples[utt] / fs
        if seconds == 0:
            continue
        if min_duration is not None and (not text[utt].strip() or seconds < min_duration):
            continue
        if max_duration is not None and seconds > max_duration:
            continue
        kept.append(utt)
    if len(kept) < len(wav_scp) - len(silent):
        logging.warning(f"{dst}: dropped {len(wav_scp) - len(silent) - len(kept)} of {len(wav_scp)} utterances "
                        f"(empty text or duration outside [{min_duration}, {max_duration}] s)")
    if not kept:
        raise InputError(f"{src}: no utterance left after filtering")

    write_data_dir(dst, {
        "wav.scp": [(u, paths[u]) for u in kept],
        "text": [(u, text[u]) for u in kept],
        "utt2spk": [(u, utt2spk[u]) for u in kept],
        "utt2num_samples": [(u, str(samples[u])) for u in kept],
    })
    logging.info(f"{dst}: {len(kept)} utterances, {sum(samples[u] for u in kept) / fs / 3600:.2f} h")
