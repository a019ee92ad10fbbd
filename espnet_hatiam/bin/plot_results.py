#!/usr/bin/env python3
"""Figures and blank synchrony for RESULTS.md (docs/METHOD.md section 6).

- ``speed_accuracy.png``: WER against RTF of every decoding dir of one test set.
- ``blank_synchrony.png``: for one utterance, the IAM blank posterior and the HAT blank
  posterior on the greedy path, frame by frame.
- Blank synchrony over ``--num_utts`` utterances: the share of frames where the IAM
  (P(blank) >= 0.5) and the HAT (greedy path) agree on blank vs label; printed and
  written to ``blank_synchrony.json``.

    python -m espnet_hatiam.bin.plot_results --exp exp/asr_x --test_set test --out_dir images
"""

import argparse
import json
from pathlib import Path
from typing import Tuple

import numpy as np
import soundfile
import torch

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.search.state import PredictionNetwork


@torch.no_grad()
def greedy_blank_posteriors(model, speech: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(iam_blank (T,), hat_blank (T,), hat_emitted (T,) bool)`` on the greedy path (one label per frame)."""
    speech = torch.as_tensor(speech, dtype=torch.float32).unsqueeze(0)
    enc_out, _ = model.encode(speech, torch.tensor([speech.size(1)]))
    joint = model.joint_network
    iam_blank = joint.iam_blank_log_prob(enc_out[0]).exp()
    prediction = PredictionNetwork(model.decoder)
    dec_out, state = prediction.initial(1, enc_out.device)
    enc_proj = joint.project_encoder(enc_out[0])
    hat_blank, emitted = [], []
    for t in range(enc_proj.size(0)):
        log_probs = joint(enc_proj[t : t + 1], joint.project_decoder(dec_out), no_projection=True)[0]
        hat_blank.append(float(log_probs[0].exp()))
        token = int(log_probs.argmax())
        emitted.append(token != 0)
        if token:
            dec_out, state = prediction.step(torch.tensor([token]), state)
    return iam_blank.numpy(), np.array(hat_blank), np.array(emitted)


def plot_speed_accuracy(scores, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, score in scores:
        ax.plot(score["rtf"], score["wer"]["Err"], "o")
        ax.annotate(name, (score["rtf"], score["wer"]["Err"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("RTF (encoder + search) / audio")
    ax.set_ylabel("WER %")
    ax.set_title("Speed and accuracy of the blank thresholds")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_synchrony(utt: str, iam_blank, hat_blank, emitted, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    frames = np.arange(len(iam_blank))
    ax.plot(frames, iam_blank, label="IAM P(blank)")
    ax.plot(frames, hat_blank, label="HAT P(blank), greedy path")
    ax.vlines(frames[emitted], 0, 1, colors="gray", alpha=0.3, label="HAT emits a label")
    ax.set_xlabel("encoder frame")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Blank synchrony, {utt}")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True)
    parser.add_argument("--model", default="valid.wer.best.pth")
    parser.add_argument("--test_set", required=True, help="name of dump/raw/<set> and of the decoding subdirs")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--num_utts", type=int, default=100, help="utterances for the synchrony ratio")
    args = parser.parse_args(cmd)
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    scores = [
        (path.parent.parent.name.replace("decode_", "").rsplit("_", 1)[0], json.loads(path.read_text()))
        for path in sorted(args.exp.glob(f"decode_*/{args.test_set}/score.json"))
    ]
    if scores:
        plot_speed_accuracy(scores, args.out_dir / "speed_accuracy.png")

    model = HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, beam_size=1).model
    wavs = list(read_table(Path("dump/raw") / args.test_set / "wav.scp").items())[: args.num_utts]
    agree = total = 0
    for n, (utt, path) in enumerate(wavs):
        iam_blank, hat_blank, emitted = greedy_blank_posteriors(model, soundfile.read(path, dtype="float32")[0])
        agree += int(((iam_blank >= 0.5) == ~emitted).sum())
        total += len(emitted)
        if n == 0:
            plot_synchrony(utt, iam_blank, hat_blank, emitted, args.out_dir / "blank_synchrony.png")
    synchrony = {"utterances": len(wavs), "frames": total, "blank_synchrony": round(agree / max(total, 1), 4)}
    (args.out_dir / "blank_synchrony.json").write_text(json.dumps(synchrony, indent=2) + "\n")
    print(f"blank synchrony over {len(wavs)} utterances of {args.test_set}: {synchrony['blank_synchrony']:.4f}")


if __name__ == "__main__":
    main()
