"""Side-by-side comparison of several systems, seeds and decoding modes (markdown tables and a figure).

Inputs are decode records (:mod:`.records`): ``<record>/decode_<mode>_<model>/<set>/{score.json,utterances.jsonl}``
of dirs named ``asr_<system>_<token tag>_seed<seed>`` (e.g. ``results/asr_train_hat_iam_bpe300_seed2024``), the
layout of :mod:`.layout`. Nothing here reads a model, an audio file or a reference text.
"""

import fnmatch
import itertools
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from espnet_hatiam.scoring.layout import SWEEP, decode_dirs, parse_exp
from espnet_hatiam.scoring.plots import speed_accuracy
from espnet_hatiam.scoring.records import read_errors
from espnet_hatiam.scoring.significance import Significance, bootstrap_test, seed_test


@dataclass(frozen=True)
class Decoding:
    """One scored decoding: ``dir`` holds score.json and utterances.jsonl."""

    system: str
    seed: int
    mode: str
    set: str
    dir: Path
    score: dict


def collect(records: Sequence[Path], sets: Sequence[str], model: str,
            criteria: Sequence[Tuple[str, str]] = ()) -> List[Decoding]:
    """Every scored ``decode_<mode>_<model>/<set>`` of the record dirs whose names parse (others are skipped).

    ``criteria``: ``(system glob, criterion)`` rules, the first match wins: a matching system's checkpoint
    tag has that criterion in place of ``model``'s (``valid.wer.ave`` -> ``valid.loss.ave``), as
    :func:`checkpoint_of` says."""
    decodings, seen = [], {}
    for record in sorted(records):
        if not record.is_dir():
            raise FileNotFoundError(f"{record}: no such decode record")
        parsed = parse_exp(record)
        if parsed is None:
            continue
        key = (parsed[0], parsed[2])
        if key in seen:
            raise ValueError(f"{record} and {seen[key]}: two records of system {key[0]}, seed {key[1]}")
        seen[key] = record
        for d in decode_dirs(record, model=checkpoint_of(parsed[0], model, criteria)):
            if d.set in sets:
                decodings.append(Decoding(*key, d.mode, d.set, d.path, d.score()))
    if not decodings:
        raise ValueError(f"no scored decode_*_{model}/{{{','.join(sets)}}} in dirs asr_<system>_<tag>_seed<N>")
    return decodings


def checkpoint_of(system: str, model: str, criteria: Sequence[Tuple[str, str]] = ()) -> str:
    """The checkpoint tag ``system`` is decoded from in ``model``'s role: ``model`` (``<criterion>.<ave|best>``)
    with the criterion of the first ``(glob, criterion)`` rule whose glob matches ``system``."""
    for pattern, criterion in criteria:
        if fnmatch.fnmatchcase(system, pattern):
            return f"{criterion}.{model.rsplit('.', 1)[-1]}"
    return model


def main_mode(decodings: Sequence[Decoding], system: str, preferred: str, explicit: Optional[str] = None,
              named: Sequence[str] = ()) -> str:
    """``explicit`` (checked), else ``preferred`` if ``system`` was decoded with it, else the system's only mode
    (e.g. espnet_ctc_att), or its only mode decoded on every set it has (a sweep on dev alone is not its main mode),
    or the only one of them that ``named`` (the modes the pairs give it) holds."""
    modes = sorted({d.mode for d in decodings if d.system == system})
    if not modes:
        raise ValueError(f"no decodings of system '{system}'")
    if explicit is not None and explicit not in modes:
        raise ValueError(f"system '{system}' has no mode '{explicit}'; it has {modes}")
    if explicit is not None or preferred in modes:
        return explicit or preferred
    system_sets = {d.set for d in decodings if d.system == system}
    complete = [m for m in modes if {d.set for d in decodings if (d.system, d.mode) == (system, m)} == system_sets]
    if len(complete) == 1:
        return complete[0]
    chosen = [m for m in complete if m in named]
    if len(chosen) == 1:
        return chosen[0]
    raise ValueError(f"system '{system}' has no mode '{preferred}'; name one of {modes} as {system}@<mode>")


def _select(decodings, system: str, mode: str, dset: str) -> Dict[int, Decoding]:
    return {d.seed: d for d in decodings if (d.system, d.mode, d.set) == (system, mode, dset)}


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    return None if any(v is None for v in values) else statistics.fmean(values)


