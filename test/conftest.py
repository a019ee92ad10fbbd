"""Shared fixtures: deterministic seeding, the derandomised hypothesis profile, the miniature recipe."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests run the same examples on every machine: derandomised, a fixed budget (tests that
# set their own max_examples keep it), no example database carried between runs, no deadline on
# a shared CPU. HYPOTHESIS_PROFILE=explore searches afresh (random, more examples) when asked.
settings.register_profile("ci", derandomize=True, max_examples=100, database=None, deadline=None)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: needs the mini_recipe fixture (trains a tiny model, minutes); -m 'not slow' skips it"
    )


def pytest_collection_modifyitems(items):
    """Every test that needs the trained miniature recipe, directly or through a fixture, is slow."""
    for item in items:
        if "mini_recipe" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same RNG state."""
    torch.manual_seed(0)
    yield


REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "egs" / "TEMPLATE" / "asr1"
MINI_CONFIG = """\
joint_type: hat
model_conf: {iam_weight: 0.3}
frontend_conf: {n_fft: 512, hop_length: 160, n_mels: 40}
encoder: conformer
encoder_conf: {output_size: 48, attention_heads: 2, linear_units: 96, num_blocks: 1, input_layer: conv2d, cnn_module_kernel: 7, rel_pos_type: latest}
decoder: transducer
decoder_conf: {hidden_size: 32}
joint_net_conf: {joint_space_size: 32}
optim: adam
optim_conf: {lr: 0.01}
batch_type: folded
batch_size: 8
max_epoch: 5
num_att_plot: 0
num_workers: 0
best_model_criterion: [[valid, wer, min], [valid, loss, min]]
keep_nbest_models: 2
"""
MINI_OPTIONS = [
    "--train_set", "train", "--valid_set", "dev", "--test_sets", "test", "--token_type", "char",
    "--asr_config", "conf/tiny.yaml", "--nj", "2",
    "--inference_configs", "conf/decode_greedy.yaml conf/decode_dual.yaml",
]


def make_mini_recipe(root: Path) -> Path:
    """A recipe folder like egs/<corpus>/asr1 whose local/data.sh writes the tone corpus."""
    recipe = root / "asr1"
    (recipe / "local").mkdir(parents=True)
    (recipe / "conf").mkdir()
    for name in ("hat_asr.sh", "cmd.sh", "path.sh", "scripts"):
        (recipe / name).symlink_to(TEMPLATE / name)
    data_sh = recipe / "local" / "data.sh"
    data_sh.write_text(f'#!/usr/bin/env bash\nset -e\npython "{REPO}/test/tiny_corpus.py" data\n')
    data_sh.chmod(0o755)
    (recipe / "conf" / "tiny.yaml").write_text(MINI_CONFIG)
    (recipe / "conf" / "decode_greedy.yaml").write_text("search_type: greedy\n")
    (recipe / "conf" / "decode_dual.yaml").write_text(
        "beam_size: 3\niam_blank_threshold: 0.95\nhat_blank_threshold: 0.95\n"
    )
    return recipe


def recipe_with_stand_in_hat_asr(root: Path, recipe: Path, hat_asr_sh: str) -> Path:
    """``root/asr1``: a copy of ``recipe``'s run.sh beside its scripts and conf, whose hat_asr.sh is
    the bash body ``hat_asr_sh`` (a stand-in that records or prints the calls run_systems.sh makes)."""
    stand_in = root / "asr1"
    stand_in.mkdir()
    shutil.copy(recipe / "run.sh", stand_in / "run.sh")
    for name in ("scripts", "conf"):
        (stand_in / name).symlink_to(recipe.resolve() / name)
    (stand_in / "hat_asr.sh").write_text(f"#!/usr/bin/env bash\n{hat_asr_sh}\n")
    (stand_in / "hat_asr.sh").chmod(0o755)
    return stand_in


def run_recipe(recipe: Path, *options: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["./hat_asr.sh", *MINI_OPTIONS, *options], cwd=recipe, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"hat_asr.sh {' '.join(options)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def mini_recipe(tmp_path_factory) -> Path:
    """The miniature recipe run once through every stage (about two minutes on 2 cores).

    Its users are marked ``slow`` (``pytest_collection_modifyitems``)."""
    recipe = make_mini_recipe(tmp_path_factory.mktemp("mini"))
    run_recipe(recipe)
    return recipe
