#!/usr/bin/env python3
"""Peak memory and time of decoding one long recording, for several durations, each in a fresh process.

The recording is real speech: whole utterances of the data set, in sorted order and repeated if need be,
joined until the duration is reached; its reference is their transcripts, joined. A process loads the
model, reads its RSS, decodes the recording once (`HATSpeech2Text`, the search of `--decode_config` or
beam 4; recordings over `--encode_window_seconds` + 2 x context in windows, `models.long_form`; 0 encodes
in one pass, whose memory grows with the square of the length), and reports its peak RSS
(``getrusage``), the growth over the loaded model, time and WER.

    cd egs/an4/asr1   # model configs hold paths relative to the recipe
    python ../../../bench/decode_memory.py --exp exp/asr_train_hat_iam_bpe30_seed2024 --data dump/raw/test \\
        --seconds 10 60 300
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def decode_once(exp: Path, model: str, data: Path, seconds: float, config: dict, num_threads: int,
                window: float, context: float) -> dict:
    import numpy as np
    import soundfile
    import torch

    from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
    from espnet_hatiam.data.kaldi import read_table
    from espnet_hatiam.scoring.error_rate import error_counts
    from espnet_hatiam.search import SearchConfig

    torch.set_num_threads(num_threads)
    speech2text = HATSpeech2Text(exp / "config.yaml", exp / model, search_config=SearchConfig(**config),
                                 encode_window_seconds=window, encode_context_seconds=context)
    wavs, texts = read_table(data / "wav.scp"), read_table(data / "text")
    pieces, words, total, rate = [], [], 0, 16000
    while total < seconds * rate:
        for key in sorted(wavs):
            audio, rate = soundfile.read(wavs[key], dtype="float32")
            pieces.append(audio)
            words.append(texts[key])
            total += len(audio)
            if total >= seconds * rate:
                break
    speech = np.concatenate(pieces)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tic = time.perf_counter()
    text = speech2text(torch.from_numpy(speech))[0][0]
    elapsed = time.perf_counter() - tic
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    duration = len(speech) / rate
    return {"seconds": duration, "model_rss_mb": before / 1024, "peak_rss_mb": peak / 1024,
            "growth_mb": (peak - before) / 1024, "decode_s": elapsed, "rtf": elapsed / duration,
            "wer": error_counts([" ".join(words)], [text], "word")["Err"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="training dir with config.yaml")
    parser.add_argument("--model", default="valid.wer.ave.pth")
    parser.add_argument("--data", type=Path, required=True, help="dump dir whose wav.scp gives the speech")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 300])
    parser.add_argument("--decode_config", type=Path, default=None, help="yaml of SearchConfig options")
    parser.add_argument("--num_threads", type=int, default=1)
    parser.add_argument("--encode_window_seconds", type=float, default=30.0, help="0: encode in one pass")
    parser.add_argument("--encode_context_seconds", type=float, default=5.0)
    parser.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)  # the child's duration
    args = parser.parse_args()
    config = {"beam_size": 4}
    if args.decode_config:
        import yaml

        config = yaml.safe_load(args.decode_config.read_text())
    if args.one is not None:
        print(json.dumps(decode_once(args.exp, args.model, args.data, args.one, config, args.num_threads,
                                     args.encode_window_seconds, args.encode_context_seconds)))
        return
    print(f"model {args.exp / args.model}, search {config}, {args.num_threads} torch thread(s), one process each; "
          f"encoder windows {args.encode_window_seconds} s + {args.encode_context_seconds} s context (0: one pass)")
    print("| recording s | model RSS MB | peak RSS MB | growth MB | decode s | RTF | WER % |")
    print("|---|---|---|---|---|---|---|")
    for seconds in args.seconds:
        child = subprocess.run([sys.executable, *sys.argv, "--one", str(seconds)], capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"{seconds} s: the decoding process failed:\n{child.stderr[-2000:]}")
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"| {r['seconds']:.0f} | {r['model_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['growth_mb']:.0f} | "
              f"{r['decode_s']:.1f} | {r['rtf']:.3f} | {r['wer']:.2f} |")


if __name__ == "__main__":
    main()