def _percent(ratio: Optional[float]) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f} %"


def results_table(decodings: Sequence[Decoding]) -> str:
    """System x mode x set, means over seeds: WER, CER, word Sub/Del/Ins (%), RTF, search seconds, skip ratios."""
    lines = ["|system|mode|set|seeds|WER %|CER %|Sub/Del/Ins %|RTF|search s|frames skipped|label proj|",
             "|---" * 11 + "|"]
    for system, mode, dset in sorted({(d.system, d.mode, d.set) for d in decodings}):
        scores = [d.score for d in _select(decodings, system, mode, dset).values()]
        mean = lambda f: _mean([f(s) for s in scores])  # noqa: E731
        sdi = "/".join(f"{mean(lambda s: s['wer'][c]):.2f}" for c in ("Sub", "Del", "Ins"))
        lines.append(
            f"|{system}|{mode}|{dset}|{len(scores)}|{mean(lambda s: s['wer']['Err']):.2f}|"
            f"{mean(lambda s: s['cer']['Err']):.2f}|{sdi}|{mean(lambda s: s['rtf']):.4f}|"
            f"{mean(lambda s: s['decode_stats']['search_seconds']):.2f}|"
            f"{_percent(mean(lambda s: s['frame_skip_ratio']))}|"
            f"{_percent(mean(lambda s: s['label_projection_ratio']))}|"
        )
    return "\n".join(lines)


def table_modes(decodings: Sequence[Decoding], system: str, preferred: str, named: Sequence[str] = ()) -> List[str]:
    """The modes of ``system`` the seed table shows: each mode the pairs name (``named``), in their order, where
    they name several it was decoded with (e.g. two decoding CTC weights of a baseline); else its :func:`main_mode`."""
    modes = {d.mode for d in decodings if d.system == system}
    several = [m for m in dict.fromkeys(named) if m in modes]
    return several if len(several) > 1 else [main_mode(decodings, system, preferred, named=named)]


def seed_table(decodings: Sequence[Decoding], sets: Sequence[str], preferred: str, pairs: Sequence[str] = ()) -> str:
    """WER per seed of each system's main mode on each set (:func:`main_mode`; the modes ``pairs`` name settle a
    system with several, a row each: :func:`table_modes`), and mean ± sample std (n - 1) over seeds."""
    named = {}
    for pair in pairs:
        for system, mode in parse_pair(pair):
            if mode is not None:
                named.setdefault(system, []).append(mode)
    seeds = sorted({d.seed for d in decodings})
    lines = [f"|system|mode|set|{'|'.join(f'seed {s}' for s in seeds)}|mean ± std|", "|---" * (len(seeds) + 4) + "|"]
    for system in sorted({d.system for d in decodings}):
        for mode, dset in itertools.product(table_modes(decodings, system, preferred, named.get(system, ())), sets):
            chosen = _select(decodings, system, mode, dset)
            if not chosen:
                continue
            wers = [chosen[s].score["wer"]["Err"] for s in sorted(chosen)]
            spread = f"{statistics.fmean(wers):.2f}" + (f" ± {statistics.stdev(wers):.2f}" if len(wers) > 1 else "")
            cells = [f"{chosen[s].score['wer']['Err']:.2f}" if s in chosen else "-" for s in seeds]
            lines.append(f"|{system}|{mode}|{dset}|{'|'.join(cells)}|{spread}|")
    return "\n".join(lines)


def parse_pair(text: str) -> Tuple[Tuple[str, Optional[str]], Tuple[str, Optional[str]]]:
    """``"a[@mode]:b[@mode]"`` -> ``((a, mode or None), (b, mode or None))``."""
    sides = text.split(":")
    if len(sides) != 2 or not all(sides):
        raise ValueError(f"pair '{text}' is not <system>[@<mode>]:<system>[@<mode>]")
    a, b = (tuple(side.split("@", 1)) if "@" in side else (side, None) for side in sides)
    return a, b


def parse_criteria(text: str) -> List[Tuple[str, str]]:
    """``"<system glob>=<criterion> ..."`` -> ``[(glob, criterion), ...]``, the rules of :func:`collect`."""
    rules = [tuple(rule.split("=", 1)) for rule in text.split()]
    if any(len(rule) != 2 or not all(rule) for rule in rules):
        raise ValueError(f"criteria: each rule is <system glob>=<criterion>, got '{text}'")
    return rules


