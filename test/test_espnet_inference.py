"""espnet_asr_inference: ESPnet's Speech2Text on a CTC/attention model, written in hat_asr_inference's layout.

The model is a tiny randomly initialised ESPnet CTC/attention model built through
``ASRTask`` and saved like ``espnet2.bin.asr_train`` saves one (config.yaml + state dict),
so no training is needed; the output need not be right, only well formed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch
import yaml

from espnet_hatiam.data.kaldi import read_table
from tiny_corpus import make_data_dir

REPO = Path(__file__).resolve().parent.parent
TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "<space>", "<sos/eos>"]
STATS_KEYS = {
    "utterances", "audio_seconds", "encoder_seconds", "search_seconds",
    "frames", "frames_kept", "joint_evaluations", "label_projections",
}
DECODE_CONFIG = "beam_size: 2\nctc_weight: 0.3\nlm_weight: 0.0\npenalty: 0.0\n"  # like conf/decode_espnet_ctc_att.yaml


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``(folder, config.yaml, model.pth, wav.scp, key file of 4 of its 6 utterances)``."""
    from espnet2.tasks.asr import ASRTask

    root = tmp_path_factory.mktemp("espnet_ctc_att")
    args = ASRTask.get_parser().parse_args([
        "--token_list", "unused", "--token_type", "char", "--output_dir", str(root / "exp"),
        "--frontend_conf", "{n_fft: 512, hop_length: 160, n_mels: 20}",
        "--normalize", "utterance_mvn",
        "--encoder", "transformer",
        "--encoder_conf", "{output_size: 16, attention_heads: 2, linear_units: 16, num_blocks: 1, input_layer: conv2d}",
        "--decoder", "transformer",
        "--decoder_conf", "{attention_heads: 2, linear_units: 16, num_blocks: 1}",
        "--model_conf", "{ctc_weight: 0.3}",
    ])
    args.token_list = list(TOKENS)
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    config, model_file = root / "config.yaml", root / "valid.acc.ave.pth"
    torch.save(model.state_dict(), model_file)
    config.write_text(yaml.safe_dump(vars(args)))
    data = make_data_dir(root, "test", 6, seed=3)
    keys = sorted(read_table(data / "wav.scp"))[:4]
    key_file = root / "keys.scp"
    key_file.write_text("".join(f"{k}\n" for k in keys))
    (root / "decode.yaml").write_text(DECODE_CONFIG)
    return root, config, model_file, data / "wav.scp", key_file


@pytest.fixture
def _keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _options(tiny, output_dir, *extra):
    root, config, model_file, wav_scp, key_file = tiny
    return [
        "--config", str(root / "decode.yaml"), "--device", "cpu",
        "--asr_train_config", str(config), "--asr_model_file", str(model_file),
        "--data_path_and_name_and_type", f"{wav_scp},speech,sound", "--key_file", str(key_file),
        "--batch_size", "1", "--num_threads", "1", "--output_dir", str(output_dir), *extra,
    ]


def test_cli_writes_the_hat_inference_layout(tiny, tmp_path, _keep_torch_threads):
    from espnet_hatiam.bin.espnet_asr_inference import main

    out = tmp_path / "decode"
    main(_options(tiny, out))  # the recipe's stage 12 command line, in-process (ESPnet imports take ~15 s)
    keys = tiny[4].read_text().split()
    for name in ("text", "token", "token_int", "score"):
        assert sorted(read_table(out / "1best_recog" / name)) == keys, name
    tokens, token_ids = read_table(out / "1best_recog" / "token"), read_table(out / "1best_recog" / "token_int")
    for key in keys:
        assert [TOKENS.index(t) for t in tokens[key].split()] == [int(i) for i in token_ids[key].split()]
        float(read_table(out / "1best_recog" / "score")[key])

    stats = json.loads((out / "decode_stats.json").read_text())
    assert STATS_KEYS <= set(stats)
    assert stats["utterances"] == 4
    seconds = sum(soundfile.info(path).duration for utt, path in read_table(tiny[3]).items() if utt in keys)
    assert stats["audio_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert stats["encoder_seconds"] > 0 and stats["search_seconds"] > 0
    assert stats["frames"] > 0 and stats["frames_kept"] == stats["frames"]
    assert stats["joint_evaluations"] == 0 and stats["label_projections"] == 0
    assert (stats["search"], stats["beam_size"], stats["ctc_weight"]) == ("espnet_ctc_att", 2, 0.3)  # from --config
    assert (stats["batch_size"], stats["num_threads"]) == (1, 1)

    utt_stats = [json.loads(line) for line in (out / "utt_stats.jsonl").read_text().splitlines()]
    assert [u["utt"] for u in utt_stats] == keys
    assert sum(u["frames"] for u in utt_stats) == stats["frames"]


def test_split_encode_and_search_reproduce_speech2text(tiny):
    """Timing the encoder apart must not change what ESPnet's Speech2Text decodes."""
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_hatiam.bin.espnet_asr_inference import decode_one

    _, config, model_file, wav_scp, _ = tiny
    speech2text = Speech2Text(config, model_file, beam_size=2, ctc_weight=0.3, lm_weight=0.0, nbest=2)
    for path in list(read_table(wav_scp).values())[:2]:
        audio = torch.as_tensor(soundfile.read(path, dtype="float32")[0])
        expected = speech2text(audio)
        results, stats = decode_one(speech2text, audio)
        assert [r[:3] for r in results] == [e[:3] for e in expected]
        assert [float(r[3].score) for r in results] == pytest.approx([float(e[3].score) for e in expected])
        assert stats["frames"] > 0 and stats["encoder_seconds"] >= 0 and stats["search_seconds"] >= 0


def _run_cli(options):
    return subprocess.run(
        [sys.executable, "-m", "espnet_hatiam.bin.espnet_asr_inference", *options],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def _error_lines(result):
    """stderr without the echoed command line (ESPnet's convention, as hat_asr_inference)."""
    return [line for line in result.stderr.splitlines()[1:] if line.strip()]


def test_missing_model_file_is_a_one_line_error(tiny, tmp_path):
    options = _options(tiny, tmp_path / "decode")
    options[options.index("--asr_model_file") + 1] = str(tmp_path / "missing.pth")
    result = _run_cli(options)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert _error_lines(result) == [f"espnet_asr_inference.py: --asr_model_file: no such file '{tmp_path / 'missing.pth'}'"]
    assert not (tmp_path / "decode" / "decode_stats.json").exists()


def test_batch_size_other_than_one_is_refused(tiny, tmp_path):
    options = _options(tiny, tmp_path / "decode")
    options[options.index("--batch_size") + 1] = "4"
    result = _run_cli(options)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    (line,) = _error_lines(result)
    assert "--batch_size 4" in line and "use 1" in line
