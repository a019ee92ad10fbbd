#!/usr/bin/env python3
"""Show the progress of a running training or decoding job from its logs, until the job exits.

    show_progress train --pid PID --log exp/asr/train.log
    show_progress decode --pid PID --logs 'exp/asr/decode_x/test/logdir/decode.*.log' --total 117

``train`` reads ESPnet's trainer log: one line per finished epoch (train loss, valid loss,
valid WER) always, and on a terminal also a tqdm bar over the epoch's batches with ESPnet's
estimate of the time left. ``decode`` sums the ``decoded N utterances`` lines of the decoding
jobs' logs into a bar over ``--total`` utterances, on a terminal only. Off a terminal (CI,
nohup) there is no bar (and ``decode`` returns at once). The logs are only read; the
recipes wait for the job's own exit status.
"""

import argparse
import glob
import os
import re
import sys
import time
from typing import Dict, Iterator, Optional, TextIO

from espnet_hatiam.scoring.learning_curves import epoch_results

BATCHES = re.compile(r"\[train\] mini-batch sizes summary: N-batch=(\d+)")
EPOCH_START = re.compile(r"(\d+)/(\d+)epoch started(?:\. Estimated time to finish: (.*))?$")
BATCH = re.compile(r"(\d+)epoch:train:\d+-(\d+)batch:")
DECODED = re.compile(r"decoded (\d+) utterances")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited child not yet reaped, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): kill's answer
        return True


def follow(pid: int, pattern: str, poll: float = 0.5) -> Iterator[tuple]:
    """``(path, line)`` of every line of the files matching ``pattern``, as they are written,
    until process ``pid`` has exited and its last lines are read."""
    offsets: Dict[str, int] = {}
    partial: Dict[str, str] = {}
    while True:
        alive = _alive(pid)
        for path in sorted(glob.glob(pattern)):
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(offsets.get(path, 0))
                chunk = f.read()
                offsets[path] = f.tell()
            lines = (partial.pop(path, "") + chunk).split("\n")
            partial[path] = lines.pop()
            for line in lines:
                yield path, line
        if not alive:
            return
        time.sleep(poll)


def epoch_summary(line: str) -> Optional[str]:
    """``    7epoch: train loss 12.300, valid loss 14.100, valid wer 0.250`` from ESPnet's epoch results line."""
    results = epoch_results(line)
    if results is None:
        return None
    parts = [f"{name.replace('_', ' ')} {results[name]:.3f}" for name in ("train_loss", "valid_loss", "valid_wer")
             if name in results]
    return f"    {results['epoch']}epoch: " + ", ".join(parts)


def show_training(pid: int, log: str, out: TextIO, bar: bool) -> None:
    """Epoch lines to ``out``; with ``bar``, a tqdm bar per epoch over its batches."""
    from tqdm import tqdm

    batches, progress = None, None
    for _, line in follow(pid, log):
        if match := BATCHES.search(line):
            batches = int(match.group(1))
        elif (match := EPOCH_START.search(line)) and bar:
            if progress is not None:
                progress.close()
            epoch, epochs, left = match.groups()
            progress = tqdm(total=batches, desc=f"epoch {epoch}/{epochs}", file=out, leave=False, miniters=1,
                            bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} batches {postfix}")
            progress.set_postfix_str(f"(training ends in about {left})" if left else "")
        elif (match := BATCH.search(line)) and progress is not None:
            progress.update(int(match.group(2)) - progress.n)
        elif summary := epoch_summary(line):
            if progress is not None:
                progress.close()
                progress = None
            print(summary, file=out, flush=True)
    if progress is not None:
        progress.close()


def show_decoding(pid: int, logs: str, total: int, desc: str, out: TextIO) -> None:
    """A tqdm bar over ``total`` utterances, summed over the decoding jobs' logs."""
    from tqdm import tqdm

    done: Dict[str, int] = {}
    with tqdm(total=total, desc=desc, unit="utt", file=out, miniters=1) as progress:
        for path, line in follow(pid, logs):
            if match := DECODED.search(line):
                done[path] = int(match.group(1))
                progress.update(sum(done.values()) - progress.n)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    train = modes.add_parser("train", help="an ESPnet training job")
    train.add_argument("--pid", type=int, required=True)
    train.add_argument("--log", required=True, help="its train.log")
    decode = modes.add_parser("decode", help="parallel decoding jobs")
    decode.add_argument("--pid", type=int, required=True)
    decode.add_argument("--logs", required=True, help="glob pattern of the jobs' logs")
    decode.add_argument("--total", type=int, required=True, help="utterances to decode")
    decode.add_argument("--desc", default="decoding")
    return parser


def main(cmd=None, out: TextIO = sys.stdout):
    args = get_parser().parse_args(cmd)
    bar = out.isatty()
    if args.mode == "train":
        show_training(args.pid, args.log, out, bar)
    elif bar:
        show_decoding(args.pid, args.logs, args.total, args.desc, out)


if __name__ == "__main__":
    main()
