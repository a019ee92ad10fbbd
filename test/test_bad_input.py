"""The bad-input catalogue (docs/RELIABILITY.md): each bad input gets one line naming the file,
utterance or option and a non-zero exit, or, in data preparation, a counted skip with a warning.

The decoding model is a tiny randomly initialised HAT model saved as training saves one
(config.yaml + state dict): the checks run before or around the search, whatever it outputs.
"""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_hatiam.bin import format_data as format_data_cli
from espnet_hatiam.bin import hat_asr_inference
from espnet_hatiam.data.checks import check_bpemodel, count_unknown_tokens
from espnet_hatiam.data.datadir import format_data
from espnet_hatiam.errors import InputError
from espnet_hatiam.tasks.hat_asr import HATASRTask
from tiny_model import TOKENS

FS = 16000


def _model_args(tokens):
    args = HATASRTask.get_parser().parse_args([
        "--token_list", "unused", "--token_type", "char", "--output_dir", "unused",
        "--encoder", "conformer",
        "--encoder_conf", "{output_size: 16, num_blocks: 1, linear_units: 16, attention_heads: 2, rel_pos_type: latest}",
        "--decoder_conf", "{hidden_size: 16}", "--joint_net_conf", "{joint_space_size: 16}",
        "--frontend_conf", "{n_fft: 512, hop_length: 160, n_mels: 20}",
    ])
    args.token_list = list(tokens)
    return args


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """``(config.yaml, model.pth)`` of a tiny HAT model, as ``hat_asr_train`` writes them."""
    root = tmp_path_factory.mktemp("bad_input")
    args = _model_args(TOKENS)
    torch.manual_seed(0)
    config, model_file = root / "config.yaml", root / "model.pth"
    torch.save(HATASRTask.build_model(args).state_dict(), model_file)
    config.write_text(yaml.safe_dump(vars(args)))
    return config, model_file


