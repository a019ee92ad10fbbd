"""an4 data preparation: egs/an4/asr1/local/{data_prep.py,data.sh} and espnet_hatiam.data.download.

A miniature an4 is written in the corpus' own layout (etc/an4_{train,test}.{fileids,transcription},
wav/an4_clstk/<spk>/<utt>.sph and wav/an4test_clstk/...), once as NIST SPHERE (the official
release) and once as Opus (the copy in ../shared), with 105 train utterances so that the
first 100 sorted ones go to train_dev as in ESPnet's recipe.
"""

import hashlib
import io
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from espnet_hatiam.data import download
from espnet_hatiam.data.download import ChecksumError, download_and_extract
from conftest import recipe_with_stand_in_hat_asr
from espnet_hatiam.data.kaldi import read_table

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "egs" / "an4" / "asr1"
DATA_PREP = RECIPE / "local" / "data_prep.py"
FS = 16000
WORDS = ["YES", "NO", "GO", "ENTER", "NINE", "ONE", "SIX", "RUBOUT", "H", "A", "TWENTY"]
TRAIN_SPEAKERS = ["fash", "mgah", "fbbh", "mcen"]  # listed unsorted, as the corpus does not sort by speaker
TEST_SPEAKERS = ["fjlp", "mmxg"]
LAYOUTS = {"sphere": (".sph", dict(format="NIST", subtype="PCM_16")), "opus": (".opus", dict(format="OGG", subtype="OPUS"))}
SETS = ("train_dev", "train_nodev", "test")


def make_corpus(root: Path, layout: str = "sphere", num_train: int = 105, num_test: int = 6, seed: int = 0) -> dict:
    """Write an an4-like corpus at ``root``; return ``{"train"|"test": {utt_id: (words, samples)}}``.

    utt_id is what data_prep.py should produce (``an251-fash-b`` -> ``fash-an251-b``).
    """
    extension, sf_format = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    (root / "etc").mkdir(parents=True)
    expected = {}
    number = 251
    for part, speakers, count, folder in (
        ("train", TRAIN_SPEAKERS, num_train, "an4_clstk"),
        ("test", TEST_SPEAKERS, num_test, "an4test_clstk"),
    ):
        rows = []
        for n in range(count):
            speaker = speakers[n % len(speakers)]
            source = f"an{number}-{speaker}-{'bc'[n % 2]}"
            number += 1
            words = " ".join(rng.choice(WORDS, size=rng.integers(1, 4)))
            samples = 800 + 16 * n  # a distinct length per utterance: wav.scp must point at the right file
            audio = (0.1 * rng.standard_normal(samples)).astype(np.float32)
            path = root / "wav" / folder / speaker / f"{source}{extension}"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, audio, FS, **sf_format)
            rows.append((f"{folder}/{speaker}/{source}", words, source))
            utt, spk, last = source.split("-")
            expected.setdefault(part, {})[f"{spk}-{utt}-{last}"] = (words, samples)
        random.Random(seed).shuffle(rows)  # the listing order is not the sorted order
        fileids = "".join(f"{fileid}\n" for fileid, _, _ in rows)
        if part == "train":
            transcription = "".join(f"<s> {words} </s> ({source})\n" for _, words, source in rows)
        else:  # the test transcription has no <s> </s> and, like the real one, starts with an empty line
            transcription = "\n" + "".join(f"{words} ({source})\n" for _, words, source in rows)
            fileids = "\n" + fileids
        (root / "etc" / f"an4_{part}.fileids").write_text(fileids)
        (root / "etc" / f"an4_{part}.transcription").write_text(transcription)
    return expected


