#!/usr/bin/env python3
"""Copy a Kaldi-style data dir to a dump dir with audio as 16-bit WAV at one sampling rate.

Writes ``<dst>/{wav.scp,text,utt2spk,spk2utt,utt2num_samples}`` and ``<dst>/data/*.wav``.
With ``--min_duration/--max_duration`` it also drops utterances that are too short, too
long or have empty text (ESPnet asr.sh stage 4), and logs how many it dropped.
Re-running over a finished dump rewrites nothing (audio files already present are kept).

Example:
    python -m espnet_hatiam.bin.format_data --src data/train --dst dump/raw/train --fs 16000 --nj 2
"""

import argparse
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile


def read_kaldi_map(path: Path) -> Dict[str, str]:
    """``utt-id value...`` lines -> dict; a malformed line raises naming the file and line."""
    table = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.partition(" ") if " " in line else line.partition("\t")
            if not key:
                raise ValueError(f"{path}:{number}: no utterance id in line '{line}'")
            table[key] = value.strip()
    return table


def convert(job: Tuple[str, str, str, int]) -> Tuple[str, int]:
    """Read one utterance's audio, resample to ``fs`` if needed, write 16-bit WAV; return samples."""
    utt, src, dst, fs = job
    if os.path.exists(dst):
        return utt, soundfile.info(dst).frames
    try:
        audio, rate = soundfile.read(src, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile's message does not name the utterance
        raise RuntimeError(f"utterance {utt}: cannot read audio '{src}': {error}") from error
    audio = audio.mean(axis=1)
    if rate != fs:
        import torch
        import torchaudio.functional

        audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, fs).numpy()
    soundfile.write(dst, np.clip(audio, -1.0, 1.0), fs, subtype="PCM_16")
    return utt, len(audio)


def format_data(src: Path, dst: Path, fs: int, nj: int, min_duration: float, max_duration: float):
    for name in ("wav.scp", "text", "utt2spk"):
        if not (src / name).exists():
            raise FileNotFoundError(f"{src}: missing '{name}' (a Kaldi-style data dir is expected)")
    wav_scp, text, utt2spk = (read_kaldi_map(src / n) for n in ("wav.scp", "text", "utt2spk"))
    for name, table in (("text", text), ("utt2spk", utt2spk)):
        missing = sorted(set(wav_scp) - set(table))
        if missing:
            raise ValueError(f"{src}/{name}: no entry for {len(missing)} utterances, e.g. '{missing[0]}'")
    (dst / "data").mkdir(parents=True, exist_ok=True)
    jobs = [
        (utt, resolve_path(wav_scp[utt], src), str((dst / "data" / f"{utt}.wav").resolve()), fs)
        for utt in sorted(wav_scp)
    ]
    with ProcessPoolExecutor(max_workers=nj) as pool:
        samples = dict(pool.map(convert, jobs, chunksize=32))

    kept: List[str] = []
    for utt in sorted(wav_scp):
        seconds = samples[utt] / fs
        if min_duration is not None and (not text[utt].strip() or seconds < min_duration):
            continue
        if max_duration is not None and seconds > max_duration:
            continue
        kept.append(utt)
    if len(kept) < len(wav_scp):
        logging.info(f"{dst}: dropped {len(wav_scp) - len(kept)} of {len(wav_scp)} utterances "
                     f"(empty text or duration outside [{min_duration}, {max_duration}] s)")
    if not kept:
        raise ValueError(f"{src}: no utterance left after filtering")

    paths = {utt: path for utt, _, path, _ in jobs}
    write_table(dst / "wav.scp", ((u, paths[u]) for u in kept))
    write_table(dst / "text", ((u, text[u]) for u in kept))
    write_table(dst / "utt2spk", ((u, utt2spk[u]) for u in kept))
    write_table(dst / "utt2num_samples", ((u, str(samples[u])) for u in kept))
    spk2utt: Dict[str, List[str]] = {}
    for utt in kept:
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    write_table(dst / "spk2utt", ((s, " ".join(us)) for s, us in sorted(spk2utt.items())))
    logging.info(f"{dst}: {len(kept)} utterances, {sum(samples[u] for u in kept) / fs / 3600:.2f} h")


def resolve_path(path: str, data_dir: Path) -> str:
    if path.endswith("|"):
        raise ValueError(f"{data_dir}/wav.scp: piped commands are not supported ('{path}')")
    return path if os.path.isabs(path) else str((data_dir / path).resolve())


def write_table(path: Path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for key, value in rows:
            f.write(f"{key} {value}\n")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="Kaldi-style data dir")
    parser.add_argument("--dst", type=Path, required=True, help="output dump dir")
    parser.add_argument("--fs", type=int, default=16000, help="output sampling rate")
    parser.add_argument("--nj", type=int, default=1, help="parallel processes")
    parser.add_argument("--min_duration", type=float, default=None, help="drop shorter utterances (s)")
    parser.add_argument("--max_duration", type=float, default=None, help="drop longer utterances (s)")
    return parser


def main(cmd=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    args = get_parser().parse_args(cmd)
    format_data(args.src, args.dst, args.fs, args.nj, args.min_duration, args.max_duration)


if __name__ == "__main__":
    main()
