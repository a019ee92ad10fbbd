"""Checks of user inputs (audio, checkpoints, token lists, transcripts), each failing with an
:class:`~espnet_hatiam.errors.InputError` that names the file, utterance or option. The
catalogue (what is checked where) is docs/RELIABILITY.md.
"""

import contextlib
import logging
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import torch

from espnet_hatiam.errors import InputError


def audio_error(utt: str, path: str, error: Exception) -> InputError:
    """The error for audio soundfile cannot open (its own message names neither the utterance nor,
    once pickled across processes, anything: ``<exception str() failed>``)."""
    reason = getattr(error, "error_string", None) or type(error).__name__
    if not Path(path).exists():
        reason = "no such file"
    return InputError(f"utterance {utt}: cannot read audio '{path}': {reason}")


def check_audio_table(wav_scp: Path, fs: int, keys: Optional[Iterable[str]] = None) -> None:
    """Every utterance of ``wav_scp`` (or of ``keys``) is a readable, non-empty, mono file at ``fs`` Hz.

    Reads only the headers (soundfile.info). Paths are as ESPnet's ``SoundScpReader`` reads them.
    Raises InputError naming the utterance and the file, or the key missing from ``wav_scp``.
    """
    import soundfile

    from espnet_hatiam.data.kaldi import read_table

    table = read_table(wav_scp)
    for utt in keys if keys is not None else table:
        if utt not in table:
            raise InputError(f"utterance {utt}: not in {wav_scp}")
        path = table[utt]
        try:
            info = soundfile.info(path)
        except Exception as error:  # LibsndfileError and its relatives
            raise audio_error(utt, path, error) from None
        if info.frames == 0:
            raise InputError(f"utterance {utt}: '{path}' has no samples")
        if info.channels != 1:
            raise InputError(f"utterance {utt}: '{path}' has {info.channels} channels; the model takes mono "
                             "audio (espnet_hatiam.bin.format_data averages the channels)")
        if info.samplerate != fs:
            raise InputError(f"utterance {utt}: '{path}' is sampled at {info.samplerate} Hz, the model at {fs} Hz; "
                             f"resample it (espnet_hatiam.bin.format_data --fs {fs}, the recipes' stage 3)")


def check_finite(keys: Sequence[str], speech: torch.Tensor, lengths: torch.Tensor) -> None:
    """Raise InputError naming the first utterance of a padded batch ``(B, L, ...)`` with a NaN or inf."""
    for key, utterance, length in zip(keys, speech, lengths):
        if not torch.isfinite(utterance[: int(length)]).all():
            raise InputError(f"utterance {key}: its input has NaN or inf values")


def model_sampling_rate(train_config: Mapping) -> int:
    """The sampling rate a model's frontend expects (``frontend_conf.fs``, ESPnet's default 16 kHz)."""
    import humanfriendly

    fs = (train_config.get("frontend_conf") or {}).get("fs", 16000)
    return int(humanfriendly.parse_size(fs)) if isinstance(fs, str) else int(fs)


def count_unknown_tokens(text_file: Path, token_list: Sequence[str], tokenizer) -> None:
    """Warn, with a count and an example, about transcripts with tokens outside ``token_list``.

    ESPnet's preprocessing maps them to ``<unk>``; a user should know how often that happens.
    """
    from espnet_hatiam.data.kaldi import read_table

    known = set(token_list)
    unknown = {}
    text = read_table(text_file)
    for utt, transcript in text.items():
        missing = [token for token in tokenizer.text2tokens(transcript) if token not in known]
        if missing:
            unknown[utt] = missing
    if unknown:
        utt = next(iter(unknown))
        logging.warning(f"{text_file}: {len(unknown)} of {len(text)} utterances have tokens outside the token "
                        f"list, trained as <unk> (e.g. {utt}: {' '.join(sorted(set(unknown[utt])))})")


CHECKPOINT_ERRORS = ("state_dict", "PytorchStreamReader", "zip archive", "EOF")
"""Signs in a RuntimeError's message that torch.load or load_state_dict refused the file."""


@contextlib.contextmanager
def loading_model(train_config: str, model_file: Optional[str]) -> Iterator[None]:
    """Turn the errors of loading a checkpoint into an InputError naming both files: a truncated
    or foreign file (torch.load) or a state dict of another model (load_state_dict, e.g. another
    token list)."""
    import pickle

    try:
        yield
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        if type(error) is RuntimeError and not any(sign in str(error) for sign in CHECKPOINT_ERRORS):
            raise  # not the checkpoint's fault (e.g. out of memory while building the model): a genuine error
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"--asr_model_file '{model_file}' cannot be loaded with --asr_train_config "
                         f"'{train_config}' (truncated, or another model's?): {reason}") from None


def check_bpemodel(bpemodel: str, token_list: Sequence[str]) -> None:
    """Raise InputError unless the sentencepiece model ``bpemodel`` makes the model's tokens."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    if not processor.Load(str(bpemodel)):
        raise InputError(f"--bpemodel '{bpemodel}': not a sentencepiece model")
    pieces = {processor.IdToPiece(i) for i in range(processor.GetPieceSize())}
    foreign = [token for token in token_list if token not in pieces and not token.startswith("<")]
    if foreign:
        raise InputError(f"--bpemodel '{bpemodel}' does not match the model's token list: {len(foreign)} of its "
                         f"{len(token_list)} tokens are not among the {len(pieces)} pieces (e.g. '{foreign[0]}')")
