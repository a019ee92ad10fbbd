"""HATSpeech2Text and the inference CLI on the miniature recipe's trained model."""

import json
import subprocess
import sys

import pytest
import soundfile

from espnet_hatiam.bin.hat_asr_inference import HATSpeech2Text
from espnet_hatiam.data.kaldi import read_table

EXP = "exp/asr_tiny_char"


@pytest.fixture(autouse=True)
def _in_recipe_dir(mini_recipe, monkeypatch):
    """Training configs hold paths relative to the recipe (ESPnet's convention)."""
    monkeypatch.chdir(mini_recipe)


def _speech2text(recipe, model="valid.wer.ave.pth", **kwargs):  # the recipe's default model
    exp = recipe / EXP
    return HATSpeech2Text(exp / "config.yaml", exp / model, **kwargs)


def _test_audio(recipe, n=3):
    paths = list(read_table(recipe / "dump/raw/test/wav.scp").values())[:n]
    return [soundfile.read(path, dtype="float32")[0] for path in paths]


def test_call_returns_an_nbest_list_of_text_tokens_ids_and_hypothesis(mini_recipe):
    speech2text = _speech2text(mini_recipe, beam_size=3, nbest=2)
    nbest = speech2text(_test_audio(mini_recipe, 1)[0])
    assert 1 <= len(nbest) <= 2
    text, tokens, token_ids, hyp = nbest[0]
    assert token_ids, "an empty hypothesis would pass every check below"
    assert isinstance(text, str) and len(tokens) == len(token_ids)
    assert all(0 < i < len(speech2text.model.token_list) for i in token_ids)
    assert list(hyp.token_ids) == token_ids
    assert speech2text.last_counters.totals()["frames"] > 0


LEARNED_CER = 0.4
"""What a model that learned the tones spells: random letters of the right length and word breaks
score 0.65-0.74 on these 9 test utterances, the untrained model (no output) 1.0, the recipe's own
5 epochs (40 updates, every hypothesis "a") 0.83; 240 more updates reach 0.15-0.17."""


