"""Training through ESPnet's trainer: the loss goes down, checkpoints load strictly, --resume continues."""

import shutil

import torch

from conftest import run_recipe
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
    assert (recipe / EXP / "6epoch.pth").exists()
    assert len(_train_losses(recipe / EXP / "checkpoint.pth")) == 6
    assert "Successfully finished stages 11-11" in result.stdout
