"""Committed decode records: what a comparison needs of a trained model, without its weights or audio.

Results persist, models need not: a system trained in one job compares with one trained in another,
on another machine, through these small tracked files (issue 30)::

    <recipe>/results/asr_<system>_<tag>_seed<N>/
        record.json                     git commit (and whether the tree was clean), machine, date, versions
        config.yaml                     the training config (ESPnet's exp/<asr>/config.yaml)
        learning_curve.json             the epoch lines of train.log (:func:`.learning_curves.read_curve`)
        decode_<mode>_<model>/<set>/
            score.json                  as :func:`.decoding.score_decoding` wrote it (decode_stats inside)
            utterances.jsonl            per utterance: id, hypothesis, word and character errors and
                                        reference lengths, the search's counters (utt_stats.jsonl)

The references are not copied (they are the corpus's text): each utterance's error counts are what the
paired bootstrap needs, and ``score.json`` names the reference file's sha256 so that two records can be
checked to be scored against the same references.
"""

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from espnet_hatiam.scoring.error_rate import edit_counts
from espnet_hatiam.scoring.layout import decode_dirs, parse_exp
from espnet_hatiam.scoring.learning_curves import read_curve
from espnet_hatiam.scoring.text import read_pairs

RECORD = "record.json"
UTTERANCES = "utterances.jsonl"


