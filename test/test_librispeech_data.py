"""LibriSpeech-layout data preparation: espnet_hatiam.data.librispeech, egs/mini_librispeech/asr1 and
egs/librispeech_100/asr1 (local/{data_prep.py,data.sh}, the download step, the recipes' wiring).

Miniature corpora are written in LibriSpeech's layout (``<set>/<spk>/<chapter>/<spk>-<chapter>.trans.txt``
and ``<utt>.<ext>``), once as FLAC under ``LibriSpeech/`` (the release, as its archives extract)
and once as Opus with ``splits/`` (the copy in ../shared). The Mini LibriSpeech one has the
dev speakers 1970 and 3242 among its train-clean-5 speakers, and 19 next to 198 (ids that
sort across speakers unless ``-`` sorts before the digits). Nothing here trains a model.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from conftest import recipe_with_stand_in_hat_asr
from espnet_hatiam.data.kaldi import read_table
from espnet_hatiam.data.librispeech import (
    CorpusError,
    check_release,
    find_set,
    read_set,
)

REPO = Path(__file__).resolve().parent.parent
MINI = REPO / "egs" / "mini_librispeech" / "asr1"
LS100 = REPO / "egs" / "librispeech_100" / "asr1"
FS = 16000
WORDS = ["THE", "FERNS", "DRENCHED", "HIS", "STIRRUPS", "DON'T", "A", "BIRD", "FLASHED", "GLOOM"]
LAYOUTS = {
    "flac": (".flac", dict(format="FLAC", subtype="PCM_16")),
    "opus": (".opus", dict(format="OGG", subtype="OPUS")),
}
MINI_SETS = {"train-clean-5": ["19", "198", "1970", "3242", "32"], "dev-clean-2": ["1272", "84"]}
DEV_SPEAKERS = {"1970", "3242"}
LS100_SETS = {"train-clean-100": ["19", "26", "103"], "dev-clean": ["1272", "84"], "dev-other": ["116"],
              "test-clean": ["1089"], "test-other": ["1688", "2033"]}


def make_corpus(root: Path, sets: dict, layout: str = "flac", chapters: int = 2, per_chapter: int = 2,
                seed: int = 0) -> dict:
    """Write ``sets`` ({set: [speakers]}) in LibriSpeech's layout under ``root``.

    Returns ``{set: {utt: (speaker, words, samples)}}``; every recording has its own length.
    """
    extension, sf_format = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    expected = {}
    count = 0
    for name, speakers in sets.items():
        expected[name] = {}
        for speaker in speakers:
            for c in range(chapters):
                chapter = str(1000 + 37 * c + int(speaker) % 50)
                folder = root / name / speaker / chapter
                folder.mkdir(parents=True)
                lines = []
                for n in range(per_chapter):
                    utt = f"{speaker}-{chapter}-{n:04d}"
                    words = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 5))))
                    samples = 800 + 16 * count
                    count += 1
                    audio = (0.1 * rng.standard_normal(samples)).astype(np.float32)
                    soundfile.write(folder / f"{utt}{extension}", audio, FS, **sf_format)
                    lines.append(f"{utt} {words}\n")
                    expected[name][utt] = (speaker, words, samples)
                (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return expected


def make_mini(root: Path, layout: str) -> dict:
    """Mini LibriSpeech as released (FLAC under LibriSpeech/, no splits/) or as in ../shared (Opus, splits/)."""
    if layout == "flac":
        expected = make_corpus(root / "LibriSpeech", MINI_SETS, "flac")
    else:
        expected = make_corpus(root, MINI_SETS, "opus")
        (root / "splits").mkdir()
        train = [s for s in MINI_SETS["train-clean-5"] if s not in DEV_SPEAKERS]
        (root / "splits" / "train_speakers.txt").write_text("".join(f"{s}\n" for s in train))
        (root / "splits" / "dev_speakers.txt").write_text("1970\n3242\n")
    return expected


def check_dir(directory: Path, expected: dict, extension: str):
    """``directory`` is the Kaldi data dir of ``expected`` ({utt: (speaker, words, samples)}), readable audio."""
    utts = sorted(expected)
    wav_scp = read_table(directory / "wav.scp")
    assert list(wav_scp) == utts
    assert read_table(directory / "text") == {u: expected[u][1] for u in utts}
    utt2spk = read_table(directory / "utt2spk")
    assert list(utt2spk) == utts and utt2spk == {u: expected[u][0] for u in utts}
    spk2utt = {spk: us.split() for spk, us in read_table(directory / "spk2utt").items()}
    assert list(spk2utt) == sorted(spk2utt)
    assert [u for us in spk2utt.values() for u in us] == utts, "sorted ids are grouped by sorted speaker"
    for utt, path in wav_scp.items():
        path = Path(path)
        assert path.is_absolute() and path.is_file() and path.suffix == extension and path.stem == utt, path
        audio, fs = soundfile.read(path, dtype="float32")
        assert fs == FS and audio.shape == (expected[utt][2],), f"{utt}: {path} is not its recording"


def check_mini(data: Path, expected: dict, extension: str):
    train_clean_5 = expected["train-clean-5"]
    check_dir(data / "train", {u: v for u, v in train_clean_5.items() if v[0] not in DEV_SPEAKERS}, extension)
    check_dir(data / "dev", {u: v for u, v in train_clean_5.items() if v[0] in DEV_SPEAKERS}, extension)
    check_dir(data / "test", expected["dev-clean-2"], extension)


def run_prep(recipe: Path, root: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(recipe / "local" / "data_prep.py"), "--corpus_root", str(root),
                           "--out", str(out)], capture_output=True, text=True)


def one_line_error(result: subprocess.CompletedProcess, prefix: str, *fragments: str):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def mini(request, tmp_path_factory):
    """``(root, expected, extension)`` of a miniature Mini LibriSpeech in each layout."""
    root = tmp_path_factory.mktemp(f"mini_{request.param}") / "mini_librispeech"
    return root, make_mini(root, request.param), LAYOUTS[request.param][0]


# ------------------------------------------------------------------ espnet_hatiam.data.librispeech


def test_reader_sorts_ids_and_keeps_words(tmp_path):
    expected = make_corpus(tmp_path, {"dev-clean-2": ["198", "19"]}, chapters=1, per_chapter=3)
    rows = read_set(tmp_path / "dev-clean-2")
    assert [r.utt for r in rows] == sorted(expected["dev-clean-2"])
    assert [r.utt.split("-")[0] for r in rows] == ["19"] * 3 + ["198"] * 3
    assert all(r.words == expected["dev-clean-2"][r.utt][1] and r.audio.is_absolute() for r in rows)


def test_sets_are_found_beside_or_under_LibriSpeech(tmp_path):
    (tmp_path / "a" / "dev-clean").mkdir(parents=True)
    (tmp_path / "b" / "LibriSpeech" / "dev-clean").mkdir(parents=True)
    assert find_set(tmp_path / "a", "dev-clean") == tmp_path / "a" / "dev-clean"
    assert find_set(tmp_path / "b", "dev-clean") == tmp_path / "b" / "LibriSpeech" / "dev-clean"
    with pytest.raises(CorpusError, match="missing set 'dev-other'"):
        find_set(tmp_path / "a", "dev-other")


def test_release_counts_refuse_an_incomplete_copy():
    rows = [type("Row", (), {"speaker": str(s)})() for s in range(28)]
    check_release("train-clean-5", rows[:27])  # fewer speakers: a miniature, not an incomplete release
    check_release("some-other-set", rows)
    with pytest.raises(CorpusError, match="28 speakers but 28 utterances, not its 1519"):
        check_release("train-clean-5", rows)


# ------------------------------------------------------------------ mini_librispeech local/data_prep.py


def test_mini_data_prep_makes_the_split(mini, tmp_path):
    root, expected, extension = mini
    result = run_prep(MINI, root, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    check_mini(tmp_path / "data", expected, extension)
    source = "checked against splits/" if extension == ".opus" else "no splits/: from the rule"
    assert f"dev speakers 1970 3242 ({source})" in result.stdout
    assert f"{tmp_path / 'data' / 'train'}: 12 utterances, 3 speakers" in result.stdout
    assert f"{tmp_path / 'data' / 'dev'}: 8 utterances, 2 speakers" in result.stdout
    assert f"{tmp_path / 'data' / 'test'}: 8 utterances, 2 speakers" in result.stdout


def _list_one_speaker_nowhere(root):
    path = root / "splits" / "train_speakers.txt"
    path.write_text(path.read_text().replace("32\n", ""))
    return "speaker 32 is in neither list"


def _list_an_unknown_speaker(root):
    (root / "splits" / "train_speakers.txt").open("a").write("4242\n")
    return "speaker 4242 is listed but not in train-clean-5"


def _list_a_speaker_twice(root):
    (root / "splits" / "train_speakers.txt").open("a").write("3242\n")
    return "speaker 3242 is in both"


def _list_other_dev_speakers(root):
    (root / "splits" / "dev_speakers.txt").write_text("1970\n32\n")
    (root / "splits" / "train_speakers.txt").write_text("19\n198\n3242\n")
    return "dev_speakers.txt lists 1970 32, not the recipe's dev speakers 1970 3242"


def _drop_dev_speaker(root):
    shutil.rmtree(root / "train-clean-5" / "3242")
    return "train-clean-5 has no speaker 3242"


def _drop_a_recording(root):
    recording = min((root / "dev-clean-2").rglob("*.opus"))
    recording.unlink()
    return f"no recording for '{recording.stem}'"


def _add_a_recording_without_transcript(root):
    chapter = min((root / "train-clean-5" / "19").iterdir())
    shutil.copy(min(chapter.glob("*.opus")), chapter / f"19-{chapter.name}-0099.opus")
    return f"19-{chapter.name}-0099.opus' has no line in"


def _remove_a_transcript(root):
    transcript = min((root / "train-clean-5").rglob("*.trans.txt"))
    transcript.unlink()
    return f"missing transcript '{transcript}'"


def _misname_an_utterance(root):
    transcript = min((root / "dev-clean-2" / "84").rglob("*.trans.txt"))
    transcript.write_text("84-9999-0000 THE END\n" + transcript.read_text())
    return f"{transcript}:1: utterance '84-9999-0000' is not of speaker 84"


def _break_a_transcript_line(root):
    transcript = min((root / "dev-clean-2" / "84").rglob("*.trans.txt"))
    transcript.write_text("NO-ID-HERE\n" + transcript.read_text())
    return f"{transcript}:1: expected '<spk>-<chapter>-<nnnn> WORDS'"


def _add_a_folder_that_is_no_speaker(root):
    (root / "dev-clean-2" / "notes").mkdir()
    return "is not a speaker folder"


def _remove_the_test_set(root):
    shutil.rmtree(root / "dev-clean-2")
    return "missing set 'dev-clean-2'"


@pytest.mark.parametrize("damage", [
    _list_one_speaker_nowhere, _list_an_unknown_speaker, _list_a_speaker_twice, _list_other_dev_speakers,
    _drop_dev_speaker, _drop_a_recording, _add_a_recording_without_transcript, _remove_a_transcript,
    _misname_an_utterance, _break_a_transcript_line, _add_a_folder_that_is_no_speaker, _remove_the_test_set,
])
def test_mini_broken_corpus_is_a_one_line_error(damage, tmp_path):
    root = tmp_path / "mini_librispeech"
    make_mini(root, "opus")
    wanted = damage(root)
    result = run_prep(MINI, root, tmp_path / "data")
    one_line_error(result, "data_prep.py: mini_librispeech: ", wanted)
    assert not (tmp_path / "data").exists(), "nothing is written from a broken corpus"


def test_mini_complete_copy_must_have_the_release_counts(tmp_path):
    """28 train-clean-5 speakers (all of the release's) with 1 utterance each is an incomplete copy."""
    speakers = sorted(DEV_SPEAKERS) + [str(100 + n) for n in range(26)]
    make_corpus(tmp_path / "c", {"train-clean-5": speakers, "dev-clean-2": ["84"]}, "flac", chapters=1, per_chapter=1)
    result = run_prep(MINI, tmp_path / "c", tmp_path / "data")
    one_line_error(result, "data_prep.py: mini_librispeech: ", "train-clean-5 has the release's 28 speakers but 28 "
                   "utterances, not its 1519")


def test_mini_speaker_in_both_sets_is_refused(tmp_path):
    make_corpus(tmp_path / "c", {"train-clean-5": ["1970", "3242", "19"], "dev-clean-2": ["19"]}, "flac",
                chapters=1, per_chapter=1)
    one_line_error(run_prep(MINI, tmp_path / "c", tmp_path / "data"), "data_prep.py: mini_librispeech: ",
                   "speaker 19 is in both train-clean-5 and dev-clean-2")


# ------------------------------------------------------------------ librispeech_100 local/data_prep.py


def test_librispeech_100_data_prep_writes_espnets_sets(tmp_path):
    expected = make_corpus(tmp_path / "LibriSpeech", LS100_SETS, "flac")
    result = run_prep(LS100, tmp_path, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    for name in LS100_SETS:
        check_dir(tmp_path / "data" / name.replace("-", "_"), expected[name], ".flac")
    check_dir(tmp_path / "data" / "dev", {**expected["dev-clean"], **expected["dev-other"]}, ".flac")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "dev", "dev_clean", "dev_other", "test_clean", "test_other", "train_clean_100"]
    assert f"{tmp_path / 'data' / 'dev'}: 12 utterances, 3 speakers" in result.stdout


def test_librispeech_100_opus_copy_and_missing_set(tmp_path):
    expected = make_corpus(tmp_path / "c", LS100_SETS, "opus", chapters=1, per_chapter=1)
    assert run_prep(LS100, tmp_path / "c", tmp_path / "data").returncode == 0
    check_dir(tmp_path / "data" / "test_other", expected["test-other"], ".opus")
    shutil.rmtree(tmp_path / "c" / "dev-other")
    one_line_error(run_prep(LS100, tmp_path / "c", tmp_path / "data2"), "data_prep.py: librispeech_100: ",
                   "missing set 'dev-other'")
    assert not (tmp_path / "data2").exists()


# ------------------------------------------------------------------ local/data.sh and the download step


def recipe_copy(recipe: Path, tmp_path: Path) -> Path:
    """A copy of a recipe's data-preparation files: local/, db.sh (which honours the corpus variables) and
    scripts/ (the shared corpus lookup and download)."""
    directory = tmp_path / "asr1"
    shutil.copytree(recipe / "local", directory / "local")
    for name in ("db.sh", "scripts"):
        (directory / name).symlink_to(recipe / name)
    return directory


def run_data_sh(recipe: Path, *options: str, **corpora: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{REPO / 'tools' / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
               **{name: str(path) for name, path in corpora.items()})
    return subprocess.run(["bash", "local/data.sh", *options], cwd=recipe, env=env, capture_output=True, text=True)


def make_archives(corpus: Path, sets, mirror: Path) -> dict:
    """``<set>.tar.gz`` holding ``LibriSpeech/<set>`` (and the release's LICENSE.TXT) per set; their sha256."""
    mirror.mkdir(parents=True, exist_ok=True)
    (corpus / "LibriSpeech" / "LICENSE.TXT").write_text("CC BY 4.0\n")
    digests = {}
    for name in sets:
        archive = mirror / f"{name}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(corpus / "LibriSpeech" / "LICENSE.TXT", arcname="LibriSpeech/LICENSE.TXT")
            tar.add(corpus / "LibriSpeech" / name, arcname=f"LibriSpeech/{name}")
        digests[name] = hashlib.sha256(archive.read_bytes()).hexdigest()
    return digests


@pytest.fixture(scope="module")
def mini_archives(tmp_path_factory):
    """``(mirror dir, {set: sha256}, expected)``: the two OpenSLR 31 archives of a miniature FLAC corpus."""
    root = tmp_path_factory.mktemp("mini_archives")
    expected = make_mini(root / "src", "flac")
    return root / "mirror", make_archives(root / "src", MINI_SETS, root / "mirror"), expected


def test_mini_data_sh_uses_the_corpus_named_by_MINI_LIBRISPEECH(mini, tmp_path):
    root, expected, extension = mini
    recipe = recipe_copy(MINI, tmp_path)
    result = run_data_sh(recipe, MINI_LIBRISPEECH=root)
    assert result.returncode == 0, result.stderr
    check_mini(recipe / "data", expected, extension)
    assert not (recipe / "downloads").exists()


def test_mini_data_sh_without_corpus_is_one_line_naming_the_variable_and_download(tmp_path):
    recipe = recipe_copy(MINI, tmp_path)
    result = run_data_sh(recipe, MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"MINI_LIBRISPEECH='{tmp_path / 'nowhere'}'" in lines[0] and "--download true" in lines[0]
    assert not (recipe / "data").exists() and not (recipe / "downloads").exists()


def test_mini_data_sh_unknown_option_is_refused(tmp_path):
    result = run_data_sh(recipe_copy(MINI, tmp_path), "--dowload", "true", MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 2 and "unknown option '--dowload'" in result.stderr


def test_mini_data_sh_downloads_verifies_extracts_and_does_not_download_twice(mini_archives, tmp_path):
    source, digests, expected = mini_archives
    mirror = tmp_path / "mirror"
    shutil.copytree(source, mirror)
    recipe = recipe_copy(MINI, tmp_path)
    options = ["--download", "true", "--data_url", mirror.as_uri(),
               "--data_sha256_train", digests["train-clean-5"], "--data_sha256_dev", digests["dev-clean-2"]]
    result = run_data_sh(recipe, *options, MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    downloads = recipe / "downloads"
    for name in MINI_SETS:
        assert (downloads / f"{name}.tar.gz").read_bytes() == (source / f"{name}.tar.gz").read_bytes()
        assert (downloads / "LibriSpeech" / name).is_dir()
    check_mini(recipe / "data", expected, ".flac")
    paths = [Path(p) for s in ("train", "dev", "test") for p in read_table(recipe / "data" / s / "wav.scp").values()]
    assert all(p.is_relative_to(downloads.resolve() / "LibriSpeech") for p in paths)

    # second run: both archives are extracted, so nothing is fetched (neither copy exists any more)
    shutil.rmtree(mirror)
    for name in MINI_SETS:
        (downloads / f"{name}.tar.gz").unlink()
    shutil.rmtree(recipe / "data")
    again = run_data_sh(recipe, *options, MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("nothing to download") == 2 and "downloading" not in again.stdout
    check_mini(recipe / "data", expected, ".flac")


def test_mini_data_sh_wrong_checksum_fails_and_deletes_the_archive(mini_archives, tmp_path):
    source, digests, _ = mini_archives
    recipe = recipe_copy(MINI, tmp_path)
    wrong = "0" * 64
    result = run_data_sh(recipe, "--download", "true", "--data_url", source.as_uri(),
                         "--data_sha256_train", wrong, MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert digests["train-clean-5"] in result.stderr and wrong in result.stderr
    assert not (recipe / "downloads" / "train-clean-5.tar.gz").exists(), "a corrupt archive must not be kept"
    assert not (recipe / "downloads" / "LibriSpeech").exists() and not (recipe / "data").exists()
    assert (source / "train-clean-5.tar.gz").exists()


def test_mini_data_sh_default_checksums_are_the_official_ones(mini_archives, tmp_path):
    """The miniature archives are not the official ones: the default sha256 refuses them."""
    source, _, _ = mini_archives
    result = run_data_sh(recipe_copy(MINI, tmp_path), "--download", "true", "--data_url", source.as_uri(),
                         MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode != 0
    assert "expected 47805806c8b15f7549f3c51bd6b7da72ec0128a34d32830c8014a88658c0292d" in result.stderr


def test_mini_data_sh_without_checksum_warns_loudly_and_goes_on(mini_archives, tmp_path):
    source, _, expected = mini_archives
    recipe = recipe_copy(MINI, tmp_path)
    result = run_data_sh(recipe, "--download", "true", "--data_url", source.as_uri(), "--data_sha256_train", "",
                         "--data_sha256_dev", "", MINI_LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 0, result.stderr
    for name in MINI_SETS:
        assert f"WARNING: no sha256 for {name}.tar.gz: the archive is NOT verified" in result.stderr
    check_mini(recipe / "data", expected, ".flac")


def test_librispeech_100_data_sh_downloads_the_five_archives(tmp_path):
    expected = make_corpus(tmp_path / "src" / "LibriSpeech", LS100_SETS, "flac", chapters=1, per_chapter=1)
    digests = make_archives(tmp_path / "src", LS100_SETS, tmp_path / "mirror")
    recipe = recipe_copy(LS100, tmp_path)
    options = ["--download", "true", "--data_url", (tmp_path / "mirror").as_uri()]
    for name, digest in digests.items():
        options += [f"--data_sha256_{name.replace('-', '_')}", digest]
    result = run_data_sh(recipe, *options, LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    for name in LS100_SETS:
        check_dir(recipe / "data" / name.replace("-", "_"), expected[name], ".flac")
        assert (recipe / "downloads" / f"{name}.done").is_file()

    wrong = "f" * 64
    bad = run_data_sh(recipe_copy(LS100, tmp_path / "again"), *options, "--data_sha256_dev_other", wrong,
                      LIBRISPEECH=tmp_path / "nowhere")
    assert bad.returncode != 0 and wrong in bad.stderr and digests["dev-other"] in bad.stderr


def test_librispeech_100_data_sh_without_corpus_names_the_variable_and_download(tmp_path):
    recipe = recipe_copy(LS100, tmp_path)
    result = run_data_sh(recipe, LIBRISPEECH=tmp_path / "nowhere")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"LIBRISPEECH='{tmp_path / 'nowhere'}'" in lines[0] and "--download true" in lines[0]
    assert run_data_sh(recipe, "--data_sha256", "x", LIBRISPEECH=tmp_path).returncode == 2


# ------------------------------------------------------------------ the recipes' wiring


@pytest.mark.parametrize("recipe", [MINI, LS100], ids=["mini_librispeech", "librispeech_100"])
def test_recipe_links_to_the_template(recipe):
    for name in ("cmd.sh", "db.sh", "hat_asr.sh", "path.sh", "scripts"):
        link = recipe / name
        assert link.is_symlink() and os.readlink(link) == f"../../TEMPLATE/asr1/{name}", link
    for name in ("run.sh", "run_espnet.sh", "local/data.sh", "local/data_prep.py"):
        assert os.access(recipe / name, os.X_OK), name


@pytest.mark.parametrize("recipe", [MINI, LS100], ids=["mini_librispeech", "librispeech_100"])
def test_run_scripts_pass_only_options_hat_asr_knows(recipe):
    """hat_asr.sh checks every option and config file before its first stage; stages 6-9 do not exist."""
    for script, extra in (("run.sh", ["--seeds", "2024"]), ("run_espnet.sh", ["--seeds", "2024"])):
        result = subprocess.run([f"./{script}", *extra, "--stage", "6", "--stop_stage", "9"], cwd=recipe,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Successfully finished stages 6-9" in result.stdout


def _recipe_with_printing_hat_asr(tmp_path, recipe):
    """A copy of ``recipe``'s run.sh, conf and scripts whose hat_asr.sh prints each call's arguments, then ---."""
    return recipe_with_stand_in_hat_asr(tmp_path, recipe, 'printf "%s\\n" "$@" ---')


@pytest.mark.parametrize("recipe", [MINI, LS100, REPO / "egs" / "speechocean762" / "asr1"],
                         ids=["mini_librispeech", "librispeech_100", "speechocean762"])
def test_espnet_transducer_search_runs_in_two_algorithms_on_hat_iam_only(tmp_path, recipe):
    """ESPnet's one-utterance-at-a-time search decodes the HAT+IAM model in maes and alsd, no other system; the
    ESPnet baseline is decoded with the recipe's --espnet_decode_configs."""
    stand_in = _recipe_with_printing_hat_asr(tmp_path, recipe)
    result = subprocess.run(["./run.sh", "--seeds", "2024", "--compare", "false"], cwd=stand_in,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    configs = {}
    for call in result.stdout.split("---\n")[:-1]:
        args = call.splitlines()
        if args[args.index("--inference_model") + 1].endswith(".ave.pth"):  # the averaged model's call: every mode
            configs[args[args.index("--asr_tag") + 1]] = args[args.index("--inference_configs") + 1].split()
    espnet = {tag: sorted(c for c in found if "decode_espnet_" in c) for tag, found in configs.items()}
    chosen_weight = {"mini_librispeech": ["conf/decode_espnet_ctc_att_ctc_weight_1.0.yaml"],  # CTC weights chosen on dev
                     "speechocean762": ["conf/decode_espnet_ctc_att_ctc_weight_0.5.yaml"], "librispeech_100": []}
    assert espnet == {"train_hat_iam_bpe300_seed2024" if recipe != LS100 else "train_hat_iam_bpe5000_seed2024":
                      ["conf/decode_espnet_alsd.yaml", "conf/decode_espnet_maes.yaml"],
                      **{tag: [] for tag in configs if tag.startswith("train_hat_bpe")},
                      **{tag: ["conf/decode_espnet_ctc_att.yaml", *chosen_weight[recipe.parent.name]]
                         for tag in configs if "espnet_ctc_att" in tag}}
    assert "conf/decode_beam_sym4.yaml" in configs[next(iter(configs))]


def test_librispeech_100_run_passes_gpu_options_through(tmp_path):
    """--ngpu and --gpu_inference reach hat_asr.sh (seen through a stand-in that prints its arguments)."""
    recipe = _recipe_with_printing_hat_asr(tmp_path, LS100)
    result = subprocess.run(["./run.sh", "--systems", "train_hat_iam", "--ngpu", "4", "--gpu_inference", "false",
                             "--asr_args", "--batch_bins 16000000", "--compare", "false"], cwd=recipe, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    args = result.stdout.splitlines()

    def value(name):  # hat_asr.sh takes an option's last value
        return args[len(args) - args[::-1].index(name)]

    assert value("--ngpu") == "4" and value("--gpu_inference") == "false"
    assert value("--asr_args") == "--seed 2024 --multiprocessing_distributed true --batch_bins 16000000"
    assert value("--speed_perturb_factors") == "0.9 1.0 1.1"


@pytest.mark.parametrize("recipe", [MINI, LS100], ids=["mini_librispeech", "librispeech_100"])
def test_decode_configs_are_valid_search_configs(recipe):
    from espnet_hatiam.search import SearchConfig

    configs = sorted((recipe / "conf").glob("decode_*.yaml"))
    sweep = [c for c in configs if c.stem.startswith("decode_espnet_ctc_att_ctc_weight_")]  # the baseline's, on dev
    for config in sweep:
        assert yaml.safe_load(config.read_text())["ctc_weight"] == float(config.stem.rsplit("_", 1)[1]), config
    names = {c.stem for c in configs} - {c.stem for c in sweep}
    wanted = {"decode_greedy", "decode_beam_sym1", "decode_beam_sym2", "decode_beam_sym3", "decode_beam_sym4",
              "decode_iam", "decode_hat", "decode_espnet_ctc_att"}
    wanted |= {f"decode_dual_{t}" for t in ("0.6", "0.8", "0.9", "0.95", "0.99")}
    wanted |= {f"decode_espnet_{a}" for a in ("default", "alsd", "tsd", "nsc", "maes")}
    assert names == wanted
    for config in configs:
        if not config.stem.startswith("decode_espnet_ctc_att"):
            search = SearchConfig.from_options(**yaml.safe_load(config.read_text()))
            if config.stem.startswith("decode_dual_"):
                theta = float(config.stem.rsplit("_", 1)[1])
                got = (search.iam_blank_threshold, search.hat_blank_threshold, search.max_sym_per_frame)
                assert got == (theta, theta, 4), config


@pytest.mark.parametrize("recipe, vocab, blocks, size", [(MINI, 300, 4, 144), (LS100, 5000, 12, 256)],
                         ids=["mini_librispeech", "librispeech_100"])
def test_training_configs_build_their_models(recipe, vocab, blocks, size):
    from espnet2.tasks.asr import ASRTask

    from espnet_hatiam.tasks.hat_asr import HATASRTask

    for system, task in (("train_hat_iam", HATASRTask), ("train_hat", HATASRTask), ("train_espnet_ctc_att", ASRTask)):
        config = yaml.safe_load((recipe / "conf" / f"{system}.yaml").read_text())
        assert (config["encoder_conf"]["num_blocks"], config["encoder_conf"]["output_size"]) == (blocks, size)
        assert config["specaug"] == "specaug"
        args = task.get_parser().parse_args(["--config", str(recipe / "conf" / f"{system}.yaml"), "--token_list", "x"])
        args.token_list = ["<blank>", "<unk>"] + [f"t{i}" for i in range(vocab - 3)] + ["<sos/eos>"]
        model = task.build_model(args)
        assert type(model.specaug).__name__ == "SpecAug"
        if system != "train_espnet_ctc_att":
            assert model.iam_weight == (0.3 if system == "train_hat_iam" else 0.0)


def test_mini_librispeech_decodes_hat_iam_in_every_mode_the_job_protocol_names(tmp_path):
    """One job decodes HAT+IAM greedy, beam 4, IAM-only, HAT-only, a 5-point dual sweep, ESPnet maes and alsd."""
    stand_in = _recipe_with_printing_hat_asr(tmp_path, MINI)
    result = subprocess.run(["./run.sh", "--systems", "train_hat_iam", "--seeds", "2024", "--compare", "false"],
                            cwd=stand_in, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    averaged = [call.splitlines() for call in result.stdout.split("---\n")[:-1] if "valid.wer.ave.pth" in call]
    modes = {c[len("conf/decode_"):-len(".yaml")] for c in averaged[0][averaged[0].index("--inference_configs") + 1].split()}
    assert modes == {"greedy", "beam_sym4", "iam", "hat", "dual_0.6", "dual_0.8", "dual_0.9", "dual_0.95", "dual_0.99",
                     "espnet_maes", "espnet_alsd"}
