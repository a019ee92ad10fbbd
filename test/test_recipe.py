"""The shared stage script: every stage writes its outputs, re-runs change nothing, bad input is named."""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from espnet_hatiam.scoring.compare import collect, main_mode, parse_criteria, parse_pair

from conftest import MINI_OPTIONS, REPO, make_mini_recipe, run_recipe

EXP = "exp/asr_tiny_char"
SHARED_CONF = REPO / "egs" / "TEMPLATE" / "asr1" / "conf"
RECIPES = sorted(path.parent for path in (REPO / "egs").glob("*/asr1/conf") if path.parent.parent.name != "TEMPLATE")


def test_decode_configs_link_to_the_shared_ones_unless_the_readme_says_why():
    """A recipe's conf/decode_*.yaml is a relative link into egs/TEMPLATE/asr1/conf, or its own copy
    that differs from the shared file of its name and that its README names."""
    assert RECIPES, "no recipe found under egs/"
    for recipe in RECIPES:
        readme = (recipe / "README.md").read_text()
        for config in sorted((recipe / "conf").glob("decode_*.yaml")):
            if config.is_symlink():
                target = os.readlink(config)
                assert not os.path.isabs(target), f"{config}: absolute link {target}"
                assert config.resolve().parent == SHARED_CONF.resolve() and config.resolve().is_file(), config
            else:
                shared = SHARED_CONF / config.name
                assert not shared.exists() or shared.read_bytes() != config.read_bytes(), f"{config} copies {shared}"
                assert f"conf/{config.name}" in readme, f"{config}: its own copy; {recipe}/README.md must say why"


def test_a_longer_budget_config_differs_from_its_base_only_in_max_epoch():
    """conf/<base>_<N>ep.yaml, the same system at another epoch budget (the READMEs' "everything else the same"), is
    its base config with max_epoch N and nothing else changed."""
    longer = sorted(path for recipe in RECIPES for path in (recipe / "conf").glob("train_*_*ep.yaml")
                    if re.search(r"_\d+ep\.yaml$", path.name))
    assert longer, "no longer-budget config found"
    for config in longer:
        base = config.with_name(re.sub(r"_\d+ep\.yaml$", ".yaml", config.name))
        assert base.is_file(), f"{config}: no base config {base.name}"
        mine, theirs = yaml.safe_load(config.read_text()), yaml.safe_load(base.read_text())
        epochs = int(re.search(r"_(\d+)ep\.yaml$", config.name).group(1))
        assert mine.pop("max_epoch") == epochs, f"{config}: max_epoch is not {epochs}"
        theirs.pop("max_epoch")
        differing = sorted(key for key in set(mine) | set(theirs) if mine.get(key) != theirs.get(key))
        assert not differing, f"{config}: differs from {base.name} in {differing}"


def _driver_options(run_sh: Path) -> dict:
    """The ``--option value`` pairs a recipe's run.sh passes to scripts/run_systems.sh."""
    text = run_sh.read_text().replace("\\\n", " ")
    command = next(line for line in text.splitlines() if line.startswith("exec scripts/run_systems.sh"))
    words = shlex.split(command)[2:]
    return {words[i][2:]: words[i + 1] for i in range(0, len(words) - 1, 2) if words[i].startswith("--")}


def test_every_pair_a_recipe_compares_names_decodings_its_committed_records_hold():
    """``./run.sh --compare only`` on a fresh clone reads only results/: each side of each pair of a recorded system
    has its (named or main) mode there, on the first checkpoint tag, so the committed comparison can be remade."""
    checked, missing = 0, []
    for recipe in RECIPES:
        if "exec scripts/run_systems.sh" not in (recipe / "run.sh").read_text() or not (recipe / "results").is_dir():
            continue
        options = _driver_options(recipe / "run.sh")
        records = sorted((recipe / "results").glob(f"asr_*_bpe{options['nbpe']}_seed*"))
        decodings = collect(records, options["test_sets"].split(), "valid.wer.ave",
                            parse_criteria(options.get("criteria", "")))
        recorded = {d.system for d in decodings}
        for pair in options["pairs"].split():
            sides = parse_pair(pair)
            if all(system in recorded for system, _ in sides):  # the driver leaves out pairs of unrecorded systems
                for system, mode in sides:
                    try:
                        main_mode(decodings, system, options.get("main_mode", "beam_sym4"), mode)
                    except ValueError as e:
                        missing.append(f"{recipe.parent.name} pair {pair}: {e}")
                checked += 1
    assert checked, "no recipe pair with committed records"
    assert not missing, "\n".join(missing)


