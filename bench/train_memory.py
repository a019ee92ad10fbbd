#!/usr/bin/env python3
"""Peak memory of one training step of the joint network + transducer loss (+ IAM CTC loss).

The (B, T, U+1, V+1) joint tensor dominates transducer training memory. For each joint
type this runs one forward/backward in a fresh process and prints the growth of the peak
RSS over the process's RSS before the step, in units of one full joint tensor (float32).

    python bench/train_memory.py [--batch 16 --frames 250 --labels 40 --vocab 500]
"""

import argparse
import json
import resource
import subprocess
import sys


def one_step(joint_type: str, batch: int, frames: int, labels: int, vocab: int, iam_weight: float) -> dict:
    import torch

    from espnet_hatiam.losses import transducer_loss, iam_ctc_loss
    from espnet_hatiam.nets import JOINT_TYPES

    torch.manual_seed(0)
    torch.set_num_threads(2)
    joint = JOINT_TYPES[joint_type](vocab + 1, 144, 256, joint_space_size=256)
    enc_out = torch.randn(batch, frames, 144, requires_grad=True)
    dec_out = torch.randn(batch, labels + 1, 256, requires_grad=True)
    targets = torch.randint(1, vocab + 1, (batch, labels))
    enc_lens = torch.full((batch,), frames)
    target_lens = torch.full((batch,), labels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    log_probs = joint(enc_out.unsqueeze(2), dec_out.unsqueeze(1))
    loss = transducer_loss(log_probs, targets, enc_lens, target_lens)
    del log_probs
    if iam_weight > 0:
        loss = loss + iam_weight * iam_ctc_loss(joint.iam(enc_out), targets, enc_lens, target_lens)
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    joint_tensor = batch * frames * (labels + 1) * (vocab + 1) * 4
    return {"joint": joint_type, "peak_growth_mb": (peak - before) / 2**20,
            "joint_tensor_mb": joint_tensor / 2**20, "ratio": (peak - before) / joint_tensor}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--labels", type=int, default=40)
    parser.add_argument("--vocab", type=int, default=500, help="non-blank tokens V")
    parser.add_argument("--iam_weight", type=float, default=0.3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = (args.batch, args.frames, args.labels, args.vocab, args.iam_weight)
    if args.child:
        print(json.dumps(one_step(args.child, *sizes)))
        return
    print(f"B={args.batch} T={args.frames} U={args.labels} V={args.vocab} iam_weight={args.iam_weight}")
    print("| joint | one (B,T,U+1,V+1) tensor | peak RSS growth of a step | in joint tensors |")
    print("|---|---|---|---|")
    for joint_type in ("hat", "rnnt"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", joint_type, "--batch", str(args.batch), "--frames", str(args.frames),
             "--labels", str(args.labels), "--vocab", str(args.vocab), "--iam_weight", str(args.iam_weight)],
            check=True, capture_output=True, text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['joint']} | {r['joint_tensor_mb']:.0f} MB | {r['peak_growth_mb']:.0f} MB | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