def _errors(decoding: Decoding, reference: Decoding) -> Tuple[np.ndarray, np.ndarray]:
    """Word errors and reference lengths per utterance of ``decoding``, refused unless it was scored on the
    utterances and references of ``reference``'s record."""
    keys, errors, lengths = read_errors(decoding.dir)
    ref_keys, _, ref_lengths = read_errors(reference.dir)
    same_refs = decoding.score.get("references_sha256") == reference.score.get("references_sha256")
    if keys != ref_keys or not same_refs or not np.array_equal(lengths, ref_lengths):
        raise ValueError(f"{decoding.dir} and {reference.dir}: scored on different utterances or references; "
                         "a paired test needs the same ones")
    return errors, lengths


def significance_table(
    decodings: Sequence[Decoding], pairs: Sequence[str], sets: Sequence[str], preferred: str,
    num_samples: int, seed: int,
) -> str:
    """Paired bootstrap of word errors per shared seed, and over all shared seeds together when there are >= 2.

    Systems without a shared seed are compared on their lowest seeds.
    """
    lines = ["|A|B|set|seed|A WER %|B WER %|A - B|95 % CI|p|", "|---" * 9 + "|"]
    for pair in pairs:
        (sys_a, mode_a), (sys_b, mode_b) = parse_pair(pair)
        mode_a, mode_b = main_mode(decodings, sys_a, preferred, mode_a), main_mode(decodings, sys_b, preferred, mode_b)
        for dset in sets:
            a, b = _select(decodings, sys_a, mode_a, dset), _select(decodings, sys_b, mode_b, dset)
            if not a or not b:
                continue
            shared = sorted(set(a) & set(b))
            seed_pairs = [(s, s) for s in shared] or [(min(a), min(b))]
            first = a[seed_pairs[0][0]]
            errors_a = {sa: _errors(a[sa], first) for sa, _ in seed_pairs}
            errors_b = {sb: _errors(b[sb], first) for _, sb in seed_pairs}
            rows: List[Tuple[str, Significance]] = [
                (str(sa) if sa == sb else f"{sa} / {sb}",
                 bootstrap_test(errors_a[sa][0], errors_b[sb][0], errors_a[sa][1], num_samples, seed))
                for sa, sb in seed_pairs
            ]
            if len(shared) > 1:
                together = seed_test([errors_a[s][0] for s in shared], [errors_b[s][0] for s in shared],
                                     errors_a[shared[0]][1], num_samples, seed)
                rows.append((f"all {len(shared)}", together))
            for label, r in rows:
                lines.append(f"|{sys_a}@{mode_a}|{sys_b}@{mode_b}|{dset}|{label}|{r.wer_a:.2f}|{r.wer_b:.2f}|"
                             f"{r.difference:+.2f}|[{r.interval[0]:+.2f}, {r.interval[1]:+.2f}]|{r.p:.4f}|")
    return "\n".join(lines)