def test_every_stage_writes_its_outputs(mini_recipe):
    r = mini_recipe
    for dset in ("train", "dev", "test"):
        assert (r / "data" / dset / "wav.scp").exists()  # stage 1
        for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2num_samples"):  # stages 3-4
            assert (r / "dump/raw" / dset / name).stat().st_size > 0
    tokens = (r / "data/token_list/char/tokens.txt").read_text().split("\n")  # stage 5
    assert tokens[0] == "<blank>" and tokens[1] == "<unk>" and "<sos/eos>" in tokens
    assert (r / "exp/asr_stats_raw_char/train/feats_stats.npz").exists()  # stage 10
    for name in ("config.yaml", "checkpoint.pth", "valid.wer.best.pth", "valid.wer.ave.pth", "train.log"):  # stage 11
        assert (r / EXP / name).exists(), name
    for decode in ("decode_greedy_valid.wer.ave", "decode_dual_valid.wer.ave"):  # stage 12: the averaged model
        out = r / EXP / decode / "test"
        assert len((out / "1best_recog/text").read_text().splitlines()) == 9
        stats = json.loads((out / "decode_stats.json").read_text())
        assert stats["utterances"] == 9 and stats["jobs"] == 2
        assert json.loads((out / "score.json").read_text())["wer"]["Snt"] == 9  # stage 13
        utt_stats = [json.loads(line) for line in (out / "utt_stats.jsonl").read_text().splitlines()]
        if decode.startswith("decode_greedy"):  # thresholds off: the search counts the blank agreement
            assert 0 <= stats["blank_agreement"] <= stats["frames"]
            assert sum(u["blank_agreement"] for u in utt_stats) == stats["blank_agreement"]
        else:
            assert "blank_agreement" not in stats and "blank_agreement" not in utt_stats[0]
    synchrony = json.loads((r / EXP / "images/blank_synchrony.json").read_text())  # stage 13, from the greedy decode
    assert synchrony["decode_dir"] == "decode_greedy_valid.wer.ave/test" and synchrony["utterances"] == 9
    for image in ("speed_accuracy.png", "blank_synchrony.png"):
        assert (r / EXP / "images" / image).stat().st_size > 0
    results = (r / EXP / "RESULTS.md").read_text()
    assert "Blank synchrony (IAM and HAT greedy path agree on blank vs label)" in results
    assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|RTF|" in results
    assert "decode_dual_valid.wer.ave/test" in results
    assert not (r / "RESULTS.md").exists(), "the tracked RESULTS.md changes only with --update_results true"
    record = r / "results" / Path(EXP).name  # stage 13: the decode record, small files only
    assert json.loads((record / "record.json").read_text())["experiment"] == Path(EXP).name
    assert len((record / "decode_dual_valid.wer.ave/test/utterances.jsonl").read_text().splitlines()) == 9
    assert not list(record.rglob("*.pth")) and not list(record.rglob("*.wav"))
    assert (r / EXP / "model.zip").stat().st_size > 0  # stage 14
    assert "|dataset|Snt|" in (r / EXP / "hf_model/README.md").read_text()  # stage 15 (test_packing.py)


def _digest(root: Path, patterns) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for pattern in patterns
        for p in sorted(root.glob(pattern))
        if p.is_file()
    }


