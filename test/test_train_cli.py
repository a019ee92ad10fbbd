"""Training through ESPnet's trainer: the loss goes down, checkpoints load strictly, --resume continues."""

import shutil
import subprocess
import sys

import torch
import yaml

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


def test_checkpoint_restores_every_parameter_strictly(mini_recipe):
    exp = mini_recipe / EXP
    model, args = HATASRTask.build_model_from_file(exp / "config.yaml", exp / "5epoch.pth")
    saved = torch.load(exp / "5epoch.pth", map_location="cpu")
    assert set(saved) == set(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[name]), name
    assert args.joint_type == "hat" and type(model.joint_network).__name__ == "HATJointNetwork"


def test_resume_continues_from_the_last_checkpoint(mini_recipe, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(mini_recipe / EXP, out, ignore=shutil.ignore_patterns("decode_*", "model.zip"))
    config = yaml.safe_load((out / "config.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "espnet_hatiam.bin.hat_asr_train", "--config", str(out / "config.yaml"),
         "--output_dir", str(out), "--resume", "true", "--max_epoch", str(config["max_epoch"] + 1)],
        cwd=mini_recipe, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed" in result.stderr
    assert "6epoch" in result.stderr and "1epoch:train" not in result.stderr
    assert (out / "6epoch.pth").exists()
    assert len(_train_losses(out / "checkpoint.pth")) == 6
