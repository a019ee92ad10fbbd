#!/usr/bin/env python3
"""Streams side by side: the compute of streaming a test set one stream at a time against B streams at once.

Both decode every utterance in pieces of one chunk's duration through
``HATSpeech2TextStreaming.decode_batch``: with batches of 1 (a stream at a time, as a live stream at
batch 1), and with batches of ``--batch_size`` utterances streamed side by side (each piece one
batched pass of the frontend and encoder and one search step of all the streams, as a server that
ticks its streams). Each row is the median of 3 passes in rotated order after a warm-up; speed-ups
are within this run. The hypotheses of the two must be the same (counted).

    cd egs/an4/asr1
    python ../../../bench/streaming_batch.py --exp exp/asr_train_hat_iam_streaming_bpe30_seed1 \\
        --data dump/raw/test --chunk_sizes 4 16 --batch_size 8 --num_threads 1
"""

import statistics
import time

import soundfile
import torch

from search_options import search_bench_parser

from espnet_hatiam.bin.hat_asr_streaming import HATSpeech2TextStreaming
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.scoring.error_rate import error_counts
from espnet_hatiam.search import SearchConfig


def decode(recognizer: HATSpeech2TextStreaming, audio, batch_size: int):
    """Texts of every utterance, streamed in batches of ``batch_size``, and the seconds it took."""
    texts = []
    tic = time.perf_counter()
    for start in range(0, len(audio), batch_size):
        waves = [torch.from_numpy(a) for a in audio[start: start + batch_size]]
        lengths = torch.tensor([w.numel() for w in waves])
        results = recognizer.decode_batch(torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths)
        texts += [nbest[0][0] if nbest else "" for nbest in results]
    return texts, time.perf_counter() - tic


def main():
    parser = search_bench_parser(__doc__, num_utts=130, batch_size=8)
    parser.add_argument("--chunk_sizes", type=int, nargs="+", default=[4, 16], help="encoder frames per chunk")
    args = parser.parse_args()
    if args.batch_size < 2:
        parser.error(f"--batch_size {args.batch_size}: side by side needs at least 2 streams")
    torch.set_num_threads(args.num_threads)
    refs, wavs = read_table(args.data / "text"), read_table(args.data / "wav.scp")
    keys = sorted(wavs)[: args.num_utts]
    audio = [soundfile.read(wavs[k], dtype="float32")[0] for k in keys]
    audio_seconds = sum(len(a) for a in audio) / 16000
    searches = {"beam": SearchConfig(beam_size=args.beam_size, max_sym_per_frame=args.max_sym_per_frame),
                f"dual {args.threshold:g}": SearchConfig(beam_size=args.beam_size, max_sym_per_frame=args.max_sym_per_frame,
                                                         iam_blank_threshold=args.threshold,
                                                         hat_blank_threshold=args.threshold)}
    print(f"{len(keys)} utterances of {args.data} ({audio_seconds:.0f} s), model {args.exp / args.model}, "
          f"{args.num_threads} thread(s), beam {args.beam_size}; median of 3 passes")
    print(f"| search | chunk ms | WER % | RTF, a stream at a time | RTF, {args.batch_size} side by side | speed-up "
          "| same hypotheses |")
    print("|---|---|---|---|---|---|---|")
    for chunk in args.chunk_sizes:
        for name, config in searches.items():
            recognizer = HATSpeech2TextStreaming(args.exp / "config.yaml", args.exp / args.model, search_config=config,
                                                 chunk_size=chunk)
            runs = {1: [], args.batch_size: []}
            decode(recognizer, audio[:2], 2)  # warm-up
            for repeat in range(3):
                for batch in (list(runs) if repeat % 2 == 0 else list(reversed(runs))):
                    texts, seconds = decode(recognizer, audio, batch)
                    runs[batch].append((seconds, texts))
            alone, together = (statistics.median(s for s, _ in runs[b]) for b in runs)
            texts_alone, texts_together = runs[1][0][1], runs[args.batch_size][0][1]
            wer = error_counts([refs[k] for k in keys], texts_alone, "word")["Err"]
            same = sum(a == b for a, b in zip(texts_alone, texts_together))
            print(f"| {name} | {recognizer.chunk_seconds * 1000:.0f} | {wer:.2f} | {alone / audio_seconds:.4f} "
                  f"| {together / audio_seconds:.4f} | {alone / together:.2f}x | {same}/{len(keys)} |", flush=True)


if __name__ == "__main__":
    main()
