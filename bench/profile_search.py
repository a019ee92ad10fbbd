#!/usr/bin/env python3
"""Where the batched search spends its time: beam and greedy search seconds on encoder outputs computed
once, their ratio, and the search's cProfile (by own time: the prediction network's LSTM step, the
joint, top-k, merging, the Python of the frame loop).

    cd egs/an4/asr1   # model configs hold paths relative to the recipe
    python ../../../bench/profile_search.py --exp exp/asr_train_hat_iam_bpe30_seed2024 --data dump/raw/test \\
        [--num_utts 30] [--batch_size 1] [--beam_size 4] [--top 25]
"""

import argparse
import cProfile
import pstats
import time
from pathlib import Path

import soundfile
import torch

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.search import SearchConfig, SearchCounters


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="training dir with config.yaml")
    parser.add_argument("--model", default="valid.wer.ave.pth")
    parser.add_argument("--data", type=Path, required=True, help="dump dir with wav.scp")
    parser.add_argument("--num_utts", type=int, default=30, help="first N utterances (sorted ids)")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--max_sym_per_frame", type=int, default=SearchConfig.max_sym_per_frame)
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=25, help="profile rows")
    args = parser.parse_args()
    torch.set_num_threads(args.num_threads)
    searches = {
        "beam": SearchConfig(beam_size=args.beam_size, max_sym_per_frame=args.max_sym_per_frame),
        "greedy": SearchConfig(search_type="greedy", max_sym_per_frame=args.max_sym_per_frame),
    }
    decoders = {name: HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, search_config=config)
                for name, config in searches.items()}
    model = decoders["beam"].model
    wavs = read_table(args.data / "wav.scp")
    keys = sorted(wavs)[: args.num_utts]
    encoded = []
    with torch.no_grad():
        for start in range(0, len(keys), args.batch_size):
            audio = [torch.from_numpy(soundfile.read(wavs[k], dtype="float32")[0]) for k in keys[start : start + args.batch_size]]
            lengths = torch.tensor([a.numel() for a in audio])
            encoded.append(model.encode(torch.nn.utils.rnn.pad_sequence(audio, batch_first=True), lengths))

    def run(name):
        tic = time.perf_counter()
        for enc_out, enc_lens in encoded:
            decoders[name].search_encoded(enc_out, enc_lens, SearchCounters.for_lengths(enc_lens))
        return time.perf_counter() - tic

    seconds = {name: run(name) for name in decoders}
    frames = sum(int(lens.sum()) for _, lens in encoded)
    print(f"{len(keys)} utterances, {frames} encoder frames, batch {args.batch_size}, {args.num_threads} thread(s): "
          f"beam {args.beam_size} {seconds['beam']:.2f} s, greedy {seconds['greedy']:.2f} s, "
          f"beam / greedy {seconds['beam'] / seconds['greedy']:.2f}")
    profile = cProfile.Profile()
    profile.enable()
    run("beam")
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
