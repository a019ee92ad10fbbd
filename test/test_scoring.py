"""Scoring: ESPnet's sclite-style counts, per-utterance counts, RTF and skip ratios, RESULTS.md, system comparison."""

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from espnet_hatiam.bin import compare_systems
from espnet_hatiam.bin import score as score_cli
from espnet_hatiam.bin.make_results import make_results
from espnet_hatiam.scoring.decoding import score_decoding as score
from espnet_hatiam.scoring.error_rate import error_counts, error_rates, utterance_errors
from espnet_hatiam.scoring.layout import parse_exp
from espnet_hatiam.scoring.records import write_record


def _levenshtein(a, b) -> int:
    """Edit distance by the textbook dynamic programme."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def _random_texts(seed: int, n: int = 60):
    rnd = random.Random(seed)
    words = ["A", "AB", "BA", "C", "ABC", "D"]
    text = lambda k: " ".join(rnd.choices(words, k=k))  # noqa: E731
    refs = [text(rnd.randint(0, 6)) for _ in range(n)]  # some empty references
    return refs, [text(rnd.randint(0, 7)) for _ in refs]


@pytest.mark.parametrize("seed", [0, 1])
def test_per_utterance_counts_are_edit_distances(seed):
    refs, hyps = _random_texts(seed)
    for unit, split in (("word", str.split), ("char", lambda s: list(s.replace(" ", "")))):
        errors, lengths = utterance_errors(refs, hyps, unit)
        assert errors.tolist() == [_levenshtein(split(r), split(h)) for r, h in zip(refs, hyps)], unit
        assert lengths.tolist() == [len(split(r)) for r in refs], unit


def test_corpus_rates_are_the_old_edit_distance_definition():
    refs, hyps = _random_texts(2)
    cer, wer = error_rates(hyps, refs)
    old_cer = sum(_levenshtein(h.replace(" ", ""), r.replace(" ", "")) for h, r in zip(hyps, refs))
    old_wer = sum(_levenshtein(h.split(), r.split()) for h, r in zip(hyps, refs))
    assert cer == pytest.approx(old_cer / sum(len(r.replace(" ", "")) for r in refs))
    assert wer == pytest.approx(old_wer / sum(len(r.split()) for r in refs))
    assert 100 * wer == pytest.approx(error_counts(refs, hyps, "word")["Err"], abs=0.005)


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


def test_espnet_ctc_attention_decode_shows_no_frame_skip_ratio(tmp_path, capsys):
    out = tmp_path / "exp" / "decode_espnet_ctc_att_valid.wer.ave" / "test"
    (out / "1best_recog").mkdir(parents=True)
    (out / "1best_recog" / "text").write_text("u1 A\n")
    stats = {"encoder_seconds": 1.0, "search_seconds": 2.0, "audio_seconds": 10.0, "frames": 0,
             "frames_kept": 0, "joint_evaluations": 0, "label_projections": 0}
    (out / "decode_stats.json").write_text(json.dumps(stats))
    (tmp_path / "text").write_text("u1 A\n")
    score_cli.main(["--ref", str(tmp_path / "text"), "--dir", str(out)])
    assert "WER 0.0 % CER 0.0 % RTF 0.3" in capsys.readouterr().out
    result = json.loads((out / "score.json").read_text())
    assert set(result) == {"wer", "cer", "rtf", "encoder_rtf", "frame_skip_ratio", "label_projection_ratio",
                           "decode_stats"}
    assert result["frame_skip_ratio"] is None and result["label_projection_ratio"] is None
    assert "|0.3000|0.1000|-|-|" in make_results(tmp_path / "exp")


def _fake_decoding(exp, mode, hyps, search_seconds, dset="test"):
    out = exp / f"decode_{mode}_valid.wer.ave" / dset
    (out / "1best_recog").mkdir(parents=True)
    (out / "1best_recog" / "text").write_text("".join(f"u{i} {h}\n" for i, h in enumerate(hyps)))
    stats = {"encoder_seconds": 1.0, "search_seconds": search_seconds, "audio_seconds": 10.0, "frames": 100,
             "frames_kept": 50, "joint_evaluations": 100, "label_projections": 25}
    if mode.startswith("espnet"):
        stats.update(frames=0, frames_kept=0, joint_evaluations=0, label_projections=0)
    (out / "decode_stats.json").write_text(json.dumps(stats))


def _records(exps, ref_dir, root):
    """The decode records of the experiment dirs whose names parse, as stage 13 writes them (paths as strings)."""
    out = []
    for exp in sorted(exps):
        if parse_exp(exp) is not None:
            write_record(exp, ref_dir, root / exp.name)
            out.append(str(root / exp.name))
    return out


def test_compare_systems_tables_significance_and_plot(tmp_path):
    ref_dir = tmp_path / "dump" / "raw"
    (ref_dir / "test").mkdir(parents=True)
    (ref_dir / "test" / "text").write_text("".join(f"u{i} A B\n" for i in range(10)))  # 20 words
    exp = tmp_path / "exp"
    (exp / "asr_stats_raw_bpe30").mkdir(parents=True)
    for seed in (1, 2, 3):
        iam = exp / f"asr_train_hat_iam_bpe30_seed{seed}"  # WER 10 * seed: 2 * seed deletions
        for mode, seconds in (("beam", 3.0), ("greedy", 0.5), ("dual_0.9", 1.0), ("dual_0.95", 1.5)):
            _fake_decoding(iam, mode, ["A"] * (2 * seed) + ["A B"] * (10 - 2 * seed), seconds)
        _fake_decoding(exp / f"asr_train_hat_bpe30_seed{seed}", "beam", ["A X"] * 10, 3.0)  # WER 50
    _fake_decoding(exp / "asr_train_espnet_ctc_att_bpe30_seed1", "espnet_ctc_att", ["A B"] * 10, 2.0)
    for d in exp.glob("asr_train_*/decode_*/test"):
        score(ref_dir / "test" / "text", d)
    out = tmp_path / "report" / "COMPARE.md"
    plot = tmp_path / "report" / "images" / "speed.png"
    compare_systems.main([
        "--records", *_records(exp.glob("asr_*"), ref_dir, tmp_path / "results"), "--sets", "test",
        "--pairs", "train_hat_iam:train_hat train_hat_iam:train_espnet_ctc_att "
                   "train_hat_iam@dual_0.9:train_hat_iam@beam",
        "--num_samples", "500", "--plot", str(plot), "--plot_system", "train_hat_iam", "--out", str(out),
    ])
    text = out.read_text()
    # (a) means over the seeds; ESPnet's search counts no frames
    assert "|train_hat_iam|beam|test|3|20.00|" in text and "|train_hat_iam|dual_0.9|test|3|20.00|" in text
    assert "|train_hat|beam|test|3|50.00|" in text and "stats_raw" not in text
    assert "|train_espnet_ctc_att|espnet_ctc_att|test|1|0.00|0.00|0.00/0.00/0.00|0.3000|2.00|-|-|" in text
    assert re.search(r"\|train_hat_iam\|greedy\|test\|3\|20\.00\|[^\n]*\|0\.1500\|0\.50\|50\.0 %\|25\.0 %\|\n", text)
    # (b) seed table: sample std over seeds; the ESPnet system with its only mode
    assert "|train_hat_iam|beam|test|10.00|20.00|30.00|20.00 ± 10.00|" in text
    assert "|train_hat|beam|test|50.00|50.00|50.00|50.00 ± 0.00|" in text
    assert "|train_espnet_ctc_att|espnet_ctc_att|test|0.00|-|-|0.00|" in text
    # (c) per shared seed, and all seeds together
    for seed, wer in (("1", "10.00"), ("2", "20.00"), ("3", "30.00"), ("all 3", "20.00")):
        assert f"|train_hat_iam@beam|train_hat@beam|test|{seed}|{wer}|50.00|" in text
    assert "|train_hat_iam@beam|train_hat@beam|test|all 3|20.00|50.00|-30.00|" in text
    assert "|train_hat_iam@beam|train_espnet_ctc_att@espnet_ctc_att|test|1|10.00|0.00|+10.00|" in text
    assert "|train_hat_iam@beam|train_espnet_ctc_att@espnet_ctc_att|test|all" not in text  # one shared seed
    assert "|train_hat_iam@dual_0.9|train_hat_iam@beam|test|all 3|20.00|20.00|+0.00|[+0.00, +0.00]|1.0000|" in text
    # (d) the figure, linked relative to the markdown
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(images/speed.png)" in text


def test_the_dual_operating_point_is_the_lowest_threshold_within_two_percent_on_the_tuning_set(tmp_path):
    for dset in ("dev", "test"):
        (tmp_path / dset).mkdir()
        (tmp_path / dset / "text").write_text("".join(f"u{i} A B\n" for i in range(10)))  # 20 words
    right, one_deletion, two_deletions = ["A B"] * 10, ["A"] + ["A B"] * 9, ["A"] * 2 + ["A B"] * 8
    dev_test = {  # mode: (dev hypotheses, test hypotheses, search seconds)
        "beam": (one_deletion, one_deletion, 3.0),
        "dual_0.6": (two_deletions, right, 0.5),  # 10 % on dev against 5 %: outside 2 %
        "dual_0.8": (one_deletion, two_deletions, 1.0),  # the same 5 % on dev: chosen
        "dual_0.95": (right, right, 2.0),
    }
    exps = [tmp_path / f"asr_hat_iam_char_seed{seed}" for seed in (1, 2)] + [tmp_path / "asr_hat_char_seed1"]
    for exp in exps:
        for mode, (dev, test, seconds) in dev_test.items():
            if exp.name.startswith("asr_hat_char") and mode != "beam":
                dev = test = two_deletions  # every point of this system is worse on dev
            _fake_decoding(exp, mode, dev, seconds, "dev")
            _fake_decoding(exp, mode, test, seconds, "test")
    for d in tmp_path.glob("asr_*/decode_*/*"):
        score(tmp_path / d.name / "text", d)
    out = tmp_path / "c.md"
    compare_systems.main(["--records", *_records(exps, tmp_path, tmp_path / "results"), "--sets", "dev test",
                          "--tune_set", "dev", "--out", str(out)])
    text = out.read_text()
    assert "|hat_iam|0.8|2|dev|5.00|5.00|+0.0 %|50.0 %|3.00 -> 1.00|" in text
    assert "|hat_iam|0.8|2|test|5.00|10.00|+100.0 %|50.0 %|3.00 -> 1.00|" in text
    assert "|hat|none within 2 %|1|dev|5.00|-|-|-|-|" in text


def test_compare_systems_pairs_lowest_seeds_without_a_shared_one_and_names_missing_modes(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("u0 A\n")
    exps = [tmp_path / "asr_one_char_seed1", tmp_path / "asr_two_char_seed2", tmp_path / "asr_two_char_seed3"]
    for exp in exps:
        _fake_decoding(exp, "greedy", ["A"], 1.0)
        _fake_decoding(exp, "hat", ["B"], 1.0)
    for d in tmp_path.glob("asr_*/decode_*/test"):
        score(tmp_path / "test" / "text", d)
    cmd = ["--records", *_records(exps, tmp_path, tmp_path / "results"), "--sets", "test", "--num_samples", "100",
           "--out", str(tmp_path / "c.md")]
    compare_systems.main(cmd + ["--main_mode", "greedy", "--pairs", "one:two@hat"])
    assert "|one@greedy|two@hat|test|1 / 2|0.00|100.00|-100.00|" in (tmp_path / "c.md").read_text()
    with pytest.raises(SystemExit, match="system 'two' has no mode 'beam'; it has"):
        compare_systems.main(cmd + ["--main_mode", "greedy", "--pairs", "one:two@beam"])
    with pytest.raises(SystemExit, match="system 'one' has no mode 'beam'; name one of"):
        compare_systems.main(cmd)


def test_a_systems_main_mode_is_its_only_mode_on_every_set_or_the_one_its_pairs_name_or_each_they_name(tmp_path):
    from espnet_hatiam.scoring.compare import collect, main_mode, seed_table

    for dset in ("dev", "test"):
        (tmp_path / dset).mkdir()
        (tmp_path / dset / "text").write_text("u0 A\n")
    exp = tmp_path / "asr_espnet_char_seed1"
    _fake_decoding(exp, "ctc_att", ["A"], 1.0, "dev")
    _fake_decoding(exp, "ctc_att", ["A"], 1.0, "test")
    _fake_decoding(exp, "ctc_att_weight_0.5", ["B"], 1.0, "dev")  # the weight sweep, on dev only
    for d in exp.glob("decode_*/*"):
        score(tmp_path / d.name / "text", d)
    decodings = collect([Path(r) for r in _records([exp], tmp_path, tmp_path / "results")], ["dev", "test"], "valid.wer.ave")
    assert main_mode(decodings, "espnet", "beam") == "ctc_att"
    _fake_decoding(exp, "ctc_att_weight_0.5", ["B"], 1.0, "test")  # now two complete modes: name one
    score(tmp_path / "test" / "text", exp / "decode_ctc_att_weight_0.5_valid.wer.ave" / "test")
    decodings = collect([Path(r) for r in _records([exp], tmp_path, tmp_path / "results2")], ["dev", "test"], "valid.wer.ave")
    with pytest.raises(ValueError, match="system 'espnet' has no mode 'beam'; name one of"):
        main_mode(decodings, "espnet", "beam")
    assert main_mode(decodings, "espnet", "beam", named=["ctc_att_weight_0.5"]) == "ctc_att_weight_0.5"  # a pair's
    # pairs that name both: the seed table shows a row for each, in the pairs' order
    rows = seed_table(decodings, ["test"], "beam", ["espnet@ctc_att_weight_0.5:espnet@ctc_att"]).splitlines()[2:]
    assert [row.split("|")[1:4] for row in rows] == [["espnet", "ctc_att_weight_0.5", "test"], ["espnet", "ctc_att", "test"]]


def test_comparison_header_describes_the_sets_and_each_systems_setup_from_its_config(tmp_path):
    from espnet_hatiam.scoring.setup import describe_systems, set_sizes

    for dset, utterances, seconds in (("dev", 2, 7200.0), ("test", 1089, 7344.0)):
        stats = tmp_path / "sizes" / "asr_a_char_seed1" / "decode_beam_valid.wer.ave" / dset
        stats.mkdir(parents=True)
        (stats / "score.json").write_text(json.dumps({"decode_stats": {"utterances": utterances,
                                                                       "audio_seconds": seconds}}))
    assert set_sizes([tmp_path / "sizes" / "asr_a_char_seed1"], ["dev", "test", "test", "absent"]) == (
        "dev (2 utterances, 2.00 h) / test (1,089 utterances, 2.04 h)")
    base = {"encoder": "conformer", "encoder_conf": {"num_blocks": 4, "output_size": 144}, "max_epoch": 26,
            "keep_nbest_models": 5, "specaug": None, "init_param": []}
    configs = {
        "asr_train_hat_iam_bpe30_seed1": {**base, "joint_type": "hat", "model_conf": {"iam_weight": 0.3}},
        "asr_train_hat_iam_bpe30_seed2": {**base, "joint_type": "hat", "model_conf": {"iam_weight": 0.3}},
        "asr_train_hat_iam_bpe30_seed3": {**base, "joint_type": "hat", "model_conf": {"iam_weight": 0.3},
                                          "specaug": "specaug"},
        "asr_train_rnnt_bpe30_seed1": {**base, "joint_type": "rnnt", "init_param": ["x.pth:encoder:encoder"]},
        "asr_train_espnet_ctc_att_bpe30_seed1": {**base, "model": "espnet", "decoder": "transformer",
                                                 "encoder_conf": {**base["encoder_conf"], "input_layer": "conv2d8"},
                                                 "decoder_conf": {"num_blocks": 3}, "model_conf": {"ctc_weight": 0.3}},
    }
    for name, config in configs.items():
        (tmp_path / name / "decode_beam_valid.wer.ave" / "test").mkdir(parents=True)
        (tmp_path / name / "decode_beam_valid.wer.ave" / "test" / "score.json").write_text("{}")
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(config))
    training = tmp_path / "asr_train_hat_bpe30_seed1"  # still training: not decoded, not described
    training.mkdir()
    (training / "config.yaml").write_text(yaml.safe_dump(base))
    lines = describe_systems(sorted(tmp_path.glob("asr_*")) + [tmp_path / "train"])
    common = "26 epochs, {}, {}, 5 best averaged"
    assert lines == [
        "train_espnet_ctc_att (seed 1): conformer 4 x 144 (conv2d8 subsampling), transformer decoder 3 blocks, "
        "ctc_weight 0.3, "
        + common.format("no SpecAugment", "random init"),
        "train_hat_iam (seeds 1, 2): conformer 4 x 144, hat joint, iam_weight 0.3, "
        + common.format("no SpecAugment", "random init"),
        "train_hat_iam (seed 3): conformer 4 x 144, hat joint, iam_weight 0.3, "
        + common.format("SpecAugment", "random init"),
        "train_rnnt (seed 1): conformer 4 x 144, rnnt joint, "
        + common.format("no SpecAugment", "init x.pth:encoder:encoder"),
    ]


def test_a_record_holds_each_utterances_errors_counters_config_curve_and_commit(tmp_path):
    from espnet_hatiam.scoring.records import read_errors, read_record

    refs = ["A B C", "A B", "C"]
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("".join(f"u{i} {r}\n" for i, r in enumerate(refs)))
    exp = tmp_path / "exp" / "asr_hat_iam_char_seed7"
    hyps = ["A C", "A B D", ""]
    _fake_decoding(exp, "beam", hyps, 1.0)
    (exp / "decode_beam_valid.wer.ave" / "test" / "utt_stats.jsonl").write_text(
        "".join(json.dumps({"utt": f"u{i}", "frames": 10 + i, "frames_kept": 5}) + "\n" for i in range(3)))
    score(tmp_path / "test" / "text", exp / "decode_beam_valid.wer.ave" / "test")
    (exp / "config.yaml").write_text(yaml.safe_dump({"max_epoch": 2}))
    (exp / "train.log").write_text("x INFO: 1epoch results: [train] loss=9.0 [valid] loss=8.0, wer=0.9\n"
                                   "x INFO: 2epoch results: [train] loss=7.0 [valid] loss=6.0, wer=0.5\n")
    record = tmp_path / "results" / exp.name
    assert write_record(exp, tmp_path, record) == 1
    keys, errors, lengths = read_errors(record / "decode_beam_valid.wer.ave" / "test")
    expected_errors, expected_lengths = utterance_errors(refs, hyps, "word")
    assert keys == ["u0", "u1", "u2"]
    assert errors.tolist() == expected_errors.tolist() and lengths.tolist() == expected_lengths.tolist()
    rows = [json.loads(line) for line in (record / "decode_beam_valid.wer.ave" / "test" / "utterances.jsonl")
            .read_text().splitlines()]
    assert [r["hyp"] for r in rows] == hyps and [r["frames"] for r in rows] == [10, 11, 12]
    assert yaml.safe_load((record / "config.yaml").read_text()) == {"max_epoch": 2}
    assert [c["valid_wer"] for c in json.loads((record / "learning_curve.json").read_text())] == [0.9, 0.5]
    info = read_record(record)
    assert info["experiment"] == exp.name and len(info["commit"]) >= 7 and re.fullmatch(r"\S+, \d+ of \d+ CPU cores", info["machine"])
    assert not (record / "decode_beam_valid.wer.ave" / "test" / "1best_recog").exists()  # no copy of the text


def _recorded_run(tmp_path, system, seed, hyps, commit):
    """A fake experiment's record, as if made by git ``commit`` (references: tmp_path/test/text)."""
    exp = tmp_path / "exp" / f"asr_{system}_char_seed{seed}"
    _fake_decoding(exp, "beam", hyps, 1.0)
    score(tmp_path / "test" / "text", exp / "decode_beam_valid.wer.ave" / "test")
    record = tmp_path / "results" / exp.name
    write_record(exp, tmp_path, record)
    info = json.loads((record / "record.json").read_text())
    (record / "record.json").write_text(json.dumps({**info, "commit": commit, "dirty": False}))
    return record


