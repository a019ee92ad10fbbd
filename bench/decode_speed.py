#!/usr/bin/env python3
"""Decoding speed and accuracy of every search on one model and test set, in one run.

Each batch of utterances is encoded once (the encoder time is the floor every row shares), then
decoded by every row: ESPnet's BeamSearchTransducer on the same model in each of its algorithms
(default, alsd, tsd, nsc, maes) and greedy (beam 1), and this project's greedy and beam search
plain, with IAM frame skipping, with HAT-blank thresholding and with both (dual), and with
``--expansion_beams`` the beam search with those expansion beams (plain and dual), and with ``--row_plans``
in those row plans (plain and dual; the other rows take ``auto``'s: compiled on the CPU). Same process,
same threads, same device for all rows; on CUDA the clock is read after synchronising.

Timing: one warm-up pass of every row over the first batch, then ``--repeats`` passes over all
batches, the rows in an order rotated by one each pass; a row's seconds are the median of its
passes. Every row fills the same counters (no extra pass for the blank synchrony); ESPnet's
searches are built before the timed passes.

    cd egs/synth_en/asr1   # model configs hold paths relative to the recipe
    python ../../../bench/decode_speed.py --exp exp/asr_train_demo_bpe100 \\
        --data dump/raw/test --num_utts 100 --batch_size 1 --num_threads 1 [--device cuda]
"""

import gc
import statistics
import sys
import time
from typing import List

import soundfile
import torch

from search_options import hold_threads, search_bench_parser

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.scoring.error_rate import error_counts
from espnet_hatiam.search import SearchConfig, SearchCounters, decode_encoded
from espnet_hatiam.search.config import ESPNET_SEARCH_TYPES


def rows(beam: int, theta: float, max_sym: int, espnet_types, expansion_beam: float, expansion_beams=(),
         row_plans=()):
    """(name, SearchConfig, name of the plain row it is compared with) of the table."""
    out = []
    if espnet_types:
        out += [(f"ESPnet {algo} beam {beam}", SearchConfig(search_type="espnet", espnet_search_type=algo,
                                                             beam_size=beam), f"beam {beam}")
                for algo in espnet_types]
        out.append(("ESPnet greedy", SearchConfig(search_type="espnet", beam_size=1), "greedy"))
    for kind, tag in (("greedy", "greedy"), ("beam", f"beam {beam}")):
        size = 1 if kind == "greedy" else beam
        for suffix, iam, hat in (("", 1.0, 1.0), (" + IAM skip", theta, 1.0), (" + HAT blank", 1.0, theta),
                                 (" + dual", theta, theta)):
            out.append((tag + suffix, SearchConfig(search_type=kind, beam_size=size, max_sym_per_frame=max_sym,
                                                   expansion_beam=expansion_beam, iam_blank_threshold=iam,
                                                   hat_blank_threshold=hat), tag))
    for plan in row_plans:
        for suffix, theta_both in (("", 1.0), (" + dual", theta)):
            out.append((f"beam {beam}, row plan {plan}{suffix}",
                        SearchConfig(beam_size=beam, max_sym_per_frame=max_sym, expansion_beam=expansion_beam,
                                     iam_blank_threshold=theta_both, hat_blank_threshold=theta_both, row_plan=plan),
                        f"beam {beam}"))
    for width in expansion_beams:
        for suffix, theta_both in (("", 1.0), (" + dual", theta)):
            out.append((f"beam {beam}, expansion beam {width:g}{suffix}",
                        SearchConfig(beam_size=beam, max_sym_per_frame=max_sym, expansion_beam=width,
                                     iam_blank_threshold=theta_both, hat_blank_threshold=theta_both), f"beam {beam}"))
    return out


