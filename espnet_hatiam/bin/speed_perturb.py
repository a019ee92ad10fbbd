#!/usr/bin/env python3
"""Speed perturbation of a Kaldi data dir (ESPnet asr.sh stage 2), like ``sox speed``.

Each factor f != 1 resamples every utterance so that it plays f times faster (pitch moves
with it) and adds it as ``sp<f>-<utt>`` with speaker ``sp<f>-<spk>``; f = 1 keeps the
originals. Audio is written under ``<dst>/data``.

    python -m espnet_hatiam.bin.speed_perturb --src data/train --dst data/train_sp --factors 0.9 1.0 1.1
"""

import argparse
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Tuple

import soundfile

from espnet_hatiam.bin.format_data import resolve_path, write_table, read_kaldi_map


def perturb(job: Tuple[str, str, float, int]) -> None:
    """Write ``src`` sped up by ``factor`` at rate ``fs`` to ``dst`` (skips existing files)."""
    src, dst, factor, fs = job
    if Path(dst).exists():
        return
    import torch
    import torchaudio.functional

    audio, rate = soundfile.read(src, dtype="float32", always_2d=True)
    audio = torch.from_numpy(audio.mean(axis=1))
    # Playing samples recorded at rate*factor back at fs: resample rate*factor -> fs.
    source_rate = int(round(rate * factor))
    audio = torchaudio.functional.resample(audio, source_rate, fs) if source_rate != fs else audio
    soundfile.write(dst, audio.clamp(-1, 1).numpy(), fs, subtype="PCM_16")


def speed_perturb(src: Path, dst: Path, factors, fs: int, nj: int):
    wav_scp, text, utt2spk = (read_kaldi_map(src / n) for n in ("wav.scp", "text", "utt2spk"))
    (dst / "data").mkdir(parents=True, exist_ok=True)
    rows = {"wav.scp": [], "text": [], "utt2spk": []}
    jobs = []
    for factor in factors:
        for utt in sorted(wav_scp):
            path = resolve_path(wav_scp[utt], src)
            if factor == 1.0:
                new_utt, spk = utt, utt2spk[utt]
            else:
                new_utt, spk = f"sp{factor}-{utt}", f"sp{factor}-{utt2spk[utt]}"
                target = str((dst / "data" / f"{new_utt}.wav").resolve())
                jobs.append((path, target, factor, fs))
                path = target
            rows["wav.scp"].append((new_utt, path))
            rows["text"].append((new_utt, text[utt]))
            rows["utt2spk"].append((new_utt, spk))
    with ProcessPoolExecutor(max_workers=nj) as pool:
        list(pool.map(perturb, jobs, chunksize=16))
    spk2utt = {}
    for name, table in rows.items():
        table.sort()
        write_table(dst / name, table)
    for utt, spk in rows["utt2spk"]:
        spk2utt.setdefault(spk, []).append(utt)
    write_table(dst / "spk2utt", ((s, " ".join(u)) for s, u in sorted(spk2utt.items())))
    logging.info(f"{dst}: {len(rows['wav.scp'])} utterances (factors {' '.join(map(str, factors))})")


def main(cmd=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--dst", type=Path, required=True)
    parser.add_argument("--factors", type=float, nargs="+", required=True)
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=1)
    args = parser.parse_args(cmd)
    if any(f <= 0 for f in args.factors):
        parser.error(f"--factors must be positive, got {args.factors}")
    speed_perturb(args.src, args.dst, args.factors, args.fs, args.nj)


if __name__ == "__main__":
    main()
