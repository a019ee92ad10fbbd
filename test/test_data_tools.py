"""Recipe data tools: Kaldi tables, formatting, filtering, speed perturbation, job splitting and merging;
bad input is named."""

import json

import numpy as np
import pytest
import soundfile

from espnet_hatiam.bin.merge_decode import main as merge_decode
from espnet_hatiam.bin.split_keys import main as split_keys
from espnet_hatiam.data.datadir import format_data, speed_perturb
from espnet_hatiam.data.decode_dir import STATS
from espnet_hatiam.data.kaldi import read_table, spk2utt, write_table


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
    with pytest.raises(ValueError, match="utterance spk-00: cannot read audio"):
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


def test_split_keys_refuses_more_jobs_than_utterances(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("u1 /x/1.wav\n")
    with pytest.raises(SystemExit, match="1 utterances cannot fill 2 jobs"):
        split_keys(["--scp", str(scp), "--out", str(tmp_path / "a"), str(tmp_path / "b")])


def test_merge_decode_concatenates_tables_and_sums_the_stats(tmp_path):
    for n, keys in ((1, ["u1", "u2"]), (2, ["u3"])):
        part = tmp_path / "logdir" / f"output.{n}"
        (part / "1best_recog").mkdir(parents=True)
        write_table(part / "1best_recog" / "text", [(k, f"T {k}") for k in keys])
        (part / "utt_stats.jsonl").write_text("".join(json.dumps({"utt": k}) + "\n" for k in keys))
        stats = {**{name: len(keys) for name in STATS}, "beam_size": 4}
        (part / "decode_stats.json").write_text(json.dumps(stats))
    merge_decode(["--dir", str(tmp_path), "--nj", "2"])
    assert read_table(tmp_path / "1best_recog" / "text") == {"u1": "T u1", "u2": "T u2", "u3": "T u3"}
    assert len((tmp_path / "utt_stats.jsonl").read_text().splitlines()) == 3
    merged = json.loads((tmp_path / "decode_stats.json").read_text())
    assert merged == {**{name: 3 for name in STATS}, "beam_size": 4, "jobs": 2}


def test_merge_decode_names_an_unfinished_job(tmp_path):
    (tmp_path / "logdir" / "output.1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="output.1: job did not finish"):
        merge_decode(["--dir", str(tmp_path), "--nj", "1"])


# ---------------------------------------------------------------- Kaldi tables


def test_kaldi_table_accepts_space_or_tab_and_an_id_alone(tmp_path):
    (tmp_path / "text").write_text("u1 A B\nu2\tC  D\nu3\n\nu4 E \n")
    assert read_table(tmp_path / "text") == {"u1": "A B", "u2": "C  D", "u3": "", "u4": "E"}


@pytest.mark.parametrize("content, message", [
    ("u1 A\nu1 B\n", r"text:2: id 'u1' repeats line 1"),
    ("u1 A\n  u2 B\n", r"text:2: no id at the start of the line"),
])
def test_kaldi_table_names_the_file_and_line_of_a_bad_line(tmp_path, content, message):
    (tmp_path / "text").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_table(tmp_path / "text")


def test_kaldi_table_round_trip_and_refused_rows(tmp_path):
    rows = [("b", "x y"), ("a", ""), ("c", "/p/c.wav")]
    write_table(tmp_path / "t", rows)
    assert (tmp_path / "t").read_text() == "b x y\na \nc /p/c.wav\n"
    assert list(read_table(tmp_path / "t").items()) == rows
    for bad in [("a b", "v"), ("", "v"), ("a", "v\nb w")]:
        with pytest.raises(ValueError):
            write_table(tmp_path / "bad", [bad])


def test_spk2utt_sorts_speakers_and_keeps_utterance_order():
    assert spk2utt({"u2": "s2", "u1": "s1", "u3": "s2"}) == [("s1", "u1"), ("s2", "u2 u3")]
