r"""Paired bootstrap over utterances (Bisani and Ney, ICASSP 2004) for the WER difference of two systems.

    python -m espnet_hatiam.scoring.significance --ref dump/raw/test/text \
        --hyp_a exp/asr_a/decode_beam_valid.wer.ave/test/1best_recog/text \
        --hyp_b exp/asr_b/decode_beam_valid.wer.ave/test/1best_recog/text [--unit word] [--num_samples 10000]
"""

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from espnet_hatiam.scoring.error_rate import utterance_errors
from espnet_hatiam.scoring.text import read_pairs

_CHUNK = 1000  # resamples drawn at once: a (_CHUNK, U) index matrix


@dataclass
class Significance:
    """WERs (or CERs) in %; ``difference`` = wer_a - wer_b in points with its 95 % bootstrap interval; p: the
    two-sided p-value of :func:`seed_test`."""

    wer_a: float
    wer_b: float
    difference: float
    interval: Tuple[float, float]
    p: float

    def line(self, metric: str = "WER") -> str:
        lo, hi = self.interval
        return (f"A {metric} {self.wer_a:.2f} %, B {metric} {self.wer_b:.2f} %, difference {self.difference:.2f} "
                f"points, 95 % CI [{lo:.2f}, {hi:.2f}], two-sided p = {self.p:.4f}")


def seed_test(
    errors_a: Sequence[np.ndarray], errors_b: Sequence[np.ndarray], ref_lengths: np.ndarray,
    num_samples: int = 10000, seed: int = 0,
) -> Significance:
    """Bootstrap of the mean-over-seeds WER difference of A and B on the same U utterances.

    errors_a, errors_b: one (U,) error count array per training seed of each system (any number of seeds each);
    ref_lengths: (U,) reference lengths. Every resample draws U utterances with replacement and applies them to
    all seeds; its WER of a system is the mean over that system's seeds of the corpus WER. ``p`` is two-sided:
    twice the smaller share of resamples on either side of zero (a tie counts on both sides), at most 1; the
    chance, under resampling, of a difference at least this far from zero in either direction.
    """
    columns = np.stack([*errors_a, *errors_b, ref_lengths], axis=1).astype(np.float64)  # (U, Sa + Sb + 1)
    num_utts, num_a = len(ref_lengths), len(errors_a)

    def mean_wers(sums: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:  # (..., Sa + Sb + 1) -> two (...,)
        wers = 100.0 * sums[..., :-1] / np.maximum(sums[..., -1:], 1)
        return wers[..., :num_a].mean(-1), wers[..., num_a:].mean(-1)

    wer_a, wer_b = (float(w) for w in mean_wers(columns.sum(0)))
    rng = np.random.default_rng(seed)
    differences = []
    for start in range(0, num_samples, _CHUNK):
        drawn = rng.integers(0, num_utts, size=(min(_CHUNK, num_samples - start), num_utts))  # (n, U) utterances
        a, b = mean_wers(np.stack([column[drawn].sum(1) for column in columns.T], axis=1))
        differences.append(a - b)
    differences = np.concatenate(differences)
    lo, hi = np.percentile(differences, [2.5, 97.5])
    p = min(1.0, 2.0 * min(float((differences >= 0).mean()), float((differences <= 0).mean())))
    return Significance(wer_a, wer_b, wer_a - wer_b, (float(lo), float(hi)), p)


def bootstrap_test(
    errors_a: np.ndarray, errors_b: np.ndarray, ref_lengths: np.ndarray, num_samples: int = 10000, seed: int = 0,
) -> Significance:
    """Paired bootstrap of one decoding of A against one of B: (U,) error counts each, (U,) reference lengths."""
    return seed_test([errors_a], [errors_b], ref_lengths, num_samples, seed)


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", required=True, help="Kaldi text with the references")
    parser.add_argument("--hyp_a", required=True, help="Kaldi text of system A")
    parser.add_argument("--hyp_b", required=True, help="Kaldi text of system B")
    parser.add_argument("--unit", choices=["word", "char"], default="word")
    parser.add_argument("--num_samples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(cmd)
    try:
        _, refs, hyps_a = read_pairs(args.ref, args.hyp_a)
        _, _, hyps_b = read_pairs(args.ref, args.hyp_b)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    errors_a, lengths = utterance_errors(refs, hyps_a, args.unit)
    errors_b, _ = utterance_errors(refs, hyps_b, args.unit)
    result = bootstrap_test(errors_a, errors_b, lengths, args.num_samples, args.seed)
    print(result.line("WER" if args.unit == "word" else "CER"))


if __name__ == "__main__":
    main()
