"""The shared stage script: every stage writes its outputs, re-runs change nothing, bad input is named."""

import hashlib
import json
import subprocess
from pathlib import Path

from conftest import REPO, make_mini_recipe, run_recipe

EXP = "exp/asr_tiny_char"


def test_every_stage_writes_its_outputs(mini_recipe):
    r = mini_recipe
    for dset in ("train", "dev", "test"):
        assert (r / "data" / dset / "wav.scp").exists()  # stage 1
        for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2num_samples"):  # stages 3-4
            assert (r / "dump/raw" / dset / name).stat().st_size > 0
    tokens = (r / "data/token_list/char/tokens.txt").read_text().split("\n")  # stage 5
    assert tokens[0] == "<blank>" and tokens[1] == "<unk>" and "<sos/eos>" in tokens
    assert (r / "exp/asr_stats_raw_char/train/feats_stats.npz").exists()  # stage 10
    for name in ("config.yaml", "checkpoint.pth", "5epoch.pth", "valid.wer.best.pth", "train.log"):  # stage 11
        assert (r / EXP / name).exists(), name
    for decode in ("decode_greedy_valid.wer.best", "decode_dual_valid.wer.best"):  # stage 12
        out = r / EXP / decode / "test"
        assert len((out / "1best_recog/text").read_text().splitlines()) == 9
        stats = json.loads((out / "decode_stats.json").read_text())
        assert stats["utterances"] == 9 and stats["jobs"] == 2
        assert json.loads((out / "score.json").read_text())["wer"]["Snt"] == 9  # stage 13
    results = (r / "RESULTS.md").read_text()
    assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|RTF|" in results
    assert "decode_dual_valid.wer.best/test" in results
    assert (r / EXP / "model.zip").stat().st_size > 0  # stage 14


def _digest(root: Path, patterns) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for pattern in patterns
        for p in sorted(root.glob(pattern))
        if p.is_file()
    }


def test_rerunning_finished_stages_changes_nothing(mini_recipe):
    watched = ["data/*/*", "dump/raw/*/*", "data/token_list/char/*", f"{EXP}/decode_*/test/*", f"{EXP}/decode_*/test/1best_recog/*", "RESULTS.md"]
    before = _digest(mini_recipe, watched)
    result = run_recipe(mini_recipe, "--stage", "1", "--stop_stage", "13")
    assert "is done; remove it to decode again" in result.stdout
    assert _digest(mini_recipe, watched) == before


def test_unknown_option_is_named(tmp_path):
    recipe = make_mini_recipe(tmp_path)
    result = run_recipe(recipe, "--num_epochs", "3", check=False)
    assert result.returncode != 0
    assert "unknown option '--num_epochs'" in result.stderr


def test_stage_run_before_its_inputs_exist_says_which_stage_is_missing(tmp_path):
    recipe = make_mini_recipe(tmp_path)
    result = run_recipe(recipe, "--stage", "11", "--stop_stage", "11", check=False)
    assert result.returncode != 0
    assert "run stage 10 first" in result.stderr


def test_missing_corpus_path_is_named(tmp_path):
    recipe_dir = REPO / "egs" / "speechocean762" / "asr1"
    missing = tmp_path / "no_such_corpus"
    result = subprocess.run(
        ["local/data.sh"], cwd=recipe_dir, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SPEECHOCEAN762": str(missing)},
    )
    assert result.returncode != 0
    assert str(missing) in result.stderr


def _speechocean_copy_with_a_stub_synth_recipe(root: Path) -> Path:
    """egs/speechocean762/asr1 beside an egs/synth_en/asr1 whose run.sh only leaves a mark."""
    egs = root / "egs"
    recipe = egs / "speechocean762" / "asr1"
    recipe.mkdir(parents=True)
    (egs / "TEMPLATE").symlink_to(REPO / "egs" / "TEMPLATE")
    (root / "conf").symlink_to(REPO / "conf")  # the recipe's conf/ links point there
    source = REPO / "egs" / "speechocean762" / "asr1"
    for name in ("run.sh", "local", "conf", "cmd.sh", "db.sh", "hat_asr.sh", "path.sh", "scripts"):
        subprocess.run(["cp", "-a", str(source / name), str(recipe)], check=True)
    synth = egs / "synth_en" / "asr1"
    synth.mkdir(parents=True)
    (synth / "run.sh").write_text("#!/usr/bin/env bash\ntouch synth_trained\nexit 1\n")
    (synth / "run.sh").chmod(0o755)
    return recipe


def test_speechocean_trains_the_synthetic_encoder_only_when_stage_11_needs_it(tmp_path):
    recipe = _speechocean_copy_with_a_stub_synth_recipe(tmp_path)
    mark = tmp_path / "egs" / "synth_en" / "asr1" / "synth_trained"

    def run(*options):
        return subprocess.run(["./run.sh", *options], cwd=recipe, capture_output=True, text=True, timeout=120)

    result = run("--help")
    assert result.returncode == 0 and "--asr_config" in result.stdout
    run("--stage", "12", "--stop_stage", "13")
    assert not mark.exists()
    assert run("--stage", "11", "--stop_stage", "11").returncode != 0
    assert mark.exists()
