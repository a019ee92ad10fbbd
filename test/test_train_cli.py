"""Training through ESPnet's trainer: the loss goes down, checkpoints load strictly, --resume continues,
a kill -9 loses nothing, and the same seed gives the same weights."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from conftest import MINI_OPTIONS, run_recipe
from espnet_hatiam.tasks.hat_asr import HATASRTask

EXP = "exp/asr_tiny_char"


def _train_losses(checkpoint):
    from espnet2.train.reporter import Reporter

    reporter = Reporter()
    reporter.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"])
    return [reporter.stats[epoch]["train"]["loss"] for epoch in sorted(reporter.stats)]


def test_training_loss_goes_down(mini_recipe):
    losses = _train_losses(mini_recipe / EXP / "checkpoint.pth")
    assert len(losses) == 5
    assert losses[-1] < 0.7 * losses[0]


def test_checkpoint_restores_every_parameter_strictly(mini_recipe, monkeypatch):
    monkeypatch.chdir(mini_recipe)  # configs hold paths relative to the recipe (ESPnet's convention)
    exp = mini_recipe / EXP
    model, args = HATASRTask.build_model_from_file(exp / "config.yaml", exp / "5epoch.pth")
    saved = torch.load(exp / "5epoch.pth", map_location="cpu")
    assert set(saved) == set(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert args.joint_type == "hat" and type(model.joint_network).__name__ == "HATJointNetwork"


def test_resume_continues_from_the_last_checkpoint(mini_recipe, tmp_path):
    recipe = tmp_path / "asr1"
    decoding_outputs = lambda folder, names: [n for n in names if folder.endswith("asr_tiny_char") and n.startswith(("decode_", "model.zip"))]  # noqa: E731
    shutil.copytree(mini_recipe, recipe, symlinks=True, ignore=decoding_outputs)
    result = run_recipe(recipe, "--stage", "11", "--stop_stage", "11", "--asr_args", "--max_epoch 6")
    log = (recipe / EXP / "train.log").read_text()
    assert "resumed" in log
    assert "6epoch results" in log and "1epoch results" not in log
    assert "5epoch results" in (recipe / EXP / "train.log.1").read_text()  # the first run's log, kept
    assert (recipe / EXP / "6epoch.pth").exists()
    assert len(_train_losses(recipe / EXP / "checkpoint.pth")) == 6
    assert "Successfully finished stages 11-11" in result.stdout


def test_kill_9_then_resume_ends_as_the_uninterrupted_run(mini_recipe, tmp_path):
    """Training killed with SIGKILL in its third epoch and re-run (the recipe always passes --resume true)
    continues from the second epoch's checkpoint and ends with the uninterrupted run's losses and weights."""
    recipe = tmp_path / "asr1"
    shutil.copytree(mini_recipe, recipe, symlinks=True, ignore=lambda folder, names: ["asr_tiny_char"])
    training = subprocess.Popen(["./hat_asr.sh", *MINI_OPTIONS, "--stage", "11", "--stop_stage", "11"], cwd=recipe,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (recipe / EXP / "2epoch.pth").exists():  # written after checkpoint.pth of the same epoch
        assert training.poll() is None and time.time() < deadline, "training ended or hung before its 2nd epoch"
        time.sleep(0.2)
    os.killpg(training.pid, signal.SIGKILL)
    training.wait()
    assert not (recipe / EXP / "5epoch.pth").exists()

    run_recipe(recipe, "--stage", "11", "--stop_stage", "11")
    log = (recipe / EXP / "train.log").read_text()
    assert "resumed" in log and "1epoch results" not in log.split("resumed")[-1]
    resumed, uninterrupted = (_train_losses(r / EXP / "checkpoint.pth") for r in (recipe, mini_recipe))
    assert resumed == [pytest.approx(loss, rel=1e-5) for loss in uninterrupted]
    ours, theirs = (torch.load(r / EXP / "5epoch.pth", map_location="cpu") for r in (recipe, mini_recipe))
    for name, value in theirs.items():  # the same seed and data: the same weights (CPU)
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6, msg=name)
