"""Reading ESPnet's logs: show_progress, the recipes' progress display (from the training log and the
decoding jobs' logs while they are written; a bar only on a terminal), and the learning curves."""

import io
import os
import pty
import subprocess
import sys
import textwrap
import threading

from espnet_hatiam.bin.show_progress import epoch_summary, main
import espnet_hatiam.scoring.learning_curves as learning_curves
from espnet_hatiam.scoring.learning_curves import curve_table, plot_learning_curves, read_curve

# Lines as ESPnet's trainer writes them (from an an4 train.log), two epochs of 20 batches.
TRAIN_LOG = [
    "[vm] 2026-12-01 12:28:41,151 (abs_task:1886) INFO: [train] mini-batch sizes summary: N-batch=20, mean=14.1, min=6, max=42",
    "[vm] 2026-12-01 12:28:41,715 (trainer:336) INFO: 1/2epoch started",
    "[vm] 2026-12-01 12:28:53,020 (trainer:811) INFO: 1epoch:train:1-10batch: iter_time=0.011, loss=85.181, grad_norm=1.0",
    "[vm] 2026-12-01 12:29:03,406 (trainer:811) INFO: 1epoch:train:11-20batch: iter_time=0.003, loss=74.639",
    "[vm] 2026-12-01 12:29:44,144 (trainer:394) INFO: 1epoch results: [train] iter_time=0.004, loss_ctc=81.289, "
    "acc=0.104, loss=64.244, time=58.76 seconds, total_count=60, [valid] loss_ctc=59.518, cer_ctc=1.000, loss=51.616, "
    "cer=0.788, wer=1.000, time=3.67 seconds, total_count=8",
    "[vm] 2026-12-01 12:29:47,027 (trainer:324) INFO: 2/2epoch started. Estimated time to finish: 1 minute and 2.8 seconds",
    "[vm] 2026-12-01 12:29:53,020 (trainer:811) INFO: 2epoch:train:1-10batch: iter_time=0.011, loss=60.0",
    "[vm] 2026-12-01 12:30:44,144 (trainer:394) INFO: 2epoch results: [train] loss=44.755, [valid] loss=40.583, "
    "cer=0.639, wer=0.950",
]
SUMMARIES = [
    "    1epoch: train loss 64.244, valid loss 51.616, valid wer 1.000",
    "    2epoch: train loss 44.755, valid loss 40.583, valid wer 0.950",
]


def _writer(path, lines, delay=0.2):
    """A process that writes ``lines`` to ``path`` one at a time, as a job writes its log."""
    script = textwrap.dedent(f"""
        import sys, time
        with open({str(path)!r}, "w") as f:
            for line in {lines!r}:
                f.write(line + "\\n"); f.flush(); time.sleep({delay})
    """)
    return subprocess.Popen([sys.executable, "-c", script])


def _on_a_terminal(cmd):
    """Run ``main(cmd)`` with its output on a pseudo-terminal; what the terminal received."""
    master, slave = pty.openpty()
    received = []

    def read():  # alongside, so that a full terminal buffer cannot block the writer
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the writing end is closed
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    with open(slave, "w", encoding="utf-8", closefd=True) as out:
        main(cmd, out=out)
    reader.join(timeout=10)
    os.close(master)
    return b"".join(received).decode()


def test_epoch_summary_reads_losses_and_wer_of_both_model_kinds():
    assert [epoch_summary(line) for line in TRAIN_LOG if "results" in line] == SUMMARIES
    assert epoch_summary(TRAIN_LOG[2]) is None


def test_training_off_a_terminal_prints_only_the_epoch_lines(tmp_path):
    job = _writer(tmp_path / "train.log", TRAIN_LOG)
    out = io.StringIO()
    main(["train", "--pid", str(job.pid), "--log", str(tmp_path / "train.log")], out=out)
    job.wait()
    assert out.getvalue().splitlines() == SUMMARIES


def test_training_on_a_terminal_shows_a_bar_with_the_time_left(tmp_path):
    job = _writer(tmp_path / "train.log", TRAIN_LOG)
    shown = _on_a_terminal(["train", "--pid", str(job.pid), "--log", str(tmp_path / "train.log")])
    job.wait()
    assert "epoch 1/2" in shown and "20/20 batches" in shown
    assert "epoch 2/2" in shown and "training ends in about 1 minute and 2.8 seconds" in shown
    assert all(summary in shown for summary in SUMMARIES)


def test_decoding_bar_sums_the_jobs_and_is_silent_off_a_terminal(tmp_path):
    lines = [f"2026-12-01 (decode_dir:190) INFO: decoded {n} utterances" for n in (2, 4)]
    jobs = [_writer(tmp_path / f"decode.{n}.log", lines) for n in (1, 2)]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    cmd = ["decode", "--pid", str(sleeper.pid), "--logs", str(tmp_path / "decode.*.log"), "--total", "8",
           "--desc", "test"]
    shown = _on_a_terminal(cmd)
    assert "test: 100%" in shown and "8/8" in shown
    out = io.StringIO()
    main(cmd, out=out)
    assert out.getvalue() == ""
    for job in [*jobs, sleeper]:
        job.wait()


def test_learning_curve_keeps_the_last_run_of_each_epoch(tmp_path):
    resumed = TRAIN_LOG[4].replace("wer=1.000", "wer=0.990")  # epoch 1 again, after a resume
    (tmp_path / "train.log.1").write_text("\n".join(TRAIN_LOG[:5]) + "\n")  # the first run, kept by stage 11
    (tmp_path / "train.log").write_text("\n".join(TRAIN_LOG[5:] + [resumed]) + "\n")
    curve = read_curve(tmp_path / "train.log")
    assert [c["epoch"] for c in curve] == [1, 2]
    assert curve[0] == {"epoch": 1, "train_loss": 64.244, "train_acc": 0.104, "valid_loss": 51.616, "valid_cer_ctc": 1.0,
                        "valid_wer": 0.99}
    assert curve[1] == {"epoch": 2, "train_loss": 44.755, "valid_loss": 40.583, "valid_wer": 0.95}
    assert curve_table({"hat": curve}, (1, 5)).splitlines()[2] == "|hat|0.990|-|2: 0.950|"
    plot_learning_curves({"hat": curve}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_learning_curves_give_every_system_its_own_line_style_beyond_ten_systems(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(learning_curves, "save", lambda fig, path: figures.append(fig))
    curves = {f"system_{i:02d}": [{"epoch": 1, "valid_loss": 10.0 + i, "valid_wer": 0.5}] for i in range(14)}
    plot_learning_curves(curves, tmp_path / "curves.png")
    for ax in figures[0].axes:
        styles = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines()]
        assert len(styles) == 14 and len(set(styles)) == 14  # matplotlib's default cycle repeats after 10
