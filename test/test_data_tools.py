"""Recipe data tools: formatting, filtering, speed perturbation, job splitting; bad input is named."""

import numpy as np
import pytest
import soundfile

from espnet_hatiam.bin.format_data import format_data
from espnet_hatiam.bin.speed_perturb import speed_perturb
from espnet_hatiam.bin.split_keys import main as split_keys


def _data_dir(root, durations, rate=8000, texts=None):
    root.mkdir(parents=True)
    wav, text, utt2spk = [], [], []
    for n, seconds in enumerate(durations):
        utt = f"spk-{n:02d}"
        soundfile.write(root / f"{utt}.flac", 0.1 * np.sin(np.arange(int(seconds * rate)) / 3), rate)
        wav.append(f"{utt} {utt}.flac\n")  # relative to the data dir
        text.append(f"{utt} {texts[n] if texts else 'A B'}\n")
        utt2spk.append(f"{utt} spk\n")
    (root / "wav.scp").write_text("".join(wav))
    (root / "text").write_text("".join(text))
    (root / "utt2spk").write_text("".join(utt2spk))
    return root


def test_format_resamples_to_16k_wav_and_counts_samples(tmp_path):
    src = _data_dir(tmp_path / "src", [0.5, 1.0])
    format_data(src, tmp_path / "dst", 16000, 1, None, None)
    lines = (tmp_path / "dst/wav.scp").read_text().split("\n")[:2]
    info = soundfile.info(lines[1].split()[1])
    assert info.samplerate == 16000 and info.subtype == "PCM_16"
    assert (tmp_path / "dst/utt2num_samples").read_text() == "spk-00 8000\nspk-01 16000\n"


def test_filter_drops_empty_text_and_out_of_range_durations(tmp_path):
    src = _data_dir(tmp_path / "src", [0.05, 1.0, 3.0, 1.0], texts=["A", "A B", "C", " "])
    format_data(src, tmp_path / "dst", 16000, 1, 0.1, 2.0)
    assert (tmp_path / "dst/text").read_text() == "spk-01 A B\n"
    assert (tmp_path / "dst/spk2utt").read_text() == "spk spk-01\n"


def test_unreadable_audio_names_the_utterance(tmp_path):
    src = _data_dir(tmp_path / "src", [0.5])
    (src / "spk-00.flac").write_bytes(b"not audio")
    with pytest.raises(RuntimeError, match="utterance spk-00"):
        format_data(src, tmp_path / "dst", 16000, 1, None, None)


def test_missing_transcript_names_the_file_and_utterance(tmp_path):
    src = _data_dir(tmp_path / "src", [0.5, 0.5])
    (src / "text").write_text("spk-00 A\n")
    with pytest.raises(ValueError, match=r"src/text: no entry for 1 utterances, e.g. 'spk-01'"):
        format_data(src, tmp_path / "dst", 16000, 1, None, None)


def test_speed_perturbation_scales_durations(tmp_path):
    src = _data_dir(tmp_path / "src", [1.0], rate=16000)
    speed_perturb(src, tmp_path / "sp", [0.9, 1.0, 1.1], 16000, 1)
    wav = dict(line.split() for line in (tmp_path / "sp/wav.scp").read_text().splitlines())
    assert sorted(wav) == ["sp0.9-spk-00", "sp1.1-spk-00", "spk-00"]
    assert soundfile.info(wav["sp0.9-spk-00"]).frames == pytest.approx(16000 / 0.9, abs=2)
    assert soundfile.info(wav["sp1.1-spk-00"]).frames == pytest.approx(16000 / 1.1, abs=2)
    assert "sp0.9-spk-00 sp0.9-spk" in (tmp_path / "sp/utt2spk").read_text()


def test_split_keys_covers_every_line_once_in_order(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{n} /x/{n}.wav\n" for n in range(7)))
    parts = [tmp_path / f"keys.{n}" for n in range(3)]
    split_keys(["--scp", str(scp), "--out", *map(str, parts)])
    assert "".join(p.read_text() for p in parts) == scp.read_text()
    assert [len(p.read_text().splitlines()) for p in parts] == [3, 2, 2]
