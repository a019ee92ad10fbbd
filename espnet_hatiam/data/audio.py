"""Audio files of a data dir: the file a ``wav.scp`` entry names, reading any format soundfile
knows as mono float32, resampling (torchaudio) and writing 16-bit WAV.

:func:`convert_to_wav` and :func:`write_speed_perturbed` are the per-utterance jobs of
:mod:`espnet_hatiam.data.datadir` (picklable, for a process pool); both keep a file that is
already there, so a re-run rewrites nothing.
"""

import os
from pathlib import Path
from typing import Tuple

import numpy as np
import soundfile

from espnet_hatiam.data.checks import audio_error
from espnet_hatiam.errors import InputError


def audio_path(entry: str, data_dir: Path) -> str:
    """The absolute path a ``wav.scp`` value names (relative ones are relative to ``data_dir``).

    Raises InputError for a piped command (``... |``): only files are supported.
    """
    if entry.endswith("|"):
        raise InputError(f"{data_dir}/wav.scp: piped commands are not supported ('{entry}')")
    return entry if os.path.isabs(entry) else str((data_dir / entry).resolve())


def read_mono(path: str, utt: str) -> Tuple[np.ndarray, int]:
    """``(samples (L,) float32, sampling rate)``, channels averaged.

    Raises InputError naming ``utt`` and ``path`` for audio that cannot be read or has NaN or inf samples.
    """
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:  # soundfile's message does not name the utterance
        raise audio_error(utt, path, error) from None
    if not np.isfinite(audio).all():
        raise InputError(f"utterance {utt}: '{path}' has NaN or inf samples")
    return audio.mean(axis=1), rate


def resample(audio: np.ndarray, rate: int, fs: int) -> np.ndarray:
    """``audio`` recorded at ``rate`` resampled to ``fs`` (torchaudio's sinc interpolation); as is if equal."""
    if rate == fs:
        return audio
    import torch
    import torchaudio.functional

    return torchaudio.functional.resample(torch.from_numpy(audio), rate, fs).numpy()


def write_wav(path: str, audio: np.ndarray, fs: int) -> None:
    """16-bit PCM WAV, samples clipped to [-1, 1]."""
    soundfile.write(path, np.clip(audio, -1.0, 1.0), fs, subtype="PCM_16")


def convert_to_wav(job: Tuple[str, str, str, int]) -> Tuple[str, int]:
    """``(utt, src, dst, fs)``: write ``src`` as 16-bit WAV at ``fs`` to ``dst``; return ``(utt, samples)``."""
    utt, src, dst, fs = job
    if os.path.exists(dst):
        return utt, soundfile.info(dst).frames
    audio, rate = read_mono(src, utt)
    audio = resample(audio, rate, fs)
    write_wav(dst, audio, fs)
    return utt, len(audio)


def write_speed_perturbed(job: Tuple[str, str, str, float, int]) -> None:
    """``(utt, src, dst, factor, fs)``: write ``src`` playing ``factor`` times faster (like ``sox speed``) at ``fs``."""
    utt, src, dst, factor, fs = job
    if os.path.exists(dst):
        return
    audio, rate = read_mono(src, utt)
    # Playing samples recorded at rate*factor back at fs: resample rate*factor -> fs.
    write_wav(dst, resample(audio, int(round(rate * factor)), fs), fs)
