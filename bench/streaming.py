#!/usr/bin/env python3
"""Streaming HAT+IAM: WER, compute per chunk, RTF and emission delay at several chunk sizes, in one run.

Each utterance is fed to :class:`HATSpeech2TextStreaming` one chunk of audio per call (the chunk's
duration of samples), as a live stream at batch 1 would be, by each search in turn (paired timing); a call's compute is its features,
encoder and search time. Rows: every chunk size, with the plain beam search and with dual blank
thresholding, and the same model decoded offline (whole-utterance attention).

- algorithmic latency: the chunk plus the look-ahead past its end (``HATSpeech2TextStreaming.lookahead_seconds``:
  36 ms at conv2d, 10 ms hops, 512-sample windows);
- compute per chunk: p50 / p95 over every call of every utterance (ms), and against the chunk's duration;
- emission delay: for each token of the final hypothesis that the offline model's greedy alignment
  also emits (matched by ``difflib`` on the token ids), the time at which it first appeared, for good,
  in the stream's partial best (the end of the chunk that produced it plus the look-ahead: when a live
  stream has the audio to compute that chunk), less the end of the frame the offline alignment emits it on;
  mean and p90 (ms). ``--alignment_exp`` names the offline model (default: this one, offline);
- exactness: how many streams end with the hypothesis of the offline search over the same model's
  whole-utterance encoding under the same chunk mask.

    cd egs/an4/asr1
    python ../../../bench/streaming.py --exp exp/asr_train_hat_iam_streaming_bpe30_seed2024 \\
        --data dump/raw/test --chunk_sizes 4 8 16 --num_threads 1 [--alignment_exp exp/asr_train_hat_iam_bpe30_seed2024]
"""

import difflib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from search_options import hold_threads, search_bench_parser

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.bin.hat_asr_streaming import HATSpeech2TextStreaming
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.scoring.error_rate import error_counts
from espnet_hatiam.models.feature_stream import whole_features
from espnet_hatiam.models.long_form import subsampling_factor
from espnet_hatiam.scoring.plots import latency_accuracy
from espnet_hatiam.search import SearchConfig, decode_encoded
from espnet_hatiam.search.greedy import greedy_search


def offline_alignment(speech2text: HATSpeech2Text, wave: torch.Tensor):
    """Token ids of the offline greedy path and the end time (s) of the frame each is emitted on."""
    model = speech2text.model
    enc_out, enc_lens = model.encode(wave.unsqueeze(0), torch.tensor([wave.numel()]))
    frame_labels = torch.zeros(enc_out.shape[:2], dtype=torch.long)
    hyp = greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, frame_labels=frame_labels)[0]
    frame_seconds = subsampling_factor(model.encoder) * model.frontend.stft.hop_length / speech2text.fs
    times = [(t + 1) * frame_seconds for t, n in enumerate(frame_labels[0].tolist()) for _ in range(n)]
    return [i for i in hyp.token_ids if i != 0], times


def stream(recognizer: HATSpeech2TextStreaming, wave: np.ndarray):
    """Feed one chunk of audio per call: the final text and token ids, each call's compute and search seconds,
    the time each final token first appeared for good, and the stream's counters."""
    step = round(recognizer.chunk_seconds * recognizer.fs)
    frame_seconds = recognizer.chunk_seconds / recognizer.chunk_size
    recognizer.reset()
    computes, search, partials, text = [], [], [], ""
    for begin in range(0, len(wave), step):
        final = begin + step >= len(wave)
        tic = time.perf_counter()
        nbest = recognizer(wave[begin: begin + step], is_final=final)
        computes.append(time.perf_counter() - tic)
        search.append(recognizer.last_timing["search_seconds"])
        text = nbest[0][0] if nbest else ""
        # when this call's last chunk could have been computed live: its end plus the look-ahead (at the end: the end)
        ready = recognizer.encoder_stream.frames_out * frame_seconds + recognizer.lookahead_seconds
        partials.append((min(ready, len(wave) / recognizer.fs) if not final else len(wave) / recognizer.fs,
                         nbest[0][2] if nbest else []))
    tokens = partials[-1][1]
    emitted = []
    for i in range(len(tokens)):  # the earliest call after which the prefix up to token i never changed again
        when = partials[-1][0]
        for seconds, partial in reversed(partials):
            if partial[: i + 1] != tokens[: i + 1]:
                break
            when = seconds
        emitted.append(when)
    return text, tokens, computes, search, emitted, recognizer.last_counters