def provenance() -> Dict[str, object]:
    """The code and machine a record comes from: the git commit of this package and whether its tree was clean."""
    package = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return _git(package, *args).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # only tracked files count: a record is "dirty" when the code it ran was not the commit's
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", str(package)))
    total = os.cpu_count()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total  # those it may run on
    versions = {}
    for name in ("torch", "espnet"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"commit": commit, "dirty": dirty, "machine": f"{platform.machine()}, {cores} of {total} CPU cores",
            "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), **versions}


def write_record(exp: Path, ref_dir: Path, out: Path) -> int:
    """Write the record of experiment ``exp`` (its scored decodings, references at ``ref_dir/<set>/text``) to
    ``out``; returns the number of decodings recorded. A decoding already recorded is written again. The
    comparison reads records named ``asr_<system>_<tag>_seed<N>`` (:mod:`.layout`); others are kept, not compared."""
    decodings = decode_dirs(exp)
    if not decodings:
        raise FileNotFoundError(f"{exp}: no scored decode_*/*/score.json to record; run stage 13 first")
    out.mkdir(parents=True, exist_ok=True)
    if (exp / "config.yaml").exists():
        shutil.copyfile(exp / "config.yaml", out / "config.yaml")
    if (exp / "train.log").exists():
        (out / "learning_curve.json").write_text(json.dumps(read_curve(exp / "train.log"), indent=1) + "\n")
    for decoding in decodings:
        target = out / decoding.path.relative_to(exp)
        target.mkdir(parents=True, exist_ok=True)
        ref = ref_dir / decoding.set / "text"
        score = decoding.score()
        score["references_sha256"] = hashlib.sha256(ref.read_bytes()).hexdigest()
        (target / "score.json").write_text(json.dumps(score, indent=2) + "\n")
        with open(target / UTTERANCES, "w", encoding="utf-8") as f:
            for row in utterance_rows(ref, decoding.path):
                f.write(json.dumps(row) + "\n")
    (out / RECORD).write_text(json.dumps({"experiment": exp.name, **provenance()}, indent=2) + "\n")
    return len(decodings)


def utterance_rows(ref: Path, directory: Path) -> List[dict]:
    """One row per reference utterance of a decoding dir: hypothesis, errors, reference lengths, counters."""
    keys, refs, hyps = read_pairs(ref, directory / "1best_recog" / "text")
    counters = {}
    stats = directory / "utt_stats.jsonl"
    if stats.exists():
        for line in stats.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                counters[row.pop("utt")] = row
    counts = {unit: edit_counts(refs, hyps, unit) for unit in ("word", "char")}
    rows = []
    for i, (key, hyp) in enumerate(zip(keys, hyps)):
        row = {"utt": key, "hyp": hyp}
        for unit, c in counts.items():
            row[f"{unit}_errors"] = int(c[i, 1:].sum())
            row[f"ref_{unit}s"] = int(c[i, :3].sum())
        rows.append({**row, **counters.get(key, {})})
    return rows


def read_errors(directory: Path, unit: str = "word") -> Tuple[List[str], np.ndarray, np.ndarray]:
    """``(utterance ids, errors (U,), reference lengths (U,))`` of a recorded decoding, sorted by id."""
    path = directory / UTTERANCES
    if not path.exists():
        raise FileNotFoundError(f"{path}: no per-utterance record (made by stage 13's write_record)")
    rows = sorted((json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()),
                  key=lambda r: r["utt"])
    return ([r["utt"] for r in rows], np.array([r[f"{unit}_errors"] for r in rows], dtype=np.int64),
            np.array([r[f"ref_{unit}s"] for r in rows], dtype=np.int64))


def read_record(record: Path) -> Dict[str, object]:
    """``record.json`` of a record dir; a missing record is a named error."""
    path = record / RECORD
    if not path.exists():
        raise FileNotFoundError(f"{record}: no {RECORD} (not a decode record; stage 13 writes them)")
    return json.loads(path.read_text())


CODE_PATHS = (":(top)espnet_hatiam", ":(top,exclude)espnet_hatiam/scoring",
              ":(top,exclude)espnet_hatiam/bin/compare_systems.py", ":(top)egs/TEMPLATE", ":(top)setup.py",
              ":(top)tools/requirements.txt")
"""What a record's hypotheses depend on in this repository, besides its recipe's scripts and the training config the
record holds (git pathspecs from the top): the package but the scoring and the comparison's command that read
records, the stage scripts and the pinned stack; not the docs or the records."""

RECIPE_SCRIPTS = ("local", "run.sh", "path.sh", "db.sh", "cmd.sh")
"""A recipe's own files that make its data and drive its stages (its conf/ is in each record's config.yaml)."""

UNRUN_LINES = (r"^[[:space:]]*--(pairs|title|note) ", r"^[[:space:]]*#([^!]|$)")
"""Lines a change to which leaves a record's code the same (``git diff -I``): a recipe script's options that only set
up the comparison of records (run.sh's to ``run_systems.sh``), not the hypotheses in them; and comment lines (shell,
Python and YAML ``#``, but a ``#!`` interpreter line)."""


REPOSITORY = Path(__file__).resolve().parents[2]
"""This package's repository (an editable install's checkout), where :func:`same_code` looks by default."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except OSError:  # no git on this machine
        return subprocess.CompletedProcess(args, 128, "", "")


def same_code(commit: str, other: str, repo: Optional[Path] = None, recipe: Optional[str] = None) -> Optional[bool]:
    """Whether two commits hold the same :data:`CODE_PATHS` (and the :data:`RECIPE_SCRIPTS` of ``recipe``, a
    folder relative to the repository's top, but for their :data:`UNRUN_LINES`); None when that cannot be
    told (not commit ids, a commit not in ``repo``'s history, default this package's repository, or no git)."""
    if not all(re.fullmatch(r"[0-9a-f]{4,40}", c) for c in (commit, other)):
        return None
    repo = repo or REPOSITORY
    paths = list(CODE_PATHS) + ([f":(top){recipe}/{name}" for name in RECIPE_SCRIPTS] if recipe else [])
    diff = _git(repo, "diff", "--quiet", *(f"-I{pattern}" for pattern in UNRUN_LINES), commit, other, "--", *paths)
    return {0: True, 1: False}.get(diff.returncode)


def _recipe_of(record: Path, repo: Optional[Path]) -> Optional[str]:
    """The recipe folder holding ``record`` (``<recipe>/results/<exp>``), relative to ``repo`` (default
    :data:`REPOSITORY`); None for a record outside it."""
    try:
        return record.resolve().parent.parent.relative_to((repo or REPOSITORY).resolve()).as_posix()
    except ValueError:
        return None


def provenance_table(records: List[Path], current: Optional[str] = None, repo: Optional[Path] = None) -> str:
    """Markdown: each record's system, seed, commit, machine and date. A record of another commit than
    ``current`` is flagged as other code unless the two commits' :data:`CODE_PATHS` and recipe scripts are the
    same (:func:`same_code` in ``repo``) and the record was made from a clean tree; a modified tree is named."""
    lines = ["|system|seed|commit|machine|date|", "|---|---|---|---|---|"]
    for record in sorted(records):
        parsed = parse_exp(record)
        if parsed is None:
            continue
        info = read_record(record)
        made = str(info["commit"])
        commit = made + (" (modified tree)" if info.get("dirty") else "")
        if current and not (made.startswith(current) or current.startswith(made)):
            if not info.get("dirty") and same_code(made, current, repo, _recipe_of(record, repo)):
                commit = f"{commit} (same code as {current})"
            else:
                commit = f"**{commit}: other code**"
        lines.append(f"|{parsed[0]}|{parsed[2]}|{commit}|{info['machine']}|{info['date']}|")
    return "\n".join(lines)
