#!/usr/bin/env python3
"""Decoding speed and accuracy of every search on one model and test set, in one run.

Each batch of utterances is encoded once (the encoder time is the floor every row
shares), then decoded by every row: ESPnet's BeamSearchTransducer on the same model,
and this project's search plain, with IAM frame skipping, with HAT-blank thresholding
and with both (dual), greedy and beam. Same process, same threads for all rows.

    cd egs/speechocean762/asr1   # model configs hold paths relative to the recipe
    python ../../../bench/decode_speed.py --exp exp/asr_train_hat_iam_bpe300 \\
        --data dump/raw/test --num_utts 500 --num_threads 1
"""

import argparse
import time
from pathlib import Path

import soundfile
import torch

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.bin.score import error_counts, read_text
from espnet_hatiam.search import SearchCounters


def rows(beam: int, theta: float, with_espnet: bool):
    """(name, search, beam, iam threshold, hat threshold) of the table."""
    out = []
    for size in (1, beam):
        tag = "greedy" if size == 1 else f"beam {size}"
        if with_espnet:
            out.append((f"ESPnet {tag}", "espnet", size, 1.0, 1.0))
        out += [
            (f"HAT {tag}", "hat", size, 1.0, 1.0),
            (f"HAT {tag} + IAM skip", "hat", size, theta, 1.0),
            (f"HAT {tag} + HAT blank", "hat", size, 1.0, theta),
            (f"HAT {tag} + dual", "hat", size, theta, theta),
        ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="training dir with config.yaml")
    parser.add_argument("--model", default="valid.wer.best.pth")
    parser.add_argument("--data", type=Path, required=True, help="dump dir with wav.scp and text")
    parser.add_argument("--num_utts", type=int, default=500, help="first N utterances (sorted ids)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.95, help="theta_IAM and theta_HAT")
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--no_espnet", action="store_true", help="skip ESPnet's (slow) search")
    args = parser.parse_args()
    torch.set_num_threads(args.num_threads)

    table = rows(args.beam_size, args.threshold, not args.no_espnet)
    decoders = {
        name: HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, beam_size=beam, search=search,
                             iam_blank_threshold=iam, hat_blank_threshold=hat)
        for name, search, beam, iam, hat in table
    }
    refs = read_text(args.data / "text")
    wavs = read_text(args.data / "wav.scp")
    keys = sorted(wavs)[: args.num_utts]
    model = next(iter(decoders.values())).model
    hyps = {name: {} for name in decoders}
    seconds = {name: 0.0 for name in decoders}
    totals = {name: {} for name in decoders}
    encoder_seconds = audio_seconds = 0.0
    for start in range(0, len(keys), args.batch_size):
        batch = keys[start : start + args.batch_size]
        audio = [torch.from_numpy(soundfile.read(wavs[k], dtype="float32")[0]) for k in batch]
        lengths = torch.tensor([a.numel() for a in audio])
        speech = torch.nn.utils.rnn.pad_sequence(audio, batch_first=True)
        audio_seconds += float(lengths.sum()) / 16000
        with torch.no_grad():
            tic = time.perf_counter()
            enc_out, enc_lens = model.encode(speech, lengths)
            encoder_seconds += time.perf_counter() - tic
            for name, decoder in decoders.items():
                counters = SearchCounters.for_lengths(enc_lens)
                tic = time.perf_counter()
                nbests = decoder.search_encoded(enc_out, enc_lens, counters)
                seconds[name] += time.perf_counter() - tic
                for key, nbest in zip(batch, nbests):
                    hyps[name][key] = decoder.result(nbest[0])[0]
                for k, v in counters.totals().items():
                    totals[name][k] = totals[name].get(k, 0) + v

    print(f"{len(keys)} utterances of {args.data} ({audio_seconds:.0f} s of audio), model {args.exp / args.model}")
    print(f"batch size {args.batch_size}, {args.num_threads} torch thread(s), theta = {args.threshold}; "
          f"encoder: {encoder_seconds:.1f} s (RTF {encoder_seconds / audio_seconds:.4f}), the floor of every row")
    print("| search | WER % | search s | search / encoder | RTF | speed-up vs HAT plain | frame skip | label proj |")
    print("|---|---|---|---|---|---|---|---|")
    for name, _, beam, _, _ in table:
        wer = error_counts([refs[k] for k in keys], [hyps[name][k] for k in keys], "word")["Err"]
        plain = seconds[f"HAT {'greedy' if beam == 1 else f'beam {beam}'}"]
        t = totals[name]
        print(
            f"| {name} | {wer:.2f} | {seconds[name]:.2f} | {seconds[name] / encoder_seconds:.2f} | "
            f"{(encoder_seconds + seconds[name]) / audio_seconds:.4f} | {plain / seconds[name]:.2f}x | "
            f"{100 * (1 - t['frames_kept'] / t['frames']):.1f} % | "
            f"{_percent(t['label_projections'], t['joint_evaluations'])} |"
        )


def _percent(part: int, whole: int) -> str:
    """ESPnet's search does not count joint evaluations: '-' there."""
    return f"{100 * part / whole:.1f} %" if whole else "-"


if __name__ == "__main__":
    main()