def make_archive(corpus: Path, archive: Path) -> str:
    """``an4_sphere.tar.gz`` holding ``an4/etc`` and ``an4/wav`` like the official one; return its sha256."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(corpus / "etc", arcname="an4/etc")
        tar.add(corpus / "wav", arcname="an4/wav")
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def run_data_prep(an4_root: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DATA_PREP), "--an4_root", str(an4_root), "--out", str(out), *extra],
        capture_output=True, text=True,
    )


def check_prepared(data: Path, expected: dict, extension: str, ndev: int = 100):
    """The three Kaldi dirs hold ESPnet's split of ``expected`` with readable audio."""
    train = sorted(expected["train"])
    parts = {"train_dev": train[:ndev], "train_nodev": train[ndev:], "test": sorted(expected["test"])}
    for name, utts in parts.items():
        directory = data / name
        lines = (directory / "wav.scp").read_text().splitlines()
        assert [line.split()[0] for line in lines] == utts, f"{name}: ids not the sorted expected ones"
        source = expected["test" if name == "test" else "train"]
        text = read_table(directory / "text")
        assert list(text) == utts
        assert text == {utt: source[utt][0] for utt in utts}
        assert not any("<s>" in t or "</s>" in t for t in text.values())
        utt2spk = read_table(directory / "utt2spk")
        assert utt2spk == {utt: utt.split("-")[0] for utt in utts}
        spk2utt = {spk: utt_list.split() for spk, utt_list in read_table(directory / "spk2utt").items()}
        assert list(spk2utt) == sorted(spk2utt)
        assert sorted(u for us in spk2utt.values() for u in us) == utts
        assert all(utt2spk[u] == spk for spk, us in spk2utt.items() for u in us)
        for utt, path in read_table(directory / "wav.scp").items():
            path = Path(path)
            assert path.is_absolute() and path.is_file() and path.suffix == extension, path
            audio, fs = soundfile.read(path, dtype="float32")
            assert fs == FS and audio.shape == (source[utt][1],), f"{utt}: {path} is not its recording"


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def corpus(request, tmp_path_factory):
    """``(root, expected, extension)`` of a 105 + 6 utterance corpus in each layout."""
    root = tmp_path_factory.mktemp(f"an4_{request.param}") / "an4"
    return root, make_corpus(root, request.param), LAYOUTS[request.param][0]


# ------------------------------------------------------------------ local/data_prep.py