def _wav_scp(root: Path, audio: dict) -> Path:
    """A ``wav.scp`` of ``{utt: (samples (L,) or (L, C), rate)}``, or ``{utt: bytes}`` for a raw file."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for utt, content in audio.items():
        path = root / f"{utt}.wav"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            samples, rate = content
            soundfile.write(path, samples, rate, subtype="FLOAT" if samples.dtype == np.float32 else "PCM_16")
        lines.append(f"{utt} {path}\n")
    (root / "wav.scp").write_text("".join(lines))
    return root / "wav.scp"


def _tone(seconds=0.5, rate=FS, channels=1):
    samples = 0.1 * np.sin(np.arange(int(seconds * rate)) / 5.0)
    return (np.stack([samples] * channels, axis=1) if channels > 1 else samples), rate


def _decode(model, tmp_path, wav_scp, *options, model_file=None):
    """Run the decoding CLI in this process: None, the exit status, or the exit message after the program name."""
    config, trained = model
    cmd = ["--asr_train_config", str(config), "--asr_model_file", str(model_file or trained),
           "--data_path_and_name_and_type", f"{wav_scp},speech,sound", "--output_dir", str(tmp_path / "out"),
           "--search_type", "greedy", *options]
    try:
        hat_asr_inference.main(cmd)
    except SystemExit as exit:
        return exit.code.split(": ", 1)[1] if isinstance(exit.code, str) else exit.code
    return None


AUDIO_CASES = {
    "missing": (None, "utterance bad: cannot read audio '{path}': no such file"),
    "corrupt": (b"RIFF\x10\x00\x00\x00WAVEnot audio at all", "utterance bad: cannot read audio '{path}': "),
    "empty": (b"", "utterance bad: cannot read audio '{path}': Format not recognised."),
    "zero_length": ((np.zeros(0, dtype=np.int16), FS), "utterance bad: '{path}' has no samples"),
    "22kHz": (_tone(rate=22050), "utterance bad: '{path}' is sampled at 22050 Hz, the model at 16000 Hz"),
    "stereo": (_tone(channels=2), "utterance bad: '{path}' has 2 channels; the model takes mono"),
}


@pytest.mark.parametrize("case", sorted(AUDIO_CASES))
def test_bad_audio_is_named_before_decoding(model, tmp_path, case):
    content, message = AUDIO_CASES[case]
    wav_scp = _wav_scp(tmp_path / "data", {"good": _tone(), "bad": content})
    error = _decode(model, tmp_path, wav_scp)
    assert error.startswith(message.format(path=tmp_path / "data/bad.wav")), error
    assert "\n" not in error and not (tmp_path / "out").exists()


def test_nan_samples_are_named(model, tmp_path):
    samples = _tone()[0].astype(np.float32)
    samples[100] = np.nan
    wav_scp = _wav_scp(tmp_path / "data", {"good": _tone(), "bad": (samples, FS)})
    assert _decode(model, tmp_path, wav_scp) == "utterance bad: its input has NaN or inf values"


def test_key_missing_from_wav_scp_is_named(model, tmp_path):
    wav_scp = _wav_scp(tmp_path / "data", {"good": _tone()})
    (tmp_path / "keys").write_text("good\nlost\n")
    error = _decode(model, tmp_path, wav_scp, "--key_file", str(tmp_path / "keys"))
    assert error == f"utterance lost: not in {wav_scp}"


@pytest.mark.parametrize("option, value, message", [
    ("--iam_blank_threshold", "1.5", "search option 'iam_blank_threshold' must be in [0, 1]"),
    ("--hat_blank_threshold", "-0.1", "search option 'hat_blank_threshold' must be in [0, 1]"),
    ("--beam_size", "0", "search option 'beam_size' must be an integer >= 1"),
])
def test_bad_search_options_are_named(model, tmp_path, option, value, message):
    wav_scp = _wav_scp(tmp_path / "data", {"good": _tone()})
    error = _decode(model, tmp_path, wav_scp, option, value)
    assert error.startswith(message), error


def test_missing_truncated_or_foreign_checkpoint_is_named(model, tmp_path):
    config, trained = model
    wav_scp = _wav_scp(tmp_path / "data", {"good": _tone()})
    missing = tmp_path / "missing.pth"
    assert _decode(model, tmp_path, wav_scp, model_file=missing) == \
        f"--asr_model_file: no such file '{missing}'"

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    error = _decode(model, tmp_path, wav_scp, model_file=truncated)
    assert error.startswith(f"--asr_model_file '{truncated}' cannot be loaded with "
                            f"--asr_train_config '{config}' (truncated"), error

    other = tmp_path / "other_tokens.pth"  # a model of another token list: other output sizes
    torch.save(HATASRTask.build_model(_model_args(TOKENS + ["e", "f"])).state_dict(), other)
    error = _decode(model, tmp_path, wav_scp, model_file=other)
    assert error.startswith(f"--asr_model_file '{other}' cannot be loaded"), error
    assert "\n" not in error


def test_unknown_decode_config_key_is_named(model, tmp_path, capsys):
    wav_scp = _wav_scp(tmp_path / "data", {"good": _tone()})
    (tmp_path / "decode.yaml").write_text("beam_size: 4\nbeam_szie: 8\n")
    assert _decode(model, tmp_path, wav_scp, "--config", str(tmp_path / "decode.yaml")) == 2
    assert f"unrecognized arguments: beam_szie (from {tmp_path / 'decode.yaml'})" in capsys.readouterr().err


def test_too_short_audio_decodes_to_an_empty_hypothesis_with_a_warning(model, tmp_path, caplog):
    wav_scp = _wav_scp(tmp_path / "data", {"short": _tone(seconds=0.02)})
    with caplog.at_level(logging.WARNING):
        assert _decode(model, tmp_path, wav_scp) is None
    assert "utterances short: " in caplog.text
    assert (tmp_path / "out/1best_recog/text").read_text() == "short \n"


def test_cli_prints_one_line_and_no_traceback(model, tmp_path):
    config, trained = model
    wav_scp = _wav_scp(tmp_path / "data", {"bad": _tone(channels=2)})
    result = subprocess.run(
        [sys.executable, "-m", "espnet_hatiam.bin.hat_asr_inference", "--asr_train_config", str(config),
         "--asr_model_file", str(trained), "--data_path_and_name_and_type", f"{wav_scp},speech,sound",
         "--output_dir", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    errors = [line for line in result.stderr.splitlines()[1:] if line.strip()]  # after the echoed command
    assert result.returncode == 1 and len(errors) == 1
    assert errors[0].startswith("hat_asr_inference.py: utterance bad: ") and "has 2 channels" in errors[0], result.stderr


def test_bpemodel_of_another_token_list_is_named(tmp_path):
    import sentencepiece

    (tmp_path / "text").write_text("abc abd acd bcd dab cab\n" * 20)
    sentencepiece.SentencePieceTrainer.Train(input=str(tmp_path / "text"), model_prefix=str(tmp_path / "bpe"),
                                             vocab_size=8, model_type="unigram", character_coverage=1.0)
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "bpe.model"))
    own = ["<blank>", "<unk>"] + [pieces.IdToPiece(i) for i in range(3, pieces.GetPieceSize())] + ["<sos/eos>"]
    check_bpemodel(str(tmp_path / "bpe.model"), own)
    with pytest.raises(InputError, match=r"--bpemodel '.*bpe.model' does not match the model's token list: "
                                         r"1 of its \d+ tokens are not among the 8 pieces \(e.g. 'zz'\)"):
        check_bpemodel(str(tmp_path / "bpe.model"), own + ["zz"])


# Data preparation (hat_asr.sh stages 2-4) and training.

def _data_dir(root: Path, audio: dict, texts: dict) -> Path:
    _wav_scp(root, audio)
    (root / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    (root / "utt2spk").write_text("".join(f"{u} spk\n" for u in audio))
    return root


def test_data_prep_names_unreadable_and_nan_audio(tmp_path):
    for case, content, message in (
        ("corrupt", b"not audio", "utterance bad: cannot read audio '.*bad.wav': Format not recognised"),
        ("nan", (np.full(800, np.nan, dtype=np.float32), FS), "utterance bad: '.*bad.wav' has NaN or inf samples"),
    ):
        src = _data_dir(tmp_path / case, {"good": _tone(), "bad": content}, {"good": "A", "bad": "B"})
        with pytest.raises(InputError, match=message):
            format_data(src, tmp_path / f"{case}_dump", FS, 1, None, None)


def test_data_prep_counts_what_it_skips_and_mixes_channels_down(tmp_path, caplog):
    src = _data_dir(tmp_path / "src", {"stereo": _tone(channels=2, rate=8000), "silent": (np.zeros(0, np.int16), FS)},
                    {"stereo": "A", "silent": "B", "orphan": "C"})
    with caplog.at_level(logging.WARNING):
        format_data(src, tmp_path / "dump", FS, 1, None, None)
    assert "src/text: 1 utterances are not in wav.scp and are left out, e.g. 'orphan'" in caplog.text
    assert "src/wav.scp: 1 utterances have no samples and are dropped, e.g. 'silent'" in caplog.text
    assert (tmp_path / "dump/text").read_text() == "stereo A\n"
    info = soundfile.info((tmp_path / "dump/wav.scp").read_text().split()[1])
    assert (info.channels, info.samplerate, info.frames) == (1, FS, FS // 2)


def test_data_prep_cli_names_a_missing_table(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(SystemExit) as exit:
        format_data_cli.main(["--src", str(tmp_path / "src"), "--dst", str(tmp_path / "dump")])
    assert exit.value.code.endswith(f"{tmp_path / 'src'}: missing 'wav.scp' (a Kaldi-style data dir is expected)")


def test_transcripts_outside_the_token_list_are_counted(tmp_path, caplog):
    from espnet2.text.build_tokenizer import build_tokenizer

    (tmp_path / "text").write_text("u1 abc\nu2 abé\nu3 dé x\n")
    with caplog.at_level(logging.WARNING):
        count_unknown_tokens(tmp_path / "text", TOKENS, build_tokenizer("char"))
    assert f"{tmp_path / 'text'}: 2 of 3 utterances have tokens outside the token list, trained as <unk> " \
           "(e.g. u2: é)" in caplog.text


def test_unknown_training_config_key_is_named(tmp_path, capsys):
    (tmp_path / "train.yaml").write_text("max_epoch: 2\nmax_epohc: 3\n")
    with pytest.raises(SystemExit) as exit:
        HATASRTask.main(cmd=["--config", str(tmp_path / "train.yaml"), "--output_dir", str(tmp_path / "exp")])
    assert exit.value.code == 2
    assert f"unrecognized arguments: max_epohc (from {tmp_path / 'train.yaml'})" in capsys.readouterr().err


def test_an_error_that_is_not_the_checkpoints_stays_a_traceback():
    """loading_model names bad checkpoints; a RuntimeError of another cause (out of memory, a bug) is not
    disguised as one."""
    from espnet_hatiam.data.checks import loading_model

    with pytest.raises(InputError, match="cannot be loaded"):
        with loading_model("c.yaml", "m.pth"):
            raise RuntimeError("Error(s) in loading state_dict for ESPnetHATModel: size mismatch")
    with pytest.raises(RuntimeError, match="out of memory"):
        with loading_model("c.yaml", "m.pth"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
