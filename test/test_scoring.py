"""Scoring: ESPnet's sclite-style counts, RTF and skip ratios, RESULTS.md table."""

import json

import pytest

from espnet_hatiam.bin.make_results import make_results
from espnet_hatiam.bin.score import error_counts, score


def test_word_counts_match_a_hand_alignment():
    refs = ["THE CAT SAT", "A DOG"]
    hyps = ["THE BAT SAT DOWN", "DOG"]  # 1 sub + 1 ins ; 1 del
    row = error_counts(refs, hyps, "word")
    assert (row["Snt"], row["Wrd"]) == (2, 5)
    assert row["Sub"] == pytest.approx(20.0) and row["Del"] == pytest.approx(20.0)
    assert row["Ins"] == pytest.approx(20.0) and row["Err"] == pytest.approx(60.0)
    assert row["Corr"] == pytest.approx(60.0) and row["S.Err"] == pytest.approx(100.0)


def test_character_counts_ignore_spaces():
    row = error_counts(["AB C"], ["ABC"], "char")
    assert row["Wrd"] == 3 and row["Err"] == 0.0


def test_score_and_results_table(tmp_path):
    exp = tmp_path / "exp"
    out = exp / "decode_dual_valid.wer.best" / "test"
    (out / "1best_recog").mkdir(parents=True)
    (out / "1best_recog" / "text").write_text("u1 A B\nu2 C\n")
    stats = {"encoder_seconds": 1.0, "search_seconds": 0.5, "audio_seconds": 10.0, "frames": 100,
             "frames_kept": 40, "joint_evaluations": 160, "label_projections": 40, "num_threads": 1, "batch_size": 8}
    (out / "decode_stats.json").write_text(json.dumps(stats))
    ref = tmp_path / "text"
    ref.write_text("u1 A B\nu2 D\n")
    result = score(ref, out)
    assert result["wer"]["Err"] == pytest.approx(100 / 3, abs=0.01)
    assert result["rtf"] == pytest.approx(0.15)
    assert result["frame_skip_ratio"] == pytest.approx(0.6)
    assert result["label_projection_ratio"] == pytest.approx(0.25)
    table = make_results(exp)
    assert "|decode_dual_valid.wer.best/test|2|3|66.67|33.33|0.0|0.0|33.33|50.0|0.1500|0.1000|60.0 %|25.0 %|" in table


def test_score_names_utterances_without_hypothesis(tmp_path):
    out = tmp_path / "dec"
    (out / "1best_recog").mkdir(parents=True)
    (out / "1best_recog" / "text").write_text("u1 A\n")
    ref = tmp_path / "text"
    ref.write_text("u1 A\nu2 B\n")
    with pytest.raises(ValueError, match="'u2'"):
        score(ref, out)


def test_search_that_counts_no_joint_evaluations_shows_no_label_projection_ratio(tmp_path):
    out = tmp_path / "exp" / "decode_espnet_valid.wer.best" / "test"
    (out / "1best_recog").mkdir(parents=True)
    (out / "1best_recog" / "text").write_text("u1 A\n")
    stats = {"encoder_seconds": 1.0, "search_seconds": 2.0, "audio_seconds": 10.0, "frames": 50,
             "frames_kept": 50, "joint_evaluations": 0, "label_projections": 0}
    (out / "decode_stats.json").write_text(json.dumps(stats))
    (tmp_path / "text").write_text("u1 A\n")
    assert score(tmp_path / "text", out)["label_projection_ratio"] is None
    assert "|0.3000|0.1000|0.0 %|-|" in make_results(tmp_path / "exp")
