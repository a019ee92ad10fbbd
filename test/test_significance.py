"""Paired bootstrap: zero for identical systems, significance of clear gains, exact p of simple cases, seeds, CLI."""

import random
import re
import subprocess
import sys

import numpy as np
import pytest

from espnet_hatiam.scoring.error_rate import error_counts, utterance_errors
from espnet_hatiam.scoring.significance import bootstrap_test, main, seed_test


def _write(path, table):
    path.write_text("".join(f"{k} {v}\n" for k, v in table.items()))
    return path


def test_identical_systems_give_a_zero_interval_and_p_one():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 20, 50)
    errors = rng.binomial(lengths, 0.2)
    r = bootstrap_test(errors, errors, lengths, num_samples=2000)
    assert r.difference == 0.0 and r.interval == (0.0, 0.0) and r.p == 1.0


@pytest.mark.parametrize("a_is_better", [True, False])
def test_a_clearly_better_system_is_significant(a_is_better):
    lengths = np.full(40, 6)
    good, bad = np.zeros(40, int), np.full(40, 3)
    a, b = (good, bad) if a_is_better else (bad, good)
    r = bootstrap_test(a, b, lengths, num_samples=2000)
    assert r.p < 0.05
    assert r.difference == pytest.approx(-50.0 if a_is_better else 50.0)
    lo, hi = r.interval
    assert (hi < 0) if a_is_better else (lo > 0)


def test_two_sided_p_is_twice_the_chance_that_a_resample_misses_the_only_error():
    # B's only error is in utterance 0 of 40: B is not worse on a resample exactly when utterance 0 is not drawn;
    # no resample makes A worse, so the two-sided p is twice that chance.
    lengths = np.full(40, 5)
    errors_b = np.zeros(40, int)
    errors_b[0] = 1
    r = bootstrap_test(np.zeros(40, int), errors_b, lengths, num_samples=20000, seed=1)
    assert r.p == pytest.approx(2 * (39 / 40) ** 40, abs=0.03)
    assert r.interval[1] == 0.0 and r.interval[0] < 0


def test_interval_is_the_central_95_percent():
    # Constant lengths: a resample's difference is a sum of U draws of the per-utterance difference, close to normal.
    lengths = np.full(400, 4)
    errors_a, errors_b = np.arange(400) % 3, np.ones(400, int)
    sd = 100 * np.sqrt(400) * np.std(errors_a - errors_b) / lengths.sum()
    lo, hi = bootstrap_test(errors_a, errors_b, lengths, seed=4).interval
    assert (hi - lo) == pytest.approx(2 * 1.96 * sd, rel=0.04)
    assert (lo + hi) / 2 == pytest.approx(100 * (errors_a - errors_b).sum() / lengths.sum(), abs=0.1 * sd)


def test_bootstrap_wer_on_the_full_set_is_the_corpus_wer():
    rnd = random.Random(0)
    words = "A B C D E".split()
    refs = [" ".join(rnd.choices(words, k=rnd.randint(1, 8))) for _ in range(30)]
    hyp_a = [" ".join(rnd.choices(words, k=rnd.randint(0, 8))) for _ in refs]
    hyp_b = [" ".join(rnd.choices(words, k=rnd.randint(0, 8))) for _ in refs]
    errors_a, lengths = utterance_errors(refs, hyp_a, "word")
    errors_b, _ = utterance_errors(refs, hyp_b, "word")
    r = bootstrap_test(errors_a, errors_b, lengths, num_samples=500)
    assert r.wer_a == pytest.approx(error_counts(refs, hyp_a, "word")["Err"], abs=0.005)
    assert r.wer_b == pytest.approx(error_counts(refs, hyp_b, "word")["Err"], abs=0.005)
    assert r.difference == pytest.approx(r.wer_a - r.wer_b)


def test_seeds_together_share_the_resamples_and_pool_the_evidence():
    lengths = np.full(60, 5)
    zero = np.zeros(60, int)
    errors_b = []
    for k in range(3):  # each seed of B errs once in utterances k and k + 3: six different utterances in all
        e = zero.copy()
        e[[k, k + 3]] = 1
        errors_b.append(e)
    single = bootstrap_test(zero, errors_b[0], lengths, seed=2)
    together = seed_test([zero] * 3, errors_b, lengths, seed=2)
    assert single.p == pytest.approx(2 * (58 / 60) ** 60, abs=0.03)  # twice the chance that no drawn utterance holds one of the 2 errors
    assert together.p == pytest.approx(2 * (54 / 60) ** 60, abs=0.004)  # ... of the 6
    assert together.wer_b == pytest.approx(np.mean([100 * e.sum() / lengths.sum() for e in errors_b]))
    # Seeds see the same resampled utterances: two copies of one seed are that seed.
    copies = seed_test([zero, zero], [errors_b[0], errors_b[0]], lengths, seed=2)
    assert (copies.interval, copies.p) == (single.interval, single.p)


def test_two_sided_p_equals_the_exact_distribution_over_every_resample():
    # 5 utterances: all 5**5 resamples enumerated give the exact two-sided p that the bootstrap estimates.
    import itertools

    errors_a, errors_b, lengths = np.array([0, 2, 1, 0, 3]), np.array([1, 1, 2, 2, 1]), np.array([3, 4, 2, 5, 4])
    differences = []
    for drawn in itertools.product(range(5), repeat=5):
        drawn = list(drawn)
        total = lengths[drawn].sum()
        differences.append(100 * (errors_a[drawn].sum() - errors_b[drawn].sum()) / total)
    differences = np.array(differences)
    exact = min(1.0, 2 * min((differences >= 0).mean(), (differences <= 0).mean()))
    assert 0.05 < exact < 0.95  # a case where either side of zero matters
    r = bootstrap_test(errors_a, errors_b, lengths, num_samples=200000, seed=5)
    assert r.p == pytest.approx(exact, abs=0.01)


def test_cli_prints_one_line(tmp_path, capsys):
    refs = {f"u{i}": "A B C" for i in range(20)}
    ref = _write(tmp_path / "ref", refs)
    hyp_a = _write(tmp_path / "a", refs)
    hyp_b = _write(tmp_path / "b", {k: "A B" for k in refs})
    main(["--ref", str(ref), "--hyp_a", str(hyp_a), "--hyp_b", str(hyp_b), "--num_samples", "500"])
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"A WER 0\.00 %, B WER 33\.33 %, difference -33\.33 points, 95 % CI \[-33\.33, -33\.33\], two-sided p = 0\.0000\n", out
    )


def test_cli_names_the_utterance_without_hypothesis(tmp_path):
    ref = _write(tmp_path / "ref", {"u1": "A", "u2": "B"})
    hyp_a = _write(tmp_path / "a", {"u1": "A", "u2": "B"})
    hyp_b = _write(tmp_path / "b", {"u1": "A"})
    result = subprocess.run(
        [sys.executable, "-m", "espnet_hatiam.scoring.significance", "--ref", str(ref),
         "--hyp_a", str(hyp_a), "--hyp_b", str(hyp_b)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "'u2'" in result.stderr and str(hyp_b) in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
