"""Model-zoo packing: stage 14's zip through espnet_model_zoo, stage 15's Hugging Face model folder."""

import shutil

import pytest
import soundfile
import yaml

from conftest import run_recipe
from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.bin.hf_model_folder import make_hf_folder, packed_model_files

EXP = "exp/asr_tiny_char"
MODEL = "valid.wer.ave.pth"  # the recipe's --inference_model, the one stage 14 packs


def _test_audio(recipe, n=3):
    lines = (recipe / "dump/raw/test/wav.scp").read_text().splitlines()[:n]
    return [soundfile.read(line.split(maxsplit=1)[1], dtype="float32")[0] for line in lines]


@pytest.fixture
def direct(mini_recipe, monkeypatch):
    """The recipe's model loaded from its exp dir (configs name paths relative to the recipe)."""
    monkeypatch.chdir(mini_recipe)
    speech2text = HATSpeech2Text(mini_recipe / EXP / "config.yaml", mini_recipe / EXP / MODEL, beam_size=2)
    audio = _test_audio(mini_recipe)
    expected = [speech2text(x)[0][:3] for x in audio]
    assert any(token_ids for _, _, token_ids in expected), "equal decodings must not be empty ones"
    return expected, audio


@pytest.fixture
def hf_folder(mini_recipe):
    """Stage 15 run once more on its own (the fixture's full run made it already)."""
    run_recipe(mini_recipe, "--stage", "15", "--stop_stage", "15")
    return mini_recipe / EXP / "hf_model"


def _decodes(speech2text, audio):
    return [speech2text(x)[0][:3] for x in audio]


def test_model_downloader_unpacks_the_zip_from_its_local_path(mini_recipe, direct, tmp_path, monkeypatch):
    from espnet_model_zoo.downloader import ModelDownloader

    expected, audio = direct
    zip_path = tmp_path / "model.zip"  # elsewhere, away from the recipe: the zip carries everything
    shutil.copy(mini_recipe / EXP / "model.zip", zip_path)
    monkeypatch.chdir(tmp_path)
    files = ModelDownloader(cachedir=tmp_path / "cache").download_and_unpack(str(zip_path))
    assert set(files) == {"asr_train_config", "asr_model_file"}
    assert files["asr_model_file"].startswith(str(tmp_path / "cache"))
    assert _decodes(HATSpeech2Text(**files, beam_size=2), audio) == expected
    # the folder it unpacked to is itself a packed model
    unpacked = next((tmp_path / "cache").iterdir())
    assert (unpacked / "meta.yaml").is_file()
    assert _decodes(HATSpeech2Text.from_pretrained(unpacked, beam_size=2), audio) == expected


def test_zip_holds_config_model_token_list_stats_and_results(mini_recipe, tmp_path):
    packed_model = (mini_recipe / EXP / MODEL).resolve().name  # pack resolves the link to the average
    with packed_model_files(mini_recipe / EXP / "model.zip", unpack_dir=str(tmp_path / "u")) as files:
        assert files["asr_model_file"] == str(tmp_path / "u" / EXP / packed_model)
        config = yaml.safe_load(open(files["asr_train_config"]))
    assert config["normalize_conf"]["stats_file"] == str(tmp_path / "u/exp/asr_stats_raw_char/train/feats_stats.npz")
    for name in ("data/token_list/char/tokens.txt", f"{EXP}/RESULTS.md", "meta.yaml"):
        assert (tmp_path / "u" / name).is_file(), name


def test_from_pretrained_decodes_the_hf_folder_as_the_direct_model(direct, hf_folder, tmp_path, monkeypatch):
    expected, audio = direct
    moved = tmp_path / "clone"  # e.g. a clone of the model repository: nothing outside it is used
    shutil.copytree(hf_folder, moved)
    before = {p: p.read_bytes() for p in moved.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    assert _decodes(HATSpeech2Text.from_pretrained(moved, beam_size=2), audio) == expected
    assert {p: p.read_bytes() for p in moved.rglob("*") if p.is_file()} == before, "loading writes nothing there"


def test_hf_folder_holds_the_packed_files_and_a_model_card_with_the_results(mini_recipe, hf_folder):
    packed_model = (mini_recipe / EXP / MODEL).resolve().name
    meta = yaml.safe_load((hf_folder / "meta.yaml").read_text())
    assert meta["yaml_files"] == {"asr_train_config": f"{EXP}/config.yaml"}
    assert meta["files"] == {"asr_model_file": f"{EXP}/{packed_model}"}
    for name in (f"{EXP}/config.yaml", f"{EXP}/{packed_model}", "data/token_list/char/tokens.txt",
                 "exp/asr_stats_raw_char/train/feats_stats.npz", f"{EXP}/RESULTS.md"):  # fmt: skip
        assert (hf_folder / name).is_file(), name
    # paths stay relative to the folder, as packed (ESPnet's model repositories)
    assert yaml.safe_load((hf_folder / EXP / "config.yaml").read_text())["normalize_conf"]["stats_file"] == (
        "exp/asr_stats_raw_char/train/feats_stats.npz"
    )
    card = (hf_folder / "README.md").read_text()
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["library_name"] == "espnet" and "automatic-speech-recognition" in header["tags"]
    assert header["datasets"] == [mini_recipe.parent.name]
    results = (mini_recipe / EXP / "RESULTS.md").read_text()
    assert "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|RTF|" in results and "decode_dual_valid.wer.ave/test|" in results
    assert results.strip() in card  # the RESULTS tables as they are
    for image in ("speed_accuracy.png", "blank_synchrony.png"):  # its figures, linked relative to the folder
        assert f"]({EXP}/images/{image})" in card and (hf_folder / EXP / "images" / image).is_file()
    assert f"{mini_recipe.parent.name}_tiny_char" in card  # the default model name: <corpus>_<asr_tag>
    assert "joint_type: hat" in card  # the training config


def test_hf_folder_refuses_a_zip_older_than_the_results(mini_recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a recipe dir whose RESULTS.md changed after stage 14
    shutil.copy(mini_recipe / EXP / "model.zip", tmp_path / "model.zip")
    (tmp_path / EXP).mkdir(parents=True)
    (tmp_path / EXP / "RESULTS.md").write_text("rescored after packing\n")
    with pytest.raises(SystemExit, match="pack it again"):
        make_hf_folder(tmp_path / "model.zip", tmp_path / "hf", tmp_path / EXP / "RESULTS.md")
    assert not (tmp_path / "hf").exists()


def test_from_pretrained_names_what_is_not_a_packed_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no packed model"):
        HATSpeech2Text.from_pretrained(tmp_path)
