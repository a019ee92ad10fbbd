#!/usr/bin/env python3
"""Train a sentencepiece model on a Kaldi ``text`` file (the transcripts, without utterance ids).

Example:
    python -m espnet_hatiam.bin.spm_train --text dump/raw/train/text --model_prefix data/token_list/bpe_unigram300/bpe \
        --vocab_size 300
"""

import argparse
import tempfile

from espnet_hatiam.data.kaldi import read_table


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", required=True, help="Kaldi text file: utt-id transcript")
    parser.add_argument("--model_prefix", required=True, help="writes PREFIX.model and PREFIX.vocab")
    parser.add_argument("--vocab_size", type=int, required=True)
    parser.add_argument("--model_type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    parser.add_argument("--character_coverage", type=float, default=1.0)
    args = parser.parse_args(cmd)

    import sentencepiece

    transcripts = [text for text in read_table(args.text).values() if text]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as sentences:
        sentences.writelines(text + "\n" for text in transcripts)
        sentences.flush()
        sentencepiece.SentencePieceTrainer.train(
            input=sentences.name,
            model_prefix=args.model_prefix,
            vocab_size=args.vocab_size,
            model_type=args.model_type,
            character_coverage=args.character_coverage,
            input_sentence_size=100_000_000,
            minloglevel=1,
        )


if __name__ == "__main__":
    main()
