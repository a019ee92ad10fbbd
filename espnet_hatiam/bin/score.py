#!/usr/bin/env python3
"""Score one decoding directory: WER/CER with jiwer, RTF and skip ratios -> ``DIR/score.json``.

    python -m espnet_hatiam.bin.score --ref dump/raw/test/text --dir exp/asr_x/decode_dual/test
"""

import argparse
from pathlib import Path

from espnet_hatiam.scoring.decoding import score_decoding


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=Path, required=True, help="Kaldi text with the references")
    parser.add_argument("--dir", type=Path, required=True, help="decoding dir with 1best_recog/text")
    args = parser.parse_args(cmd)
    result = score_decoding(args.ref, args.dir)
    print(f"{args.dir}: WER {result['wer']['Err']} % CER {result['cer']['Err']} % RTF {result['rtf']}")


if __name__ == "__main__":
    main()