def test_rerunning_finished_stages_changes_nothing(mini_recipe):
    watched = ["data/*/*", "dump/raw/*/*", "data/token_list/char/*", "exp/asr_stats_raw_char/*/*",
               f"{EXP}/checkpoint.pth", f"{EXP}/*epoch.pth",  # a finished training resumes to no new epoch
               f"{EXP}/decode_*/test/*", f"{EXP}/decode_*/test/1best_recog/*", f"{EXP}/RESULTS.md"]
    before = _digest(mini_recipe, watched)
    result = run_recipe(mini_recipe, "--stage", "1", "--stop_stage", "13")
    assert "is done; remove it to decode again" in result.stdout
    assert _digest(mini_recipe, watched) == before


def test_unknown_option_is_named(tmp_path):
    recipe = make_mini_recipe(tmp_path)
    result = run_recipe(recipe, "--num_epochs", "3", check=False)
    assert result.returncode != 0
    assert "unknown option '--num_epochs'" in result.stderr


def test_gpu_options_are_checked_and_decoding_defaults_to_the_cpu(tmp_path, mini_recipe):
    recipe = make_mini_recipe(tmp_path)
    result = run_recipe(recipe, "--gpu_inference", "yes", check=False)
    assert result.returncode != 0 and "--gpu_inference must be true or false" in result.stderr
    log = next((mini_recipe / EXP).glob("decode_greedy_*/test/logdir/decode.1.log")).read_text()
    assert "--device cpu" in log.splitlines()[0]  # the default, --gpu_inference false
    stats_log = (mini_recipe / "exp/asr_stats_raw_char/stats.log").read_text()
    assert "--ngpu 0" in stats_log.splitlines()[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: --gpu_inference true is not run")
def test_gpu_inference_decodes_on_cuda(tmp_path, mini_recipe):
    """--gpu_inference true: every decoding job gets --device cuda and writes the same layout."""
    recipe = tmp_path / "asr1"
    shutil.copytree(mini_recipe, recipe, symlinks=True)
    out = recipe / EXP / "decode_greedy_valid.wer.ave/test"
    shutil.rmtree(out)
    run_recipe(recipe, "--stage", "12", "--stop_stage", "12", "--gpu_inference", "true",
               "--inference_configs", "conf/decode_greedy.yaml")
    for log in sorted((out / "logdir").glob("decode.*.log")):
        assert "--device cuda" in log.read_text().splitlines()[0], log
    assert json.loads((out / "decode_stats.json").read_text())["utterances"] == 9
    assert len((out / "1best_recog/text").read_text().splitlines()) == 9


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


def test_default_inference_model_is_the_average_of_the_best_checkpoints(mini_recipe):
    from espnet2.train.reporter import Reporter

    exp = mini_recipe / EXP
    reporter = Reporter()
    reporter.load_state_dict(torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"])
    best = [epoch for epoch, _ in reporter.sort_epochs_and_values("valid", "wer", "min")[:2]]
    states = [torch.load(exp / f"{epoch}epoch.pth", map_location="cpu") for epoch in best]
    average = torch.load(exp / "valid.wer.ave.pth", map_location="cpu")
    assert (exp / "valid.wer.ave.pth").resolve().name == "valid.wer.ave_2best.pth"
    floats = [k for k, v in average.items() if v.is_floating_point()]
    assert any(not torch.equal(states[0][k], states[1][k]) for k in floats), "two different checkpoints"
    for key in floats:
        assert torch.allclose(average[key], (states[0][key] + states[1][key]) / 2, atol=1e-6), key


def test_update_results_refreshes_the_tracked_results(mini_recipe):
    try:  # the session's recipe: leave no tracked RESULTS.md behind for the other tests
        run_recipe(mini_recipe, "--stage", "13", "--stop_stage", "13", "--update_results", "true")
        assert (mini_recipe / "RESULTS.md").read_text() == (mini_recipe / EXP / "RESULTS.md").read_text().replace(
            f"{EXP}/images/", "images/tiny_char/")
    finally:
        (mini_recipe / "RESULTS.md").unlink(missing_ok=True)


def test_missing_init_param_names_the_command_that_makes_it(tmp_path):
    """speechocean762 needs egs/synth_en's model: stage 11 says how to make it, and trains nothing."""
    egs = tmp_path / "egs"
    recipe = egs / "speechocean762" / "asr1"
    recipe.mkdir(parents=True)
    (egs / "TEMPLATE").symlink_to(REPO / "egs" / "TEMPLATE")
    subprocess.run(["cp", "-a", *[str(p) for p in (REPO / "egs/speechocean762/asr1").iterdir()
                                  if p.name not in ("data", "dump", "exp")], str(recipe)], check=True)
    result = subprocess.run(["./run.sh", "--stage", "11", "--stop_stage", "11"], cwd=recipe,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "--init_param: missing" in result.stderr
    assert "(cd ../../synth_en/asr1 && ./run.sh --full --stop_stage 11)" in result.stderr
    assert not (egs / "synth_en").exists()


def test_demo_data_step_makes_the_sets_it_is_asked_for(tmp_path):
    """egs/synth_en's local/data.sh at a miniature size: the sizes, word limits and set suffix of
    run.sh's quick and larger demos, and nothing redone when the sets are complete."""
    recipe = tmp_path / "asr1"
    recipe.mkdir()
    (recipe / "local").symlink_to(REPO / "egs/synth_en/asr1/local")
    (recipe / "path.sh").symlink_to(REPO / "egs/TEMPLATE/asr1/path.sh")
    cmd = ["local/data.sh", "--num_train", "4", "--num_dev", "2", "--num_test", "2", "--max_words", "6",
           "--min_word_count", "10", "--suffix", "_mini", "--wav_dir", "downloads/wav_mini"]
    first = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    for dset, size in (("train", 4), ("dev", 2), ("test", 2)):
        text = (recipe / f"data/{dset}_mini/text").read_text().splitlines()
        assert len(text) == size and all(2 <= len(line.split()) <= 7 for line in text)  # id + 4-6 words
    again = subprocess.run(cmd, cwd=recipe, capture_output=True, text=True)
    assert "data/{train,dev,test}_mini already exist: skipping synthesis" in again.stdout


def test_a_killed_decoding_reruns_only_its_unfinished_job(mini_recipe, tmp_path):
    """Stage 12 after job 2 of 2 died (no decode_stats.json): only job 2 decodes again, job 1's output is
    kept, and the merge covers every utterance."""
    recipe = tmp_path / "asr1"
    shutil.copytree(mini_recipe, recipe, symlinks=True)
    out = recipe / EXP / "decode_greedy_valid.wer.ave/test"
    (out / "decode_stats.json").unlink()
    (out / "logdir/output.2/decode_stats.json").unlink()
    kept = (out / "logdir/output.1/1best_recog/text").stat().st_mtime_ns
    result = run_recipe(recipe, "--stage", "12", "--stop_stage", "12", "--inference_configs", "conf/decode_greedy.yaml")
    assert "decoding test with conf/decode_greedy.yaml: job(s) 2 of 2" in result.stdout + result.stderr
    assert (out / "logdir/output.1/1best_recog/text").stat().st_mtime_ns == kept
    assert json.loads((out / "decode_stats.json").read_text())["utterances"] == 9
    assert len((out / "1best_recog/text").read_text().splitlines()) == 9


ESPNET_TINY = """\
model_conf: {ctc_weight: 0.3}
frontend_conf: {n_fft: 512, hop_length: 160, n_mels: 40}
encoder: conformer
encoder_conf: {output_size: 48, attention_heads: 2, linear_units: 96, num_blocks: 1, input_layer: conv2d, cnn_module_kernel: 7, rel_pos_type: latest}
decoder: transformer
decoder_conf: {attention_heads: 2, linear_units: 96, num_blocks: 1}
optim: adam
optim_conf: {lr: 0.01}
batch_type: folded
batch_size: 8
max_epoch: 2
num_att_plot: 0
num_workers: 0
best_model_criterion: [[valid, acc, max]]
keep_nbest_models: 2
"""


def test_espnet_baseline_trains_and_decodes_through_the_same_stages(mini_recipe, tmp_path):
    """--asr_task espnet: ESPnet's own ASR task (checkpoints written atomically), decoded with its joint
    CTC/attention beam search, scored like the transducers, from the same dump and token list."""
    recipe = tmp_path / "asr1"
    shutil.copytree(mini_recipe, recipe, symlinks=True)
    (recipe / "conf" / "espnet_tiny.yaml").write_text(ESPNET_TINY)
    (recipe / "conf" / "decode_ctc_att.yaml").write_text("beam_size: 2\nctc_weight: 0.3\n")
    run_recipe(recipe, "--asr_task", "espnet", "--asr_config", "conf/espnet_tiny.yaml", "--asr_tag", "espnet_tiny",
               "--inference_configs", "conf/decode_ctc_att.yaml", "--inference_model", "valid.acc.ave.pth",
               "--stage", "11", "--stop_stage", "13")
    exp = recipe / "exp" / "asr_espnet_tiny"
    assert "espnet_hatiam.bin.espnet_asr_train" in (exp / "train.log").read_text()
    assert not list(exp.glob("*.tmp"))
    decoded = exp / "decode_ctc_att_valid.acc.ave" / "test"
    stats = json.loads((decoded / "decode_stats.json").read_text())
    assert (stats["search"], stats["ctc_weight"], stats["beam_size"]) == ("espnet_ctc_att", 0.3, 2)
    test_utterances = len((recipe / "dump" / "raw" / "test" / "text").read_text().splitlines())
    assert len((decoded / "1best_recog" / "text").read_text().splitlines()) == test_utterances
    assert json.loads((decoded / "score.json").read_text())["wer"]["Snt"] == test_utterances


FAKE_SBATCH = """#!/usr/bin/env bash
# sbatch --wait --array=A-B --output=LOG_%a [options] SCRIPT: runs the array's tasks here, as slurm would.
echo "$@" >> "$(dirname "$0")/sbatch.calls"
for arg in "$@"; do
    case "$arg" in --array=*) range=${arg#--array=} ;; --output=*) output=${arg#--output=} ;; esac
done
script=${!#}
for ((i = ${range%-*}; i <= ${range#*-}; i++)); do
    SLURM_ARRAY_TASK_ID=$i bash "$script" > "${output//%a/$i}" 2>&1 || exit 1
done
"""


def test_decoding_jobs_through_slurm_match_the_local_ones(mini_recipe, tmp_path):
    """cmd_backend=slurm: each of stage 12's --inference_nj jobs is an sbatch --wait submission (array index =
    job number, so that a re-run resubmits only unfinished jobs; a stand-in runs the tasks as slurm would),
    with $SLURM_OPTS, and together they give the local backend's hypotheses."""
    recipe = tmp_path / "asr1"
    shutil.copytree(mini_recipe, recipe, symlinks=True)
    out = recipe / EXP / "decode_greedy_valid.wer.ave/test"
    local = (out / "1best_recog/text").read_text()
    shutil.rmtree(out)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "cmd_backend": "slurm",
           "SLURM_OPTS": "--partition cpu"}
    result = subprocess.run(["./hat_asr.sh", *MINI_OPTIONS, "--stage", "12", "--stop_stage", "12",
                             "--inference_configs", "conf/decode_greedy.yaml", "--inference_nj", "2"],
                            cwd=recipe, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    calls = (bin_dir / "sbatch.calls").read_text().splitlines()
    arrays = sorted(next(a for a in call.split() if a.startswith("--array=")) for call in calls)
    assert arrays == ["--array=1-1", "--array=2-2"] and all("--partition cpu" in call for call in calls)
    assert (out / "1best_recog/text").read_text() == local