def test_records_of_two_runs_on_different_commits_compare_and_the_other_code_is_flagged(tmp_path):
    from espnet_hatiam.scoring.records import provenance

    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("".join(f"u{i} A B\n" for i in range(10)))
    current = str(provenance()["commit"])
    a = _recorded_run(tmp_path, "hat_iam", 1, ["A B"] * 10, current)
    b = _recorded_run(tmp_path, "hat", 1, ["A"] * 10, "0123456789ab")
    shutil.rmtree(tmp_path / "exp")  # the models and their decode dirs are gone: the records are enough
    out = tmp_path / "c.md"
    compare_systems.main(["--records", str(a), str(b), "--sets", "test", "--main_mode", "beam",
                          "--pairs", "hat_iam:hat", "--num_samples", "200", "--out", str(out)])
    text = out.read_text()
    assert "|hat_iam@beam|hat@beam|test|1|0.00|50.00|-50.00|" in text
    assert f"|hat_iam|1|{current}|" in text and "|hat|1|**0123456789ab: other code**|" in text


def test_criteria_read_a_system_from_the_checkpoints_its_rule_names_and_nothing_else(tmp_path, capsys):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("".join(f"u{i} A B\n" for i in range(10)))
    hat = _recorded_run(tmp_path, "hat_iam", 1, ["A B"] * 10, "0123456789ab")
    exp = tmp_path / "exp" / "asr_espnet_ctc_att_char_seed1"
    _fake_decoding(exp, "beam", [""] * 10, 1.0)  # valid.wer.ave: the first epochs (tied "wer" 1.000)
    by_loss = exp / "decode_beam_valid.loss.ave" / "test"
    by_loss.parent.mkdir()
    shutil.copytree(exp / "decode_beam_valid.wer.ave" / "test", by_loss)
    (by_loss / "1best_recog" / "text").write_text("".join(f"u{i} A\n" for i in range(10)))  # the trained model
    for d in exp.glob("decode_*/test"):
        score(tmp_path / "test" / "text", d)
    espnet = tmp_path / "results" / exp.name
    write_record(exp, tmp_path, espnet)
    out = tmp_path / "c.md"
    compare_systems.main(["--records", str(hat), str(espnet), "--sets", "test", "--main_mode", "beam",
                          "--criteria", "espnet_*=valid.loss", "--pairs", "hat_iam:espnet_ctc_att",
                          "--num_samples", "200", "--out", str(out)])
    text = out.read_text()
    assert "|hat_iam@beam|espnet_ctc_att@beam|test|1|0.00|50.00|-50.00|" in text  # 50 % (loss), not 100 % (wer)
    assert "validation WER; espnet_*: `valid.loss.ave`" in text
    with pytest.raises(SystemExit) as refused:  # a rule without "=": refused by the parser (exit 2), named
        compare_systems.main(["--records", str(hat), "--sets", "test", "--criteria", "espnet_*", "--out", str(out)])
    assert refused.value.code == 2 and "--criteria: each rule is <system glob>=<criterion>" in capsys.readouterr().err


