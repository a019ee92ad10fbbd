#!/usr/bin/env python3
"""Where the batched search spends its time: PyTorch calls per round and per frame, search seconds
of beam and greedy on encoder outputs computed once, their ratio, and the beam search's cProfile.

With ``--reference`` the frame-by-frame searches as they were before issue 28 (kept for the tests in
test/reference_search.py) are counted beside them, on the same encoder outputs.

A "PyTorch call" is one Python-level call that reaches PyTorch (a ``torch`` function, a tensor method
or operator, indexing), counted with a ``TorchFunctionMode``; a round is one top-k of the beam search,
one step of the label-looping greedy search. The beam search runs in ``--row_plan`` (default select, the plan
whose calls are counted; the compiled plan, auto's choice on the CPU, makes none inside its loop).

    cd egs/synth_en/asr1   # model configs hold paths relative to the recipe
    python ../../../bench/profile_search.py --exp exp/asr_train_demo_bpe100 --data dump/raw/test \\
        [--num_utts 30] [--batch_size 1] [--beam_size 4] [--threshold 0.95] [--top 25]
"""

import cProfile
import pstats
import sys
import time
from pathlib import Path

import soundfile
import torch
from torch.overrides import TorchFunctionMode

from search_options import hold_threads, search_bench_parser

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.search import SearchConfig, SearchCounters, iam_frame_skip


class CallCounter(TorchFunctionMode):
    """Counts the PyTorch calls made inside it, and the rounds (calls of the function named ``round_function``)."""

    def __init__(self, round_function):
        super().__init__()
        self.round_function, self.calls, self.rounds = round_function, 0, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        self.rounds += getattr(func, "__name__", "") == self.round_function
        return func(*args, **(kwargs or {}))


def main():
    parser = search_bench_parser(__doc__, num_utts=30, batch_size=1)
    parser.add_argument("--top", type=int, default=25, help="profile rows (0: no profile)")
    parser.add_argument("--reference", action="store_true",
                        help="also the frame-by-frame searches before issue 28 (test/reference_search.py)")
    parser.add_argument("--row_plan", default="select", choices=("select", "mask", "compiled"),
                        help="the beam search's row plan (compiled: no PyTorch call in its rounds, only its time)")
    args = parser.parse_args()
    hold_threads(args.num_threads)
    common = dict(max_sym_per_frame=args.max_sym_per_frame)
    dual = dict(iam_blank_threshold=args.threshold, hat_blank_threshold=args.threshold)
    searches = {
        "beam": SearchConfig(beam_size=args.beam_size, row_plan=args.row_plan, **common),
        "beam + dual": SearchConfig(beam_size=args.beam_size, row_plan=args.row_plan, **common, **dual),
        "greedy": SearchConfig(search_type="greedy", **common),
        "greedy + dual": SearchConfig(search_type="greedy", **common, **dual),
    }
    decoders = {name: HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, search_config=config)
                for name, config in searches.items()}
    model = decoders["beam"].model
    wavs = read_table(args.data / "wav.scp")
    keys = sorted(wavs)[: args.num_utts]
    encoded = []
    with torch.no_grad():
        for start in range(0, len(keys), args.batch_size):
            audio = [torch.from_numpy(soundfile.read(wavs[k], dtype="float32")[0])
                     for k in keys[start : start + args.batch_size]]
            lengths = torch.tensor([a.numel() for a in audio])
            encoded.append(model.encode(torch.nn.utils.rnn.pad_sequence(audio, batch_first=True), lengths))

    searchers = {name: decoder.search_encoded for name, decoder in decoders.items()}
    if args.reference:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))
        from reference_search import reference_beam_search, reference_greedy_search

        joint, decoder = model.joint_network, model.decoder

        def reference(search, config):
            def searcher(enc_out, enc_lens, counters):
                kept, kept_lens = iam_frame_skip(joint, enc_out, enc_lens, config.iam_blank_threshold)
                if search is reference_greedy_search:
                    return search(joint, decoder, kept, kept_lens, config.max_sym_per_frame,
                                  config.hat_blank_threshold, counters)
                return search(joint, decoder, kept, kept_lens, config.beam_size, 1, config.max_sym_per_frame,
                              config.hat_blank_threshold, counters, expansion_beam=config.expansion_beam)
            return searcher

        for name, config in searches.items():
            searchers["reference " + name] = reference(
                reference_beam_search if name.startswith("beam") else reference_greedy_search, config)

    def run(name):
        totals = {}
        tic = time.perf_counter()
        for enc_out, enc_lens in encoded:
            counters = SearchCounters.for_lengths(enc_lens)
            searchers[name](enc_out, enc_lens, counters)
            for key, value in counters.totals().items():
                totals[key] = totals.get(key, 0) + value
        return time.perf_counter() - tic, totals

    for name in searchers:  # warm-up
        run(name)
    frames = sum(int(lens.sum()) for _, lens in encoded)
    print(f"{len(keys)} utterances, {frames} encoder frames, batch {args.batch_size}, {args.num_threads} thread(s), "
          f"beam {args.beam_size}, max_sym_per_frame {args.max_sym_per_frame}, theta {args.threshold}")
    print("| search | search s | PyTorch calls | rounds | calls / round | frames searched | calls / frame searched "
          "| calls / encoder frame |")
    print("|---|---|---|---|---|---|---|---|")
    seconds = {}
    for name in searchers:
        seconds[name], totals = min((run(name) for _ in range(3)), key=lambda r: r[0])
        with CallCounter("topk" if "beam" in name else "max") as counter:
            run(name)
        print(f"| {name} | {seconds[name]:.2f} | {counter.calls} | {counter.rounds} | "
              f"{counter.calls / max(counter.rounds, 1):.1f} | {totals['frames_searched'] or '-'} | "
              f"{_ratio(counter.calls, totals['frames_searched'])} | {counter.calls / frames:.1f} |")
    print(f"beam / greedy (search seconds, best of 3): {seconds['beam'] / seconds['greedy']:.2f}")
    if args.top:
        profile = cProfile.Profile()
        profile.enable()
        run("beam")
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


def _ratio(calls, frames):
    """Calls per frame searched; the reference searches do not count the frames they search."""
    return f"{calls / frames:.1f}" if frames else "-"


if __name__ == "__main__":
    main()