def _train(model, recipe, steps: int):
    """Adam (lr 0.01) on random batches of 8 of the recipe's training utterances."""
    import torch

    token_id = {token: i for i, token in enumerate(model.token_list)}
    texts, wavs = read_table(recipe / "dump/raw/train/text"), read_table(recipe / "dump/raw/train/wav.scp")
    keys = sorted(texts)
    audio = [torch.from_numpy(soundfile.read(wavs[k], dtype="float32")[0]) for k in keys]
    labels = [torch.tensor([token_id["<space>" if c == " " else c] for c in texts[k]]) for k in keys]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains 3x faster on one thread than on two busy ones
    model.train()
    try:
        for _ in range(steps):
            batch = torch.randperm(len(keys), generator=generator)[:8].tolist()
            speech = torch.nn.utils.rnn.pad_sequence([audio[i] for i in batch], batch_first=True)
            text = torch.nn.utils.rnn.pad_sequence([labels[i] for i in batch], batch_first=True, padding_value=-1)
            loss, _, _ = model(speech, torch.tensor([audio[i].numel() for i in batch]),
                               text, torch.tensor([labels[i].numel() for i in batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def test_trained_model_recognises_the_tone_words(mini_recipe, tmp_path):
    """The recipe's model trained on for 240 updates spells the test words (CER < LEARNED_CER) through
    HATSpeech2Text; the same model untrained does not."""
    import torch

    from espnet_hatiam.scoring.error_rate import error_rates

    refs = list(read_table(mini_recipe / "dump/raw/test/text").values())
    audio = _test_audio(mini_recipe, len(refs))

    def cer(model_file):
        speech2text = HATSpeech2Text(mini_recipe / EXP / "config.yaml", model_file, search_type="greedy")
        return error_rates([speech2text(a)[0][0] for a in audio], refs)[0]

    from espnet_hatiam.tasks.hat_asr import HATASRTask

    untrained, _ = HATASRTask.build_model_from_file(mini_recipe / EXP / "config.yaml")  # no model file: initial
    torch.save(untrained.state_dict(), tmp_path / "untrained.pth")
    assert cer(tmp_path / "untrained.pth") >= LEARNED_CER, "the bound must be one an untrained model fails"
    torch.save(_train(untrained, mini_recipe, steps=240).state_dict(), tmp_path / "trained.pth")
    trained_cer = cer(tmp_path / "trained.pth")
    assert trained_cer < LEARNED_CER, f"240 updates should spell most letters right (CER {trained_cer:.2f})"


def test_from_pretrained_loads_the_packed_zip(mini_recipe, tmp_path, monkeypatch):
    direct = _speech2text(mini_recipe, beam_size=2)
    monkeypatch.chdir(tmp_path)  # the zip carries everything it needs: no recipe dir
    packed = HATSpeech2Text.from_pretrained(
        mini_recipe / EXP / "model.zip", unpack_dir=str(tmp_path / "unpacked"), beam_size=2
    )
    expected = [direct(audio)[0][:3] for audio in _test_audio(mini_recipe)]
    assert any(token_ids for _, _, token_ids in expected), "equal decodings must not be empty ones"
    assert [packed(audio)[0][:3] for audio in _test_audio(mini_recipe)] == expected


def test_espnet_greedy_search_on_the_hat_model_equals_ours(mini_recipe):
    best = "valid.wer.best.pth"  # the tiny averaged model emits nothing: nothing to compare
    ours = _speech2text(mini_recipe, model=best, search_type="greedy", max_sym_per_frame=1)
    espnet = _speech2text(mini_recipe, model=best, search_type="espnet", beam_size=1)
    outputs = [(espnet(audio)[0][2], ours(audio)[0][2]) for audio in _test_audio(mini_recipe, 6)]
    assert any(theirs for theirs, _ in outputs)
    assert [theirs for theirs, _ in outputs] == [mine for _, mine in outputs]


@pytest.mark.parametrize("algorithm", ["default", "alsd", "tsd", "nsc", "maes"])
def test_every_espnet_search_type_decodes_the_hat_model(mini_recipe, algorithm):
    espnet = _speech2text(mini_recipe, search_type="espnet", espnet_search_type=algorithm, beam_size=3)
    vocab = len(espnet.model.token_list)
    results = [espnet(audio)[0] for audio in _test_audio(mini_recipe, 4)]
    assert any(token_ids for _, _, token_ids, _ in results)
    assert all(0 < i < vocab for _, _, token_ids, _ in results for i in token_ids)


def test_bad_options_are_refused_by_name(mini_recipe):
    with pytest.raises(ValueError, match="'search_type'"):
        _speech2text(mini_recipe, search_type="k2")
    with pytest.raises(ValueError, match="'nbest'"):
        _speech2text(mini_recipe, beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="not both"):
        from espnet_hatiam.search import SearchConfig

        _speech2text(mini_recipe, search_config=SearchConfig(), beam_size=2)


def test_cli_batch_decoding_equals_one_by_one(mini_recipe, tmp_path):
    exp = mini_recipe / EXP
    outputs, scores = {}, {}
    for batch_size in (1, 4):
        out = tmp_path / f"batch{batch_size}"
        subprocess.run(
            [sys.executable, "-m", "espnet_hatiam.bin.hat_asr_inference",
             "--asr_train_config", str(exp / "config.yaml"), "--asr_model_file", str(exp / "valid.wer.best.pth"),
             "--data_path_and_name_and_type", "dump/raw/test/wav.scp,speech,sound",
             "--output_dir", str(out), "--batch_size", str(batch_size), "--beam_size", "3",
             "--iam_blank_threshold", "0.95", "--hat_blank_threshold", "0.95"],
            cwd=mini_recipe, check=True, capture_output=True,
        )
        outputs[batch_size] = (out / "1best_recog/token_int").read_text()
        scores[batch_size] = {k: float(v) for k, v in read_table(out / "1best_recog/score").items()}
        stats = json.loads((out / "decode_stats.json").read_text())
        for key in ("utterances", "audio_seconds", "encoder_seconds", "search_seconds",
                    "frames", "frames_kept", "joint_evaluations", "label_projections"):
            assert key in stats
        assert stats["utterances"] == 9 and stats["frames_kept"] <= stats["frames"]
        assert len((out / "utt_stats.jsonl").read_text().splitlines()) == 9
    assert outputs[1] == outputs[4]
    assert scores[4] == pytest.approx(scores[1], abs=1e-4)  # batch-invariant encoding: scores too


def test_cli_missing_model_file_is_a_one_line_error(mini_recipe, tmp_path):
    missing = tmp_path / "missing.pth"
    result = subprocess.run(
        [sys.executable, "-m", "espnet_hatiam.bin.hat_asr_inference",
         "--asr_train_config", str(mini_recipe / EXP / "config.yaml"), "--asr_model_file", str(missing),
         "--data_path_and_name_and_type", "dump/raw/test/wav.scp,speech,sound", "--output_dir", str(tmp_path / "out")],
        cwd=mini_recipe, capture_output=True, text=True,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines()[1:] if line.strip()]  # after the echoed command line
    assert errors == [f"hat_asr_inference.py: --asr_model_file: no such file '{missing}'"]
    assert not (tmp_path / "out").exists()


def test_lm_shallow_fusion_from_espnet_lm_files(mini_recipe, tmp_path):
    import torch
    import yaml
    from espnet2.tasks.lm import LMTask

    tokens = mini_recipe / "data/token_list/char/tokens.txt"
    args = LMTask.get_parser().parse_args(
        ["--token_list", str(tokens), "--lm", "seq_rnn", "--lm_conf", "{unit: 8, nlayers: 1}", "--output_dir", str(tmp_path)]
    )
    lm = LMTask.build_model(args)
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(vars(args)))))
    torch.save(lm.state_dict(), tmp_path / "lm.pth")
    fused = _speech2text(mini_recipe, beam_size=2, lm_train_config=str(tmp_path / "lm.yaml"),
                         lm_file=str(tmp_path / "lm.pth"), lm_weight=0.5, ilm_weight=0.2)
    plain = _speech2text(mini_recipe, beam_size=2)
    audio = next(a for a in _test_audio(mini_recipe, 9) if plain(a)[0][2])  # one with labels
    assert fused.fusion is not None and isinstance(fused(audio)[0][0], str)
    assert fused(audio)[0][3].score != pytest.approx(plain(audio)[0][3].score)  # the LM bonus moves it
    with pytest.raises(ValueError, match="need an LM"):
        _speech2text(mini_recipe, lm_weight=0.5)