def test_data_prep_writes_espnets_split(corpus, tmp_path):
    root, expected, extension = corpus
    result = run_data_prep(root, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert len(expected["train"]) == 105
    check_prepared(tmp_path / "data", expected, extension)
    assert "train_dev: 100 utterances, 4 speakers" in result.stdout
    assert "train_nodev: 5 utterances" in result.stdout and "test: 6 utterances, 2 speakers" in result.stdout


def test_utterance_ids_are_speaker_first(tmp_path):
    make_corpus(tmp_path / "an4", num_train=1, num_test=1)
    assert (tmp_path / "an4" / "etc" / "an4_train.fileids").read_text() == "an4_clstk/fash/an251-fash-b\n"
    assert run_data_prep(tmp_path / "an4", tmp_path / "data", "--ndev", "0").returncode == 0
    assert read_table(tmp_path / "data" / "train_nodev" / "wav.scp").keys() == {"fash-an251-b"}
    assert read_table(tmp_path / "data" / "test" / "utt2spk") == {"fjlp-an252-b": "fjlp"}


def test_ndev_option_moves_the_split(corpus, tmp_path):
    root, expected, extension = corpus
    assert run_data_prep(root, tmp_path / "data", "--ndev", "7").returncode == 0
    check_prepared(tmp_path / "data", expected, extension, ndev=7)


def _drop_last_transcription_line(root):
    path = root / "etc" / "an4_train.transcription"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    return "an4_train.fileids has 3 entries but", "an4_train.transcription has 2"


def _rename_one_transcription_id(root):
    path = root / "etc" / "an4_test.transcription"
    text = path.read_text()
    source = text.split("(")[1].split(")")[0]
    path.write_text(text.replace(f"({source})", "(an999-fjlp-b)"))
    return "an4_test.transcription:", "'an999-fjlp-b' does not match", "an4_test.fileids", source


def _remove_the_parentheses(root):
    path = root / "etc" / "an4_train.transcription"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("<s> YES </s>\n" + "".join(lines[1:]))
    return "an4_train.transcription:1:", "expected 'WORDS (utt-id)'"


def _remove_a_recording(root):
    recording = sorted((root / "wav" / "an4_clstk").rglob("*.sph"))[0]
    recording.unlink()
    return "no audio for", str(recording.with_suffix(""))


def _remove_the_test_fileids(root):
    (root / "etc" / "an4_test.fileids").unlink()
    return "missing", "an4_test.fileids"


@pytest.mark.parametrize("damage", [
    _drop_last_transcription_line, _rename_one_transcription_id, _remove_the_parentheses,
    _remove_a_recording, _remove_the_test_fileids,
])
def test_broken_corpus_is_a_one_line_error(damage, tmp_path):
    root = tmp_path / "an4"
    make_corpus(root, num_train=3, num_test=2)
    wanted = damage(root)
    result = run_data_prep(root, tmp_path / "data")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("data_prep.py: an4: ")
    for fragment in wanted:
        assert fragment in lines[0], (fragment, lines[0])
    assert not (tmp_path / "data").exists(), "nothing is written from a broken corpus"


# ------------------------------------------------------------------ local/data.sh


@pytest.fixture
def recipe(tmp_path):
    """A copy of the recipe's data-preparation files: local/ and db.sh (which honours AN4)."""
    directory = tmp_path / "asr1"
    shutil.copytree(RECIPE / "local", directory / "local")
    (directory / "db.sh").symlink_to(RECIPE / "db.sh")
    return directory


def run_data_sh(recipe: Path, an4: Path, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, AN4=str(an4), PATH=f"{REPO / 'tools' / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", "local/data.sh", *options], cwd=recipe, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """``(an4_sphere.tar.gz, sha256, expected)`` of a small SPHERE corpus."""
    root = tmp_path_factory.mktemp("an4_archive")
    expected = make_corpus(root / "src" / "an4", num_train=104, num_test=3)
    path = root / "an4_sphere.tar.gz"
    return path, make_archive(root / "src" / "an4", path), expected


def test_data_sh_uses_the_corpus_named_by_AN4(recipe, corpus):
    root, expected, extension = corpus
    result = run_data_sh(recipe, root)
    assert result.returncode == 0, result.stderr
    check_prepared(recipe / "data", expected, extension)
    assert not (recipe / "downloads").exists()


def test_data_sh_without_corpus_or_download_explains_what_to_do(recipe, tmp_path):
    result = run_data_sh(recipe, tmp_path / "nowhere")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"AN4='{tmp_path / 'nowhere'}'" in result.stderr and "--download true" in result.stderr
    assert not (recipe / "data").exists() and not (recipe / "downloads").exists()


def test_data_sh_unknown_option_is_refused(recipe, tmp_path):
    result = run_data_sh(recipe, tmp_path / "nowhere", "--dowload", "true")
    assert result.returncode == 2 and "unknown option '--dowload'" in result.stderr


def test_data_sh_downloads_verifies_extracts_and_does_not_download_twice(recipe, archive, tmp_path):
    source, sha256, expected = archive
    mirror = tmp_path / "mirror" / source.name
    mirror.parent.mkdir()
    shutil.copy(source, mirror)
    options = ["--download", "true", "--data_url", mirror.as_uri(), "--data_sha256", sha256]
    result = run_data_sh(recipe, tmp_path / "nowhere", *options)
    assert result.returncode == 0, result.stderr
    downloads = recipe / "downloads"
    assert (downloads / source.name).read_bytes() == source.read_bytes()
    assert (downloads / "an4" / "etc" / "an4_train.transcription").is_file()
    check_prepared(recipe / "data", expected, ".sph")
    paths = [Path(p) for s in SETS for p in read_table(recipe / "data" / s / "wav.scp").values()]
    assert all(p.is_relative_to(downloads.resolve() / "an4" / "wav") for p in paths)

    # second run: the archive is extracted, so nothing is fetched (neither copy exists any more)
    mirror.unlink()
    (downloads / source.name).unlink()
    shutil.rmtree(recipe / "data")
    again = run_data_sh(recipe, tmp_path / "nowhere", *options)
    assert again.returncode == 0, again.stderr
    assert "nothing to download" in again.stdout and "downloading" not in again.stdout
    check_prepared(recipe / "data", expected, ".sph")


def test_data_sh_wrong_checksum_fails_and_deletes_the_archive(recipe, archive, tmp_path):
    source, sha256, _ = archive
    wrong = "0" * 64
    result = run_data_sh(
        recipe, tmp_path / "nowhere", "--download", "true", "--data_url", source.as_uri(), "--data_sha256", wrong
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert sha256 in result.stderr and wrong in result.stderr
    assert not (recipe / "downloads" / source.name).exists(), "a corrupt archive must not be kept"
    assert not (recipe / "downloads" / "an4").exists() and not (recipe / "data").exists()
    assert source.exists()


# ------------------------------------------------------------------ espnet_hatiam.data.download


def _small_archive(tmp_path, members=None) -> Path:
    members = members or {"corpus/etc/list.txt": b"a b c\n", "corpus/wav/x.txt": b"x"}
    path = tmp_path / "src" / "small.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_and_extract_fetches_verifies_and_extracts(tmp_path):
    source = _small_archive(tmp_path)
    dest = tmp_path / "downloads"
    archive = download_and_extract(source.as_uri(), dest, _sha(source).upper(), check="corpus/etc/list.txt")
    assert archive == dest / "small.tar.gz" and archive.read_bytes() == source.read_bytes()
    assert (dest / "corpus" / "etc" / "list.txt").read_bytes() == b"a b c\n"
    assert (dest / "corpus" / "wav" / "x.txt").read_bytes() == b"x"
    assert not list(dest.glob("*.part"))
    assert download.sha256sum(archive) == _sha(source)


def test_download_and_extract_skips_when_the_check_path_exists(tmp_path, capsys):
    dest = tmp_path / "downloads"
    (dest / "corpus" / "etc").mkdir(parents=True)
    missing_url = (tmp_path / "gone.tar.gz").as_uri()  # would fail if fetched
    assert download_and_extract(missing_url, dest, "f" * 64, check="corpus/etc") == dest / "gone.tar.gz"
    assert "nothing to download" in capsys.readouterr().out
    assert not (dest / "gone.tar.gz").exists()


def test_download_and_extract_reuses_an_archive_already_downloaded(tmp_path):
    source = _small_archive(tmp_path)
    dest = tmp_path / "downloads"
    dest.mkdir()
    shutil.copy(source, dest / source.name)
    sha256 = _sha(source)
    source.unlink()  # not fetched again: the copy in dest is verified and extracted
    download_and_extract(source.as_uri(), dest, sha256, check="corpus/etc/list.txt")
    assert (dest / "corpus" / "etc" / "list.txt").is_file()


def test_download_and_extract_without_checksum_does_not_verify(tmp_path):
    source = _small_archive(tmp_path)
    download_and_extract(source.as_uri(), tmp_path / "downloads", None)
    assert (tmp_path / "downloads" / "corpus" / "wav" / "x.txt").is_file()


def test_wrong_checksum_raises_names_both_digests_and_deletes(tmp_path):
    source = _small_archive(tmp_path)
    dest = tmp_path / "downloads"
    wrong = "ab" * 32
    with pytest.raises(ChecksumError) as error:
        download_and_extract(source.as_uri(), dest, wrong)
    assert _sha(source) in str(error.value) and wrong in str(error.value)
    assert not (dest / source.name).exists() and not (dest / "corpus").exists()


def test_archive_members_escaping_dest_are_refused(tmp_path):
    source = _small_archive(tmp_path, {"../escaped.txt": b"evil"})
    with pytest.raises(tarfile.TarError):
        download_and_extract(source.as_uri(), tmp_path / "downloads", None)
    assert not (tmp_path / "escaped.txt").exists()


def test_download_cli_errors_are_one_line(tmp_path):
    source = _small_archive(tmp_path)
    for url, sha256, fragment in (
        (source.as_uri(), "0" * 64, _sha(source)),
        ((tmp_path / "missing.tar.gz").as_uri(), None, "missing.tar.gz"),
    ):
        cmd = [sys.executable, "-m", "espnet_hatiam.data.download", "--url", url, "--dest", str(tmp_path / "dl")]
        if sha256:
            cmd += ["--sha256", sha256]
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr


# ------------------------------------------------------------------ run.sh: every system through the shared driver


def test_run_sh_trains_every_system_and_decodes_each_as_its_kind(tmp_path):
    """scripts/run_systems.sh (seen through a stand-in hat_asr.sh that records its arguments): the ESPnet
    system goes to ESPnet's task with its own decoding config, the RNN-T joint gets no blank thresholding,
    each seed has its own tag and --seed, each model's single best checkpoint is decoded in the main mode, and
    a --criteria rule picks the checkpoints of the systems it matches."""
    recipe = recipe_with_stand_in_hat_asr(tmp_path, RECIPE, 'printf "%s\\n" "$@" > "calls/$(ls calls | wc -l)"')
    (recipe / "calls").mkdir()
    (recipe / "train_espnet_x=valid.loss").write_text("")  # a file the rule matches as a glob: not expanded
    result = subprocess.run(["./run.sh", "--seeds", "2024 7", "--compare", "false", "--asr_args", "--max_epoch 3",
                             "--criteria", "train_espnet_*=valid.loss"], cwd=recipe, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    calls = []
    for path in sorted((recipe / "calls").iterdir(), key=lambda p: int(p.name)):
        args = path.read_text().splitlines()
        calls.append({args[i][2:]: args[i + 1] for i in range(0, len(args), 2)})
    assert len(calls) == 4 * 2 * 2  # systems x seeds x (averaged model, single best)
    trained = [c for c in calls if c["inference_model"].endswith(".ave.pth")]
    assert [c["asr_tag"] for c in trained] == [f"{s}_bpe30_seed{seed}" for s in
                                              ("train_hat_iam", "train_hat", "train_rnnt", "train_espnet_ctc_att")
                                              for seed in (2024, 7)]
    assert trained[1]["asr_args"] == "--seed 7 --max_epoch 3"
    by_tag = {c["asr_tag"]: c for c in trained}
    hat_configs = by_tag["train_hat_iam_bpe30_seed2024"]["inference_configs"].split()
    assert "conf/decode_dual_0.95.yaml" in hat_configs and "conf/decode_espnet_nsc.yaml" in hat_configs
    rnnt_configs = by_tag["train_rnnt_bpe30_seed2024"]["inference_configs"].split()
    assert "conf/decode_beam_sym2.yaml" in rnnt_configs and "conf/decode_espnet_nsc.yaml" in rnnt_configs
    assert not [c for c in rnnt_configs if "dual" in c or c.endswith(("iam.yaml", "hat.yaml"))]
    espnet = by_tag["train_espnet_ctc_att_bpe30_seed7"]
    assert (espnet["asr_task"], espnet["inference_configs"], espnet["inference_batch_size"]) == (
        "espnet", "conf/decode_espnet_ctc_att.yaml", "1")
    assert {c["asr_tag"]: c["inference_model"] for c in trained} == {
        tag: "valid.loss.ave.pth" if tag.startswith("train_espnet") else "valid.wer.ave.pth" for tag in by_tag}
    best = [c for c in calls if c["inference_model"].endswith(".best.pth")]
    assert {(c["inference_configs"], c["inference_model"]) for c in best} == {
        ("conf/decode_beam_sym4.yaml", "valid.wer.best.pth"), ("conf/decode_espnet_ctc_att.yaml", "valid.loss.best.pth")}
    assert all((c["stage"], c["stop_stage"]) == ("12", "13") for c in best)


def test_run_sh_refuses_a_bad_compare_value(tmp_path):
    result = subprocess.run([str(RECIPE / "run.sh"), "--compare", "maybe"], cwd=RECIPE, capture_output=True, text=True)
    assert result.returncode == 2 and "--compare must be true, false or only, got 'maybe'" in result.stderr


@pytest.mark.parametrize("corpus", ["an4", "mini_librispeech", "speechocean762", "librispeech_100"])
def test_every_recipes_run_sh_help_prints_its_own_the_drivers_and_the_stage_scripts_options(corpus):
    recipe = REPO / "egs" / corpus / "asr1"
    result = subprocess.run(["./run.sh", "--help"], cwd=recipe, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    own_header = (recipe / "run.sh").read_text().splitlines()[1].lstrip("# ")
    assert own_header in result.stdout  # the recipe's own usage
    assert "--espnet_searches" in result.stdout and "--compare" in result.stdout  # the driver's options
    assert "--inference_model=valid.wer.ave.pth" in result.stdout  # hat_asr.sh's options with defaults
