"""The options the search benchmarks share (decode_speed.py, profile_search.py): model, data and search shape."""

import argparse
from pathlib import Path

import scipy.linalg  # noqa: F401  (loads the BLAS library the compiled row plan calls, for threadpoolctl to hold)
import threadpoolctl
import torch

from espnet_hatiam.search import SearchConfig


def search_bench_parser(description: str, num_utts: int, batch_size: int) -> argparse.ArgumentParser:
    """``--exp --model --data --num_utts --batch_size --beam_size --threshold --max_sym_per_frame --num_threads``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="training dir with config.yaml")
    parser.add_argument("--model", default="valid.wer.ave.pth")
    parser.add_argument("--data", type=Path, required=True, help="dump dir with wav.scp (and text for WERs)")
    parser.add_argument("--num_utts", type=int, default=num_utts, help="first N utterances (sorted ids)")
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--beam_size", type=int, default=SearchConfig.beam_size)
    parser.add_argument("--threshold", type=float, default=0.95, help="theta_IAM and theta_HAT of the thresholded rows")
    parser.add_argument("--max_sym_per_frame", type=int, default=SearchConfig.max_sym_per_frame)
    parser.add_argument("--num_threads", type=int, default=1)
    return parser


def hold_threads(num_threads: int) -> None:
    """PyTorch's threads and the BLAS libraries' (the compiled row plan's products) held to ``num_threads``."""
    torch.set_num_threads(num_threads)
    threadpoolctl.threadpool_limits(num_threads)