def test_a_missing_record_is_named(tmp_path):
    missing = tmp_path / "results" / "asr_hat_char_seed1"
    with pytest.raises(SystemExit, match=f"{missing}: no record.json"):
        compare_systems.main(["--records", str(missing), "--sets", "test", "--out", str(tmp_path / "c.md")])


def test_records_scored_on_other_references_are_not_paired(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("u0 A B\nu1 A\n")
    a = _recorded_run(tmp_path, "one", 1, ["A B", "A"], "x")
    (tmp_path / "test" / "text").write_text("u0 A B\nu1 B\n")  # the same utterances, another reference
    b = _recorded_run(tmp_path, "two", 1, ["A B", "A"], "x")
    with pytest.raises(SystemExit, match="scored on different utterances or references"):
        compare_systems.main(["--records", str(a), str(b), "--sets", "test", "--main_mode", "beam",
                              "--pairs", "one:two", "--num_samples", "10", "--out", str(tmp_path / "c.md")])


def test_the_speed_accuracy_figure_plots_the_comparison_tables_points_with_its_pareto_front(tmp_path):
    from espnet_hatiam.scoring.compare import collect, plot_speed_accuracy, results_table

    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("".join(f"u{i} A B\n" for i in range(10)))
    exp = tmp_path / "exp" / "asr_hat_iam_char_seed1"
    modes = {"beam": (["A B"] * 10, 3.0), "greedy": (["A"] * 3 + ["A B"] * 7, 0.5),  # greedy: fast, 15 %
             "espnet_maes": (["A"] * 1 + ["A B"] * 9, 30.0),  # slower and worse than beam: off the front
             "dual_0.6": (["A"] * 2 + ["A B"] * 8, 0.8), "dual_0.95": (["A B"] * 10, 1.5)}
    for mode, (hyps, seconds) in modes.items():
        _fake_decoding(exp, mode, hyps, seconds)
    for d in exp.glob("decode_*/test"):
        score(tmp_path / "test" / "text", d)
    decodings = collect([Path(r) for r in _records([exp], tmp_path, tmp_path / "results")], ["test"], "valid.wer.ave")
    drawn = plot_speed_accuracy(decodings, "hat_iam", "test", tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = results_table(decodings)
    for mode, (seconds, wer) in drawn["points"].items():  # every point is its table row's (search s, WER)
        row = next(line for line in table.splitlines() if line.startswith(f"|hat_iam|{mode}|test|"))
        cells = row.split("|")
        assert (float(cells[5]), float(cells[9])) == (pytest.approx(wer), pytest.approx(seconds))
    assert set(drawn["points"]) == set(modes)
    assert drawn["families"] == ["beam", "dual", "espnet_maes", "greedy"]  # one colour each, the sweep one line
    assert drawn["pareto"] == ["greedy", "dual_0.6", "dual_0.95"]  # fastest first; beam is as right but slower


def test_a_record_of_an_older_commit_with_the_same_package_code_is_not_flagged_as_other_code(tmp_path):
    from espnet_hatiam.scoring.records import provenance_table, same_code

    repo = tmp_path / "repo"
    (repo / "espnet_hatiam").mkdir(parents=True)

    def commit(path: str, text: str) -> str:
        (repo / path).write_text(text)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", path], check=True)
        return subprocess.run(git + ["rev-parse", "--short=12", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "espnet_hatiam" / "scoring").mkdir()
    (repo / "egs" / "an4" / "asr1").mkdir(parents=True)
    code = commit("espnet_hatiam/search.py", "v1")
    docs_only = commit("README.md", "results")
    scoring_only = commit("espnet_hatiam/scoring/wer.py", "reads the records")
    (repo / "espnet_hatiam" / "bin").mkdir()
    comparison_only = commit("espnet_hatiam/bin/compare_systems.py", "compares the records")
    decoder_cli = commit("espnet_hatiam/bin/hat_asr_inference.py", "writes the hypotheses")
    recipe_script = commit("egs/an4/asr1/run.sh", "stages \\\n    --pairs \"a:b\" \\\n    --title \"an4\"\n")
    new_pair = commit("egs/an4/asr1/run.sh", "stages \\\n    --pairs \"a:b a:c\" \\\n    --title \"an4: a, b, c\"\n")
    stage_lines = "stages v2 \\\n    --pairs \"a:b a:c\" \\\n    --title \"an4: a, b, c\"\n"
    new_stage = commit("egs/an4/asr1/run.sh", stage_lines)
    commented = commit("egs/an4/asr1/run.sh", "# what it runs\n" + stage_lines)
    interpreter = commit("egs/an4/asr1/run.sh", "#!/bin/bash\n# what it runs\n" + stage_lines)
    changed = commit("espnet_hatiam/search.py", "v2")
    assert same_code(code, docs_only, repo) is True
    assert same_code(code, scoring_only, repo) is True  # the scoring reads records, it does not make them
    assert same_code(scoring_only, comparison_only, repo) is True  # nor does the comparison's command
    assert same_code(comparison_only, decoder_cli, repo) is False  # another command of the package makes them
    assert same_code(decoder_cli, recipe_script, repo) is True
    assert same_code(decoder_cli, recipe_script, repo, "egs/an4/asr1") is False
    assert same_code(recipe_script, new_pair, repo, "egs/an4/asr1") is True  # pairs and title compare, not decode
    assert same_code(new_pair, new_stage, repo, "egs/an4/asr1") is False
    assert same_code(new_stage, commented, repo, "egs/an4/asr1") is True  # a comment is not run
    assert same_code(commented, interpreter, repo, "egs/an4/asr1") is False  # a #! line is
    assert same_code(code, changed, repo) is False
    assert same_code("0123456789ab", changed, repo) is None  # not in the history: cannot be told
    assert same_code("--output=x", changed, repo) is None  # not a commit id: never handed to git

    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "text").write_text("".join(f"u{i} A B\n" for i in range(4)))
    old = _recorded_run(tmp_path, "hat_iam", 1, ["A B"] * 4, code)
    table = provenance_table([old], docs_only, repo)
    assert f"|hat_iam|1|{code} (same code as {docs_only})|" in table
    assert f"**{code}: other code**" in provenance_table([old], changed, repo)
    info = json.loads((old / "record.json").read_text())
    (old / "record.json").write_text(json.dumps({**info, "dirty": True}))  # ran code that was not the commit's
    assert f"**{code} (modified tree): other code**" in provenance_table([old], docs_only, repo)
