#!/usr/bin/env python3
"""The search on one long recording against the same audio as short utterances: cost per frame and memory.

The test set's utterances are encoded one at a time; their encoder outputs, one after another
(``--repeat`` times over), make one long recording's encoder output. The beam search (the
host row plan, ``--row_plan``) decodes the utterances one at a time, then the long recording in
one call. A search whose per-round work grows with the hypotheses' length (label sequences
copied, hashed or compared label by label) costs more per frame on the long recording; one that
does not costs the same. Memory: the Python heap's peak during each (``tracemalloc``, in a
separate pass, as it slows Python down). The plain beam search: ``--batch_size`` and ``--threshold`` of the
shared options are not used.

    cd egs/an4/asr1
    python ../../../bench/long_form.py --exp exp/asr_train_hat_iam_bpe30_seed1 --data dump/raw/test --repeat 4
"""

import time
import tracemalloc

import soundfile
import torch

from search_options import hold_threads, search_bench_parser

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.search import SearchConfig, SearchCounters


def main():
    parser = search_bench_parser(__doc__, num_utts=1000, batch_size=1)
    parser.add_argument("--repeat", type=int, default=4, help="the long recording is the utterances this many times")
    parser.add_argument("--row_plan", default="select", choices=("select", "mask", "compiled"))
    args = parser.parse_args()
    hold_threads(args.num_threads)
    config = SearchConfig(beam_size=args.beam_size, max_sym_per_frame=args.max_sym_per_frame, row_plan=args.row_plan)
    decoder = HATSpeech2Text(args.exp / "config.yaml", args.exp / args.model, search_config=config)
    wavs = read_table(args.data / "wav.scp")
    encoded = []
    with torch.no_grad():
        for key in sorted(wavs)[: args.num_utts]:
            audio = torch.from_numpy(soundfile.read(wavs[key], dtype="float32")[0])
            enc_out, _ = decoder.model.encode(audio.unsqueeze(0), torch.tensor([audio.numel()]))
            encoded.append(enc_out)
    long = torch.cat(encoded * args.repeat, 1)

    def search(enc_out):
        lens = torch.tensor([enc_out.size(1)])
        return decoder.search_encoded(enc_out, lens, SearchCounters.for_lengths(lens))

    def short_pass():
        for enc_out in encoded:
            search(enc_out)

    def long_pass():
        return search(long)

    rows = []
    for name, run, frames in (("utterances one at a time", short_pass, sum(e.size(1) for e in encoded)),
                              (f"one recording of {args.repeat} x the utterances", long_pass, long.size(1))):
        tic = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - tic
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append((name, frames, seconds, peak))
    labels = len(result[0][0].token_ids) if result and result[0] else 0
    print(f"{len(encoded)} utterances of {args.data}, model {args.exp / args.model}; beam {args.beam_size}, "
          f"row plan {args.row_plan}, {args.num_threads} thread(s); the long recording's best hypothesis: {labels} labels")
    print("| search | frames | search s | us / frame | Python heap peak MB |")
    print("|---|---|---|---|---|")
    for name, frames, seconds, peak in rows:
        print(f"| {name} | {frames} | {seconds:.2f} | {seconds / frames * 1e6:.0f} | {peak / 1e6:.1f} |")
    print(f"cost per frame, long / short: {rows[1][2] / rows[1][1] / (rows[0][2] / rows[0][1]):.2f}x")


if __name__ == "__main__":
    main()