def chunked_offline(recognizer: HATSpeech2TextStreaming, wave: np.ndarray):
    """Token ids of the offline search over the whole utterance's chunked encoder output (the stream's target)."""
    model = recognizer.model
    feats, lengths = whole_features(model.frontend, model.normalize, torch.from_numpy(wave))
    enc_out, enc_lens, _ = model.encoder(feats, lengths, chunk_size=recognizer.chunk_size,
                                         num_left_chunks=recognizer.num_left_chunks)
    nbest = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, recognizer.config)[0]
    return [i for i in nbest[0].token_ids if i != 0] if nbest else []


def main():
    parser = search_bench_parser(__doc__, num_utts=130, batch_size=1)
    parser.add_argument("--chunk_sizes", type=int, nargs="+", default=[4, 8, 16], help="encoder frames per chunk")
    parser.add_argument("--num_left_chunks", type=int, default=None)
    parser.add_argument("--alignment_exp", type=Path, default=None, help="offline model whose greedy alignment is the reference")
    parser.add_argument("--alignment_model", default="valid.wer.ave.pth")
    parser.add_argument("--output", type=Path, default=None, help="also write the rows (.json) and the WER-latency plot (.png) here")
    args = parser.parse_args()
    hold_threads(args.num_threads)
    refs, wavs = read_table(args.data / "text"), read_table(args.data / "wav.scp")
    keys = sorted(wavs)[: args.num_utts]
    audio = {k: soundfile.read(wavs[k], dtype="float32")[0] for k in keys}
    audio_seconds = sum(len(a) for a in audio.values()) / 16000
    align_exp = args.alignment_exp or args.exp
    aligner = HATSpeech2Text(align_exp / "config.yaml", align_exp / (args.alignment_model if args.alignment_exp
                                                                      else args.model), encode_window_seconds=0)
    with torch.no_grad():
        alignments = {k: offline_alignment(aligner, torch.from_numpy(audio[k])) for k in keys}
    searches = [("beam", SearchConfig(beam_size=args.beam_size, max_sym_per_frame=args.max_sym_per_frame)),
                (f"dual {args.threshold:g}", SearchConfig(beam_size=args.beam_size, max_sym_per_frame=args.max_sym_per_frame,
                                                           iam_blank_threshold=args.threshold,
                                                           hat_blank_threshold=args.threshold))]
    print(f"{len(keys)} utterances of {args.data} ({audio_seconds:.0f} s), model {args.exp / args.model}, "
          f"{args.num_threads} thread(s), batch 1, beam {args.beam_size}; emission delay against the greedy "
          f"alignment of {align_exp}")
    print("| decoding | chunk ms | latency ms | WER % | compute p50 ms | p95 ms | p95 / chunk | RTF "
          "| search ms / chunk (mean) | frames searched | delay mean ms | delay p90 ms | final = offline over the chunked encoder |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name, config in searches:
        offline = HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, search_config=config,
                                 encode_window_seconds=0)
        tic = time.perf_counter()
        hyps = {k: offline(audio[k])[0][0] for k in keys}
        seconds = time.perf_counter() - tic
        wer = error_counts([refs[k] for k in keys], [hyps[k] for k in keys], "word")["Err"]
        print(f"| {name}, offline | - | - | {wer:.2f} | - | - | - | {seconds / audio_seconds:.4f} | - | - | - | - | - |")
        rows.append({"search": name, "chunk_ms": None, "wer": wer, "rtf": seconds / audio_seconds})
    for chunk in args.chunk_sizes:  # the searches take turns on each utterance (paired: drift hits both alike)
        recognizers = {name: HATSpeech2TextStreaming(args.exp / "config.yaml", args.exp / args.model, search_config=config,
                                                     chunk_size=chunk, num_left_chunks=args.num_left_chunks)
                       for name, config in searches}
        for recognizer in recognizers.values():
            stream(recognizer, audio[keys[0]])  # warm-up
        stats = {name: dict(computes=[], search_times=[], delays=[], hyps={}, finals={}, searched=0, frames=0)
                 for name in recognizers}
        for index, k in enumerate(keys):
            order = list(recognizers) if index % 2 == 0 else list(reversed(recognizers))
            for name in order:
                st = stats[name]
                st["hyps"][k], tokens, compute, search, emitted, counters = stream(recognizers[name], audio[k])
                st["finals"][k] = tokens
                st["computes"] += compute
                st["search_times"] += search
                st["searched"] += int(counters.frames_searched.sum())
                st["frames"] += int(counters.frames.sum())
                ref_tokens, ref_times = alignments[k]
                matcher = difflib.SequenceMatcher(a=tokens, b=ref_tokens, autojunk=False)
                for block in matcher.get_matching_blocks():
                    for j in range(block.size):
                        st["delays"].append(emitted[block.a + j] - ref_times[block.b + j])
        for name, recognizer in recognizers.items():
            st = stats[name]
            computes, search_times, delays = st["computes"], st["search_times"], st["delays"]
            wer = error_counts([refs[k] for k in keys], [st["hyps"][k] for k in keys], "word")["Err"]
            with torch.no_grad():
                same = sum(chunked_offline(recognizer, audio[k]) == st["finals"][k] for k in keys)
            chunk_ms = recognizer.chunk_seconds * 1000
            p50, p95 = np.percentile(computes, 50) * 1000, np.percentile(computes, 95) * 1000
            print(f"| {name} | {chunk_ms:.0f} | {chunk_ms + recognizer.lookahead_seconds * 1000:.0f} | {wer:.2f} "
                  f"| {p50:.1f} | {p95:.1f} | {p95 / chunk_ms:.3f} | {sum(computes) / audio_seconds:.4f} "
                  f"| {1000 * statistics.mean(search_times):.2f} | {100 * st['searched'] / max(st['frames'], 1):.1f} % "
                  f"| {_ms(delays, statistics.mean)} | {_ms(delays, lambda d: np.percentile(d, 90))} "
                  f"| {same}/{len(keys)} |", flush=True)
            rows.append({"search": name, "chunk_ms": chunk_ms, "latency_ms": chunk_ms + recognizer.lookahead_seconds * 1000,
                         "wer": wer, "compute_p50_ms": p50, "compute_p95_ms": p95, "rtf": sum(computes) / audio_seconds,
                         "search_ms_per_chunk": 1000 * statistics.mean(search_times), "frames_searched": st["searched"],
                         "frames": st["frames"], "matched_tokens": len(delays), "finals_equal_chunked_offline": same,
                         "delay_mean_ms": 1000 * statistics.mean(delays) if delays else None,
                         "delay_p90_ms": 1000 * float(np.percentile(delays, 90)) if delays else None})
        print(f"chunk {chunk} done", file=sys.stderr, flush=True)
    if args.output is not None:
        args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
        latency_accuracy({n: [(r["latency_ms"], r["wer"]) for r in rows if r["search"] == n and r["chunk_ms"]]
                          for n, _ in searches},
                         {r["search"]: r["wer"] for r in rows if r["chunk_ms"] is None}, args.output.with_suffix(".png"),
                         f"streaming HAT+IAM, {args.data.name}")


def _ms(delays, statistic) -> str:
    """A statistic of ``delays`` (s) in ms; '-' when no token matched the alignment."""
    return f"{1000 * float(statistic(delays)):.0f}" if delays else "-"


if __name__ == "__main__":
    main()