# ------------------------------------------------------------------ long recordings in windows


def test_window_features_equal_the_whole_recordings_and_full_context_is_the_one_pass_encoding(mini_recipe):
    """models.long_form: each window's features are the whole recording's frames (the STFT margin), and
    with context over the whole recording the windowed encoding is the one-pass one."""
    import numpy as np
    import torch

    from espnet_hatiam.models.long_form import _window_features, encode_in_windows

    model = _speech2text(mini_recipe).model
    speech = torch.from_numpy(np.concatenate(_test_audio(mini_recipe, 4)))
    with torch.no_grad():
        feats, lengths = model._extract_feats(speech[None], torch.tensor([speech.numel()]))
        feats, _ = model.normalize(feats, lengths)
        total = int(lengths[0])
        for first, last in ((0, 7), (0, total), (1, 2), (5, 40), (total - 9, total), (total // 2, total - 1)):
            torch.testing.assert_close(_window_features(model, speech, first, last), feats[:, first:last],
                                       rtol=1e-5, atol=1e-5)
        one_pass, one_pass_lens = model.encode(speech[None], torch.tensor([speech.numel()]))
        for window in (8, 40, total):
            windowed, lens = encode_in_windows(model, speech, window, context=total)
            assert lens.tolist() == one_pass_lens.tolist()
            torch.testing.assert_close(windowed, one_pass, rtol=1e-4, atol=1e-4)


def test_a_long_recording_decodes_in_windows_beside_short_ones(mini_recipe):
    """Over window + 2 x context a recording is encoded in windows: as many frames as in one pass, and the
    short utterances of its batch decode as they do alone."""
    import numpy as np
    import torch

    audio = _test_audio(mini_recipe, 5)
    long = np.concatenate(audio)
    one_pass = _speech2text(mini_recipe, encode_window_seconds=0)
    windowed = _speech2text(mini_recipe, encode_window_seconds=2.0, encode_context_seconds=0.5)
    assert len(long) > windowed.one_pass_samples > max(len(a) for a in audio[:2])
    batch = [long, audio[0], audio[1]]
    lengths = torch.tensor([len(a) for a in batch])
    speech = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(a) for a in batch], batch_first=True)
    results = windowed.decode_batch(speech, lengths)
    frames = windowed.last_counters.frames.tolist()
    expected = one_pass.decode_batch(speech, lengths)
    assert frames == one_pass.last_counters.frames.tolist()
    assert [r[0][0] for r in results[1:]] == [r[0][0] for r in expected[1:]]
    assert results[0][0][0]  # the long one has a hypothesis
    with pytest.raises(ValueError, match="encode_window_seconds"):
        _speech2text(mini_recipe, encode_window_seconds=-1)