def main():
    parser = search_bench_parser(__doc__, num_utts=500, batch_size=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no_espnet", action="store_true", help="skip ESPnet's (slow) searches")
    parser.add_argument("--espnet_types", nargs="+", default=list(ESPNET_SEARCH_TYPES), choices=ESPNET_SEARCH_TYPES,
                        help="ESPnet's search types to run (besides its greedy search)")
    parser.add_argument("--expansion_beam", type=float, default=SearchConfig.expansion_beam,
                        help="expansion beam of the beam rows (inf: none)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; a row's time is their median")
    parser.add_argument("--expansion_beams", type=float, nargs="*", default=[],
                        help="more beam rows (plain and dual) with these expansion beams (nats)")
    parser.add_argument("--row_plans", nargs="*", default=[], choices=("select", "mask", "compiled"),
                        help="more beam rows (plain and dual) with these row plans (the others: auto's)")
    args = parser.parse_args()
    hold_threads(args.num_threads)

    table = rows(args.beam_size, args.threshold, args.max_sym_per_frame, [] if args.no_espnet else args.espnet_types,
                 args.expansion_beam, args.expansion_beams, args.row_plans)
    speech2text = HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, device=args.device)
    model = speech2text.model
    refs = read_table(args.data / "text")
    wavs = read_table(args.data / "wav.scp")
    keys = sorted(wavs)[: args.num_utts]
    batches, encoder_seconds, audio_seconds = [], 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(keys), args.batch_size):
            batch = keys[start : start + args.batch_size]
            audio = [torch.from_numpy(soundfile.read(wavs[k], dtype="float32")[0]) for k in batch]
            lengths = torch.tensor([a.numel() for a in audio])
            speech = torch.nn.utils.rnn.pad_sequence(audio, batch_first=True).to(args.device)
            audio_seconds += float(lengths.sum()) / 16000
            if not batches:  # warm-up
                model.encode(speech, lengths.to(args.device))
            tic = clock(args.device)
            enc_out, enc_lens = model.encode(speech, lengths.to(args.device))
            encoder_seconds += clock(args.device) - tic
            batches.append((batch, enc_out, enc_lens))

    def decode(config, batch_items, hyps=None, totals=None):
        """Search seconds of one row over ``batch_items``; fills ``hyps`` and ``totals`` if given."""
        seconds = 0.0
        gc.collect()  # the garbage of the row before (ESPnet's searches make many objects) is not this row's time
        gc.disable()
        with torch.no_grad():
            for batch, enc_out, enc_lens in batch_items:
                counters = SearchCounters.for_lengths(enc_lens)
                tic = clock(args.device)
                nbests = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, config, counters,
                                        blank_agreement_pass=False)
                seconds += clock(args.device) - tic
                if hyps is not None:
                    for key, nbest in zip(batch, nbests):
                        hyps[key] = speech2text.result(nbest[0])[0]
                    for k, v in counters.totals().items():
                        totals[k] = totals.get(k, 0) + v
        gc.enable()
        return seconds

    hyps = {name: {} for name, _, _ in table}
    totals = {name: {} for name, _, _ in table}
    for name, config, _ in table:  # warm-up (and ESPnet's searches built)
        decode(config, batches[:1])
    passes = {name: [] for name, _, _ in table}
    for repeat in range(args.repeats):  # the first pass also collects the results and counters
        for name, config, _ in table[repeat % len(table):] + table[: repeat % len(table)]:
            passes[name].append(decode(config, batches, *((hyps[name], totals[name]) if repeat == 0 else ())))
        print(f"pass {repeat + 1} of {args.repeats} done", file=sys.stderr, flush=True)
    seconds = {name: statistics.median(times) for name, times in passes.items()}

    print(f"{len(keys)} utterances of {args.data} ({audio_seconds:.0f} s of audio), model {args.exp / args.model}")
    print(f"device {args.device}, batch size {args.batch_size}, {args.num_threads} torch thread(s), "
          f"theta = {args.threshold}, max_sym_per_frame {args.max_sym_per_frame}, "
          f"expansion beam {args.expansion_beam:g}, median of {args.repeats} passes; "
          f"encoder: {encoder_seconds:.2f} s (RTF {encoder_seconds / audio_seconds:.4f}), the floor of every row")
    print("| search | WER % | Del % | search s | search / encoder | RTF | speed-up vs plain | frame skip "
          "| frames searched | label proj | joint evals / kept frame |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, _, plain_name in table:
        counts = error_counts([refs[k] for k in keys], [hyps[name][k] for k in keys], "word")
        plain = seconds[plain_name]
        t = totals[name]
        evals_per_frame = f"{t['joint_evaluations'] / t['frames_kept']:.2f}" if t["joint_evaluations"] else "-"
        print(
            f"| {name} | {counts['Err']:.2f} | {counts['Del']:.2f} | {seconds[name]:.3f} | "
            f"{seconds[name] / encoder_seconds:.2f} | "
            f"{(encoder_seconds + seconds[name]) / audio_seconds:.4f} | {plain / seconds[name]:.2f}x | "
            f"{100 * (1 - t['frames_kept'] / t['frames']):.1f} % | "
            f"{_percent(t['frames_searched'], t['frames'])} | "
            f"{_percent(t['label_projections'], t['joint_evaluations'])} | {evals_per_frame} |"
        )
    for line in plan_agreement(table, hyps):
        print(line)


def plan_agreement(table, hyps) -> List[str]:
    """For each ``--row_plans`` row, how many utterances' hypotheses differ from the row of the same search in
    ``auto``'s plan (same thresholds): ``["beam 4, row plan select: 0 of 117 hypotheses differ from beam 4's", ...]``."""
    lines = []
    for name, config, plain_name in table:
        if ", row plan " not in name:
            continue
        auto_name = plain_name + (" + dual" if name.endswith(" + dual") else "")
        differ = sum(hyps[name][key] != hyps[auto_name][key] for key in hyps[name])
        lines.append(f"{name}: {differ} of {len(hyps[name])} hypotheses differ from {auto_name}'s")
    return lines


def clock(device: str) -> float:
    """Wall time once the device's queued work is done."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _percent(part: int, whole: int) -> str:
    """ESPnet's search does not count joint evaluations: '-' there."""
    return f"{100 * part / whole:.1f} %" if whole else "-"


if __name__ == "__main__":
    main()