def operating_points(
    decodings: Sequence[Decoding], tune_set: str, sets: Sequence[str], preferred: str, family: str = "dual",
    tolerance: float = 0.02,
) -> str:
    """Each system's threshold of the ``family`` sweep chosen on ``tune_set``, and what it gives on every set.

    Over the seeds decoded in the main mode and at every point of the sweep on ``tune_set``,
    the chosen point is the lowest threshold (the most frames skipped) whose mean WER there
    is within ``tolerance`` (relative) of the main mode's; none when no point is.
    """
    lines = [f"|system|theta (chosen on {tune_set})|seeds|set|{preferred} WER %|chosen WER %|relative|"
             "frames skipped|search s, recipe jobs|", "|---" * 9 + "|"]
    for system in sorted({d.system for d in decodings}):
        points = {}
        for d in decodings:
            match = SWEEP.fullmatch(d.mode)
            if d.system == system and match and match["family"] == family:
                points[float(match["theta"])] = d.mode
        if not points or preferred not in {d.mode for d in decodings if d.system == system}:
            continue
        seeds = sorted(set.intersection(*(set(_select(decodings, system, m, tune_set)) for m in
                                          [preferred, *points.values()])))
        if not seeds:
            continue
        wer = lambda mode, dset: statistics.fmean(  # noqa: E731
            _select(decodings, system, mode, dset)[s].score["wer"]["Err"] for s in seeds)
        plain = wer(preferred, tune_set)
        within = [theta for theta, mode in points.items() if wer(mode, tune_set) <= plain * (1 + tolerance)]
        if not within:
            lines.append(f"|{system}|none within {100 * tolerance:g} %|{len(seeds)}|{tune_set}|{plain:.2f}|-|-|-|-|")
            continue
        theta, mode = min(within), points[min(within)]
        for dset in sets:
            chosen, base = _select(decodings, system, mode, dset), _select(decodings, system, preferred, dset)
            if not all(s in chosen and s in base for s in seeds):
                continue
            mean = lambda sel, key: statistics.fmean(key(sel[s].score) for s in seeds)  # noqa: E731
            a, b = mean(base, lambda x: x["wer"]["Err"]), mean(chosen, lambda x: x["wer"]["Err"])
            relative = f"{100 * (b - a) / a:+.1f} %" if a else "-"
            search = lambda sel: mean(sel, lambda x: x["decode_stats"]["search_seconds"])  # noqa: E731
            lines.append(f"|{system}|{theta:g}|{len(seeds)}|{dset}|{a:.2f}|{b:.2f}|{relative}|"
                         f"{_percent(mean(chosen, lambda x: x['frame_skip_ratio']))}|"
                         f"{search(base):.2f} -> {search(chosen):.2f}|")
    return "\n".join(lines)


def plot_speed_accuracy(decodings: Sequence[Decoding], system: str, dset: str, path: Path) -> Dict[str, list]:
    """Search seconds against WER (means over seeds) of every mode of ``system`` on ``dset``
    (:func:`.plots.speed_accuracy`); returns what was drawn."""
    points = {}
    for mode in sorted({d.mode for d in decodings if (d.system, d.set) == (system, dset)}):
        scores = [d.score for d in _select(decodings, system, mode, dset).values()]
        points[mode] = (_mean([s["decode_stats"]["search_seconds"] for s in scores]),
                        _mean([s["wer"]["Err"] for s in scores]))
    if not points:
        raise ValueError(f"no decodings of system '{system}' on set '{dset}' to plot")
    return speed_accuracy(points, path, "search seconds", f"{system} on {dset}: speed and accuracy")


def report(
    decodings: Sequence[Decoding], sets: Sequence[str], pairs: Sequence[str], preferred: str,
    num_samples: int, seed: int, plot_link: Optional[str] = None, tune_set: Optional[str] = None,
) -> str:
    """The markdown comparison; ``plot_link``: the speed/accuracy figure's path relative to the markdown file;
    ``tune_set``: the set on which the dual threshold is chosen (:func:`operating_points`)."""
    lines = [
        "# System comparison", "",
        "Means over seeds; RTF = (encoder + search seconds) / audio seconds; frames skipped by the IAM threshold; "
        "label proj = label projections / joint evaluations; - = not counted by that search (ESPnet's own).", "",
        "## All decoding modes", "", results_table(decodings), "",
        f"## Seeds (mode {preferred}, else a system's only mode on every set, or the one its pairs name)", "",
        seed_table(decodings, sets, preferred, pairs), "",
    ]
    if pairs:
        lines += [
            "## Significance", "",
            f"Paired bootstrap over utterances (Bisani and Ney, 2004) of word errors, {num_samples} resamples; "
            "two-sided p = twice the smaller share of resamples on either side of a zero difference; "
            "'all N': the mean over the shared seeds, the same resamples for every seed.", "",
            significance_table(decodings, pairs, sets, preferred, num_samples, seed), "",
        ]
    points = operating_points(decodings, tune_set, sets, preferred) if tune_set else ""
    if points.count("\n") > 1:
        lines += [
            "## Dual thresholding: the operating point", "",
            f"The lowest dual threshold whose mean {tune_set} WER over the seeds is within 2 % (relative) of "
            f"the main mode's; search seconds: the recipe's decoding jobs (bench/decode_speed.py for ratios).", "",
            points, "",
        ]
    if plot_link:
        lines += ["## Speed and accuracy", "", f"![search seconds against WER]({plot_link})", ""]
    return "\n".join(lines)
