"""A tiny synthetic corpus for end-to-end tests: every letter is a tone, words are tone runs.

The letters a-d map to tones of different pitch (0.12 s each, 0.05 s silence between
letters, 0.15 s between words), so a model can really learn the mapping in a few steps.
"""

from pathlib import Path
from typing import Dict

import numpy as np
import soundfile

from espnet_hatiam.data.kaldi import write_data_dir

FS = 16000
PITCH = {"a": 300.0, "b": 600.0, "c": 1200.0, "d": 2400.0}


def synthesize(text: str, rng: np.random.Generator) -> np.ndarray:
    pieces = []
    for w, word in enumerate(text.split()):
        if w:
            pieces.append(np.zeros(int(0.15 * FS)))
        for i, letter in enumerate(word):
            if i:
                pieces.append(np.zeros(int(0.05 * FS)))
            t = np.arange(int(0.12 * FS)) / FS
            pieces.append(0.5 * np.sin(2 * np.pi * PITCH[letter] * t) * np.hanning(t.size))
    audio = np.concatenate([np.zeros(int(0.1 * FS))] + pieces + [np.zeros(int(0.1 * FS))])
    return (audio + 0.01 * rng.standard_normal(audio.size)).astype(np.float32)


def make_data_dir(root: Path, name: str, num_utts: int, seed: int) -> Path:
    """Write a Kaldi-style dir ``root/name`` (wav.scp, text, utt2spk, spk2utt) of ``num_utts`` utterances."""
    rng = np.random.default_rng(seed)
    directory = root / name
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    rows: Dict[str, Dict[str, str]] = {"wav.scp": {}, "text": {}, "utt2spk": {}}
    for n in range(num_utts):
        words = [
            "".join(rng.choice(list(PITCH), size=rng.integers(1, 4))) for _ in range(rng.integers(1, 4))
        ]
        text = " ".join(words)
        utt = f"spk{n % 2}-{name}{n:04d}"
        path = directory / "wav" / f"{utt}.wav"
        soundfile.write(path, synthesize(text, rng), FS)
        rows["wav.scp"][utt] = str(path.resolve())
        rows["text"][utt] = text
        rows["utt2spk"][utt] = utt.split("-")[0]
    write_data_dir(directory, {filename: sorted(table.items()) for filename, table in rows.items()})
    return directory


if __name__ == "__main__":  # used by the miniature recipe's local/data.sh
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data")
    for name, count, seed in (("train", 64, 0), ("dev", 8, 1), ("test", 9, 2)):
        if not (out / name / "wav.scp").exists():
            make_data_dir(out, name, count, seed)
