"""Training through ESPnet's trainer: the loss goes down, checkpoints load strictly, --resume continues,
a kill -9 loses nothing, and the same seed gives the same weights."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
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


# ------------------------------------------------------------------ checkpoints written whole or not at all

_SAVE_FOREVER = """
import sys, torch
from espnet_hatiam.tasks.atomic_save import atomic_torch_save
path = sys.argv[1]
with atomic_torch_save():
    torch.save({"step": 0}, path)
    big = torch.zeros(50_000_000)  # 200 MB: the write takes long enough to be killed inside it
    step = 1
    while True:
        torch.save({"step": step, "weights": big}, path)
        step += 1
"""


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint(tmp_path):
    """SIGKILL while torch.save writes: the checkpoint on disk is still a whole earlier one."""
    path = tmp_path / "checkpoint.pth"
    process = subprocess.Popen([sys.executable, "-c", _SAVE_FOREVER, str(path)])
    deadline = time.time() + 120
    while not (tmp_path / "checkpoint.pth.tmp").exists() and time.time() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert (tmp_path / "checkpoint.pth.tmp").exists(), "the write was not caught in progress"
    state = torch.load(path, map_location="cpu")  # a truncated file would raise here
    assert state["step"] == 0 or state["weights"].numel() == 50_000_000


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from espnet_hatiam.tasks.atomic_save import atomic_torch_save

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    path = tmp_path / "checkpoint.pth"
    original = torch.save
    with atomic_torch_save():
        assert torch.save is not original
        torch.save({"step": 1}, path)
        with pytest.raises(RuntimeError, match="cannot pickle"):
            torch.save({"step": 2, "bad": Unpicklable()}, path)
    assert torch.save is original
    assert torch.load(path) == {"step": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]


def test_both_training_tasks_write_checkpoints_atomically():
    """HATASRTask and the ESPnet baseline's task run their training workers inside atomic_torch_save."""
    from espnet2.tasks.asr import ASRTask

    from espnet_hatiam.bin.espnet_asr_train import ESPnetASRTask
    from espnet_hatiam.tasks.training_worker import TrainingWorker

    for task in (HATASRTask, ESPnetASRTask):
        assert task.__mro__.index(TrainingWorker) < task.__mro__.index(ASRTask)
        assert task.main_worker.__func__ is TrainingWorker.main_worker.__func__


def test_the_training_worker_destroys_the_process_group_it_created(tmp_path):
    """A rank that exits with its gloo group alive can abort (SIGABRT) after its training finished;
    a group the caller made before the task ran is the caller's to destroy."""
    import torch.distributed as dist

    from espnet_hatiam.tasks.training_worker import TrainingWorker

    class Task:
        @classmethod
        def main_worker(cls, args):
            if args.init:
                dist.init_process_group("gloo", init_method=f"file://{tmp_path / args.init}", rank=0, world_size=1)

    class Worker(TrainingWorker, Task):
        pass

    Worker.main_worker(argparse.Namespace(init="store"))
    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'caller'}", rank=0, world_size=1)
    try:
        Worker.main_worker(argparse.Namespace(init=None))
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------ data-parallel training on CPU (gloo)


def test_two_process_data_parallel_training_on_cpu_with_gloo(mini_recipe, tmp_path):
    """ESPnet's own distributed options, two CPU processes (--ngpu 0, gloo, env:// rendezvous), the way
    a multi-node or multi-GPU user runs it: both ranks train, only rank 0 writes the checkpoints, and the
    result is an ordinary model that resumes."""
    import socket

    command = (mini_recipe / EXP / "train.log").read_text().splitlines()[0].lstrip("# ").split()
    command = [sys.executable if word == "python3" else word for word in command]
    out = tmp_path / "ddp"
    command[command.index("--output_dir") + 1] = str(out)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist = ["--max_epoch", "2", "--multiprocessing_distributed", "false", "--dist_backend", "gloo",
            "--dist_init_method", "env://", "--dist_world_size", "2", "--dist_master_addr", "127.0.0.1",
            "--dist_master_port", str(port), "--num_workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ranks = [subprocess.Popen([*command, *dist, "--dist_rank", str(rank)], cwd=mini_recipe, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    logs = [rank.communicate(timeout=600)[0] for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    import yaml

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["distributed"], config["dist_world_size"], config["dist_backend"]) == (True, 2, "gloo")
    assert (out / "checkpoint.pth").is_file() and (out / "2epoch.pth").is_file()
    assert len(_train_losses(out / "checkpoint.pth")) == 2
    assert not list(out.glob("*.tmp"))
