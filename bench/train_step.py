#!/usr/bin/env python3
"""Training-step time and peak memory of a recipe's model: full transducer loss against pruned.

Builds the model of a training config through the task (as training does), then times
forward + backward + Adam step on random speech and labels of the given shape, once per
``prune_range`` (0 = the full loss), each in a fresh process so that the peak RSS is its own.
A last row times the encoder alone (its output summed as the loss, same Adam step): what the
step costs outside the prediction network, joint and losses, so the most any loss can save.

    python bench/train_step.py [--config egs/speechocean762/asr1/conf/train_hat_iam.yaml]
        [--batch 9 --seconds 4 --labels 16 --vocab 300 --prune_ranges "0 5" --steps 6 --threads 2]

Defaults: a speechocean762 batch (2,500 training utterances of 4.0 s on average in about
270 updates an epoch; BPE 300).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


ENCODER_ONLY = -1  # the child's prune_range for the encoder-only step


def one_config(args, prune_range: int) -> dict:
    import torch

    from espnet_hatiam.tasks.hat_asr import HATASRTask

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    tokens = ["<blank>", "<unk>"] + [f"t{i}" for i in range(args.vocab - 2)] + ["<sos/eos>"]
    parsed = HATASRTask.get_parser().parse_args(["--config", args.config, "--token_list", "unused"])
    parsed.token_list = tokens
    parsed.model_conf = dict(parsed.model_conf, prune_range=max(prune_range, 0))
    model = HATASRTask.build_model(parsed).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    samples = int(args.seconds * 16000)
    speech = torch.randn(args.batch, samples, generator=g) * 0.1
    speech_lengths = torch.full((args.batch,), samples)
    text = torch.randint(2, len(tokens) - 1, (args.batch, args.labels), generator=g)
    text_lengths = torch.full((args.batch,), args.labels)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(args.steps + 1):  # the first step warms up
        start = time.perf_counter()
        if prune_range == ENCODER_ONLY:
            loss = model.encode(speech, speech_lengths)[0].sum()
        else:
            loss, _, _ = model(speech, speech_lengths, text, text_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"prune_range": prune_range, "step_s": statistics.median(times[1:]), "peak_mb": (peak - before) / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="egs/speechocean762/asr1/conf/train_hat_iam.yaml")
    parser.add_argument("--batch", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--labels", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=300, help="tokens, blank and <sos/eos> included")
    parser.add_argument("--prune_ranges", default="0 5", help="0 = the full loss")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_config(args, args.child)))
        return
    print(f"{args.config}: B={args.batch} {args.seconds} s U={args.labels} V={args.vocab}, "
          f"median of {args.steps} steps, {args.threads} threads")
    print("| loss | step (s) | peak RSS growth (MB) | step speed-up | memory reduction |")
    print("|---|---|---|---|---|")
    base = full = None
    for prune_range in [*map(int, args.prune_ranges.split()), ENCODER_ONLY]:
        command = [sys.executable, __file__, "--child", str(prune_range)]
        for name in ("config", "batch", "seconds", "labels", "vocab", "steps", "threads"):
            command += [f"--{name}", str(getattr(args, name))]
        r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        base = base or r  # the ratios are against the first row
        full = r if prune_range == 0 else full
        name = {0: "full", ENCODER_ONLY: "encoder only (no prediction network, joint or loss)"}.get(
            prune_range, f"pruned, range {prune_range}")
        print(f"| {name} | {r['step_s']:.3f} | {r['peak_mb']:.0f} | {base['step_s'] / r['step_s']:.2f}x "
              f"| {base['peak_mb'] / max(r['peak_mb'], 1e-9):.2f}x |")
    if full:  # r: the encoder-only row
        print(f"share of the full-loss step outside the encoder: {1 - r['step_s'] / full['step_s']:.0%} of its "
              f"time, {1 - r['peak_mb'] / max(full['peak_mb'], 1e-9):.0%} of its peak memory")


if __name__ == "__main__":
    main()
