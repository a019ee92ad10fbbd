"""Streaming: chunked encoder, streaming features, the streaming recognizer and its CLI (issue 29)."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_hatiam.bin.hat_asr_streaming import HATSpeech2TextStreaming, stream_file
from espnet_hatiam.errors import InputError
from espnet_hatiam.models.chunked_encoder import ChunkedConformerEncoder, EncoderStream
from espnet_hatiam.models.feature_stream import FeatureStream, whole_features
from espnet_hatiam.search import decode_encoded
from espnet_hatiam.tasks.hat_asr import HATASRTask

from tiny_model import TOKENS

CONFORMER = dict(output_size=32, attention_heads=2, linear_units=48, num_blocks=2, input_layer="conv2d",
                 macaron_style=True, rel_pos_type="latest", pos_enc_layer_type="rel_pos",
                 selfattention_layer_type="rel_selfattn", activation_type="swish", use_cnn_module=True,
                 cnn_module_kernel=5)


def _encoder(**options) -> ChunkedConformerEncoder:
    torch.manual_seed(0)
    return ChunkedConformerEncoder(20, **{**CONFORMER, **options}).eval()


def _stream(stream, inputs: torch.Tensor, pieces, axis: int) -> torch.Tensor:
    """Push ``inputs`` in pieces of the sizes ``pieces`` (cycled) along ``axis``; the concatenated output."""
    outputs, begin, k = [], 0, 0
    total = inputs.size(axis)
    while begin < total:
        size = pieces[k % len(pieces)]
        piece = inputs.narrow(axis, begin, min(size, total - begin))
        outputs.append(stream.push(piece, final=begin + size >= total))
        begin, k = begin + size, k + 1
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("frames", [53, 101])  # 12 and 24 encoder frames
@pytest.mark.parametrize("chunk", [1, 3, 8])
@pytest.mark.parametrize("left_chunks", [-1, 1])
def test_chunk_by_chunk_encoding_equals_the_whole_utterance_under_the_chunk_mask(frames, chunk, left_chunks):
    encoder = _encoder(num_left_chunks=left_chunks)
    feats = torch.randn(1, frames, 20)
    whole, lengths, _ = encoder(feats, torch.tensor([frames]), chunk_size=chunk)
    streamed = _stream(EncoderStream(encoder, chunk), feats, [5, 1, 13, 7, 2, 30], axis=1)
    assert streamed.shape == whole.shape and int(lengths) == whole.size(1)
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("input_layer", ["conv2d6", "conv2d8"])
def test_other_subsamplings_stream_equal_to_the_whole_utterance(input_layer):
    encoder = _encoder(input_layer=input_layer)
    feats = torch.randn(1, 157, 20)
    whole, _, _ = encoder(feats, torch.tensor([157]), chunk_size=3)
    streamed = _stream(EncoderStream(encoder, 3), feats, [11, 2, 40], axis=1)
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-5)


def test_the_chunked_conformer_defaults_to_and_needs_position_free_relative_positions():
    conf = {k: v for k, v in CONFORMER.items() if k != "rel_pos_type"}
    encoder = ChunkedConformerEncoder(20, **conf)  # ESPnet's own default would be legacy
    assert type(encoder.embed.out[-1]).__name__ == "RelPositionalEncoding"
    with pytest.raises(InputError, match="rel_pos_type / pos_enc_layer_type"):
        ChunkedConformerEncoder(20, **{**CONFORMER, "rel_pos_type": "legacy"})
    with pytest.raises(InputError, match="input_layer 'linear'"):
        ChunkedConformerEncoder(20, **{**CONFORMER, "input_layer": "linear"})


def test_the_chunk_mask_hides_later_chunks_and_the_convolution_is_causal():
    encoder = _encoder()
    feats = torch.randn(1, 101, 20)
    changed = feats.clone()
    changed[:, 60:] = torch.randn(1, 41, 20)  # input frames 60.. reach encoder frames 14.. (4t + 6 >= 60)
    out, _, _ = encoder(feats, torch.tensor([101]), chunk_size=4)
    out_changed, _, _ = encoder(changed, torch.tensor([101]), chunk_size=4)
    torch.testing.assert_close(out[:, :12], out_changed[:, :12])  # chunks 0-2 end before encoder frame 13
    assert not torch.allclose(out[:, 12:], out_changed[:, 12:])
    full, _, _ = encoder(feats, torch.tensor([101]), chunk_size=0)
    full_changed, _, _ = encoder(changed, torch.tensor([101]), chunk_size=0)
    assert not torch.allclose(full[:, :12], full_changed[:, :12])  # whole-utterance attention sees the future


def test_chunked_encoding_is_batch_invariant():
    from espnet_hatiam.models.padding import mask_encoder_padding

    encoder = _encoder()
    mask_encoder_padding(encoder)  # as ESPnetHATModel installs it
    long, short = torch.randn(1, 101, 20), torch.randn(1, 57, 20)
    batch = torch.nn.utils.rnn.pad_sequence([long[0], short[0]], batch_first=True)
    out, lengths, _ = encoder(batch, torch.tensor([101, 57]), chunk_size=3)
    alone, alone_lengths, _ = encoder(short, torch.tensor([57]), chunk_size=3)
    assert int(lengths[1]) == int(alone_lengths[0])
    torch.testing.assert_close(out[1:, : int(lengths[1])], alone, atol=1e-5, rtol=1e-5)


def test_streams_fed_side_by_side_equal_each_stream_fed_alone_and_a_selected_stream_goes_on_alone():
    from espnet2.asr.frontend.default import DefaultFrontend

    frontend = DefaultFrontend(fs=16000, n_fft=512, hop_length=160, n_mels=20).eval()
    encoder = _encoder()
    waves = torch.randn(3, 9000)
    features, encoders = FeatureStream(frontend, None), EncoderStream(encoder, 3)
    together = [encoders.push(features.push(waves[:, begin: begin + 1300])) for begin in range(0, 5200, 1300)]
    # stream 1 ends apart from the others: it goes on alone from where the batch left it
    last = encoders.select([1]).push(features.select([1]).push(waves[1:2, 5200:], final=True), final=True)
    assert together[-1].size(0) == 3
    for b in range(3):
        feature_stream, encoder_stream = FeatureStream(frontend, None), EncoderStream(encoder, 3)
        alone = [encoder_stream.push(feature_stream.push(waves[b, begin: begin + 1300]))
                 for begin in range(0, 5200, 1300)]
        torch.testing.assert_close(torch.cat([t[b: b + 1] for t in together], 1), torch.cat(alone, 1),
                                   atol=1e-5, rtol=1e-5)
    # the selected stream shares nothing with the batch: the batch goes on as if it had not been taken from
    more = encoders.push(features.push(waves[:, 5200:6500]))
    feature_stream, encoder_stream = FeatureStream(frontend, None), EncoderStream(encoder, 3)
    alone = [encoder_stream.push(feature_stream.push(waves[0, begin: begin + 1300]))
             for begin in range(0, 6500, 1300)]
    torch.testing.assert_close(torch.cat([t[:1] for t in together] + [more[:1]], 1), torch.cat(alone, 1),
                               atol=1e-5, rtol=1e-5)
    whole_feats, lengths = whole_features(frontend, None, waves[1])
    whole, _, _ = encoder(whole_feats, lengths, chunk_size=3)
    torch.testing.assert_close(torch.cat([t[1:2] for t in together] + [last], 1), whole, atol=1e-5, rtol=1e-5)


def test_dynamic_chunk_training_draws_chunks_and_sometimes_the_whole_utterance():
    encoder = _encoder(dynamic_chunk_training=True, short_chunk_size=4)
    torch.manual_seed(1)
    draws = [encoder.draw_chunk_size(100) for _ in range(400)]
    assert set(draws) <= {1, 2, 3, 4, 100} and {1, 4, 100} <= set(draws)
    assert 0.15 < draws.count(100) / len(draws) < 0.35  # above 0.75 x 100 of 1..99: a quarter


@pytest.mark.parametrize("samples", [200, 300, 1000, 16037])
@pytest.mark.parametrize("piece", [7, 160, 777, 100000])
def test_streaming_features_equal_the_whole_recordings(samples, piece):
    from espnet2.asr.frontend.default import DefaultFrontend

    frontend = DefaultFrontend(fs=16000, n_fft=512, hop_length=160, n_mels=20).eval()
    wave = torch.randn(samples)
    if samples <= 256:  # shorter than half a window: the whole-recording STFT refuses it, a stream has no frame
        assert _stream(FeatureStream(frontend, None), wave, [piece], axis=0).size(1) == 0
        return
    whole, _ = whole_features(frontend, None, wave)
    streamed = _stream(FeatureStream(frontend, None), wave, [piece], axis=0)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def streaming_model(tmp_path_factory):
    """A randomly initialised streaming HAT+IAM model's config.yaml and weights, as training writes them."""
    root = tmp_path_factory.mktemp("streaming_model")
    rng = np.random.default_rng(0)
    np.savez(root / "feats_stats.npz", count=np.array(100.0), sum=rng.standard_normal(20) * 100,
             sum_square=np.full(20, 400.0))  # global mean/variance normalisation, as the recipes train
    args = HATASRTask.get_parser().parse_args([
        "--normalize", "global_mvn", "--normalize_conf", json.dumps({"stats_file": str(root / "feats_stats.npz")}),
        "--token_list", "unused", "--token_type", "char", "--joint_type", "hat",
        "--encoder", "chunked_conformer", "--encoder_conf", json.dumps({**CONFORMER, "dynamic_chunk_training": True}),
        "--decoder", "transducer", "--decoder_conf", "{hidden_size: 16}",
        "--joint_net_conf", "{joint_space_size: 24}", "--frontend_conf", "{n_mels: 20, hop_length: 160}",
        "--model_conf", "{iam_weight: 0.3}",
    ])
    args.token_list = list(TOKENS)
    torch.manual_seed(3)
    model = HATASRTask.build_model(args)
    (root / "config.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(vars(args)))))
    torch.save(model.state_dict(), root / "model.pth")
    return root / "config.yaml", root / "model.pth"


def _recognizer(streaming_model, **options) -> HATSpeech2TextStreaming:
    config, weights = streaming_model
    return HATSpeech2TextStreaming(config, weights, **options)


def _feed(recognizer, wave: np.ndarray, piece: int):
    """A new stream of ``wave`` in pieces of ``piece`` samples: the result of every call."""
    recognizer.reset()
    partials = []
    for begin in range(0, len(wave), piece):
        partials.append(recognizer(wave[begin: begin + piece], is_final=begin + piece >= len(wave)))
    return partials


@pytest.mark.parametrize("search", [
    dict(search_type="beam", beam_size=3, nbest=3),
    dict(search_type="beam", beam_size=3, nbest=2, iam_blank_threshold=0.6, hat_blank_threshold=0.6),
    dict(search_type="greedy", hat_blank_threshold=0.7),
])
@pytest.mark.parametrize("chunk,piece", [(1, 400), (3, 1234), (16, 16000)])
def test_a_stream_ends_with_the_offline_decode_of_the_same_chunked_encoder_output(streaming_model, search, chunk, piece):
    recognizer = _recognizer(streaming_model, chunk_size=chunk, **search)
    wave = np.random.default_rng(chunk).standard_normal(27_000).astype(np.float32) * 0.1
    final = _feed(recognizer, wave, piece)[-1]
    model = recognizer.model
    feats, lengths = whole_features(model.frontend, model.normalize, torch.from_numpy(wave))
    enc_out, enc_lens, _ = model.encoder(feats, lengths, chunk_size=chunk)
    offline = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, recognizer.config)[0]
    assert [r[2] for r in final] == [list(h.token_ids) for h in offline]
    np.testing.assert_allclose([r[3].score for r in final], [h.score for h in offline], atol=1e-4)


@pytest.mark.parametrize("search", [
    dict(search_type="beam", beam_size=3, nbest=2),
    dict(search_type="beam", beam_size=3, nbest=2, iam_blank_threshold=0.6, hat_blank_threshold=0.6),
    dict(search_type="greedy", hat_blank_threshold=0.7),
])
def test_a_batch_streamed_side_by_side_gives_each_utterance_its_own_streams_result(streaming_model, search):
    recognizer = _recognizer(streaming_model, chunk_size=3, **search)
    rng = np.random.default_rng(5)
    # ending at different pieces, two in the same piece, one shorter than a piece, one without a frame, one empty
    lengths = [27_000, 9_100, 400, 18_000, 9_000, 200, 0]
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths]
    padded = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(w) for w in waves], batch_first=True)
    chunk_batches = []  # the streams each encoder chunk carried: side by side, not one after another
    encode_chunk = EncoderStream._chunk
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EncoderStream, "_chunk", lambda self, x: chunk_batches.append(x.size(0)) or encode_chunk(self, x))
        together = recognizer.decode_batch(padded, torch.tensor(lengths))
    piece = round(recognizer.chunk_seconds * recognizer.fs)
    assert max(chunk_batches) == sum(n > piece for n in lengths)  # every utterance longer than one piece at once
    counters = recognizer.last_counters
    for b, wave in enumerate(waves):
        alone = _feed(recognizer, wave, piece)[-1] if len(wave) else (recognizer.reset() or recognizer(wave, True))
        assert [r[2] for r in together[b]] == [r[2] for r in alone]
        np.testing.assert_allclose([r[3].score for r in together[b]], [r[3].score for r in alone], atol=1e-4)
        for name in ("frames", "frames_kept"):
            assert counters.utterance(b)[name] == recognizer.last_counters.utterance(0)[name]
    one = recognizer.decode_batch(padded[:1], torch.tensor(lengths[:1]))  # a batch of one is a stream
    assert [r[2] for r in one[0]] == [r[2] for r in together[0]]


def test_partials_grow_to_the_final_hypothesis_and_a_reset_stream_starts_afresh(streaming_model):
    recognizer = _recognizer(streaming_model, chunk_size=4, search_type="greedy")
    wave = np.random.default_rng(0).standard_normal(20_000).astype(np.float32) * 0.1
    partials = _feed(recognizer, wave, 1600)
    assert len(partials) == 13 and all(len(p) == 1 for p in partials)
    final = partials[-1][0][2]
    for partial in partials[:-1]:  # greedy: a partial is a prefix of what follows
        assert final[: len(partial[0][2])] == partial[0][2]
    with pytest.raises(InputError, match=r"audio after the final chunk \(is_final=True\) of the stream: call reset\(\)"):
        recognizer(wave[:100])
    recognizer.reset()
    assert _feed(recognizer, wave, 20_000)[-1][0][2] == final


def test_bad_chunks_are_named_in_one_line(streaming_model):
    recognizer = _recognizer(streaming_model, chunk_size=4)
    with pytest.raises(InputError, match="8000 Hz: this model expects 16000 Hz"):
        recognizer(np.zeros(800, dtype=np.float32), sample_rate=8000)
    with pytest.raises(InputError, match=r"shape \(800, 2\): expected mono"):
        recognizer(np.zeros((800, 2), dtype=np.float32))
    recognizer(np.zeros(16000, dtype=np.float32))
    nan = np.zeros(800, dtype=np.float32)
    nan[10] = np.nan
    with pytest.raises(InputError, match="after 1.00 s of the stream has NaN or inf"):
        recognizer(nan)
    with pytest.raises(InputError, match="chunk_size 0"):
        _recognizer(streaming_model, chunk_size=0)


def test_an_offline_conformer_or_utterance_normalisation_cannot_stream():
    from tiny_model import build_tiny_model

    model = build_tiny_model()
    with pytest.raises(InputError, match="chunked_conformer with causal_conv"):
        EncoderStream(model.encoder, 4)
    with pytest.raises(InputError, match="not UtteranceMVN, which needs the whole utterance"):
        FeatureStream(model.frontend, model.normalize)


def test_cli_prints_partials_with_their_times_and_the_final_text(streaming_model, tmp_path):
    config, weights = streaming_model
    wave = np.random.default_rng(1).standard_normal(24_000).astype(np.float32) * 0.1
    soundfile.write(tmp_path / "live.wav", wave, 16000)
    out = subprocess.run([sys.executable, "-m", "espnet_hatiam.bin.hat_asr_streaming", "--asr_train_config",
                          str(config), "--asr_model_file", str(weights), "--wav", str(tmp_path / "live.wav"),
                          "--chunk_size", "4", "--feed_ms", "200", "--search_type", "greedy"],
                         capture_output=True, text=True, check=True)
    lines = [line for line in out.stdout.splitlines() if re.match(r"\s*\d+\.\d\ds  |final: ", line)]
    assert lines[-1].startswith("final: ") and len(lines) >= 2  # ESPnet's import may print a line of its own
    recognizer = _recognizer(streaming_model, chunk_size=4, search_type="greedy")
    assert lines[-1] == "final: " + _feed(recognizer, wave, 3200)[-1][0][0]
    times = [float(line.split("s ", 1)[0]) for line in lines[:-1]]
    assert times == sorted(times) and all(0 < t < 1.5 for t in times)
    assert "chunks of 160 ms" in out.stderr


def test_cli_names_a_stereo_recording_in_one_line(streaming_model, tmp_path):
    from espnet_hatiam.bin.hat_asr_streaming import main

    config, weights = streaming_model
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((8000, 2), dtype=np.float32), 16000)
    with pytest.raises(SystemExit) as exit_info:
        main(["--asr_train_config", str(config), "--asr_model_file", str(weights), "--wav", str(stereo)])
    assert str(exit_info.value.code).endswith(f"--wav {stereo}: 2 channels, the model expects mono")  # sys.exit(message)



def test_a_recipe_decodes_a_set_streamed_through_the_inference_cli(streaming_model, tmp_path):
    """hat_asr_inference --streaming (a decode yaml's streaming: true): ESPnet's layout, the recognizer's text."""
    from espnet_hatiam.bin.hat_asr_inference import main

    config, weights = streaming_model
    rng = np.random.default_rng(2)
    waves = {f"utt{i}": (rng.standard_normal(9000 + 4000 * i) * 0.1).astype(np.float32) for i in range(3)}
    with open(tmp_path / "wav.scp", "w") as scp:
        for key, wave in waves.items():
            soundfile.write(tmp_path / f"{key}.wav", wave, 16000)
            scp.write(f"{key} {tmp_path / key}.wav\n")
    main(["--asr_train_config", str(config), "--asr_model_file", str(weights), "--output_dir", str(tmp_path / "out"),
          "--data_path_and_name_and_type", f"{tmp_path / 'wav.scp'},speech,sound", "--batch_size", "2",
          "--streaming", "true", "--chunk_size", "4", "--search_type", "greedy", "--iam_blank_threshold", "0.9"])
    text = dict(line.split(" ", 1) if " " in line else (line, "")
                for line in (tmp_path / "out/1best_recog/text").read_text().splitlines())
    recognizer = _recognizer(streaming_model, chunk_size=4, search_type="greedy", iam_blank_threshold=0.9)
    assert text == {key: _feed(recognizer, wave, 2560)[-1][0][0] for key, wave in waves.items()}
    stats = json.loads((tmp_path / "out/decode_stats.json").read_text())
    assert stats["streaming"] is True and stats["chunk_size"] == 4 and stats["utterances"] == 3
    assert stats["frames"] >= stats["frames_kept"] > 0


@pytest.mark.parametrize("directory", ["conf", "egs/an4/asr1/conf"])
def test_the_streaming_config_has_the_offline_models_parameters_and_an_encoder_that_streams(directory):
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / directory
    models = {}
    for name in ("train_hat_iam", "train_hat_iam_streaming"):
        args = HATASRTask.get_parser().parse_args(["--config", str(conf / f"{name}.yaml"), "--token_list", "x"])
        args.token_list = ["<blank>", "<unk>"] + [f"t{i}" for i in range(27)] + ["<sos/eos>"]
        models[name] = HATASRTask.build_model(args)
    offline, streaming = (models[n].state_dict() for n in ("train_hat_iam", "train_hat_iam_streaming"))
    assert {k: v.shape for k, v in offline.items()} == {k: v.shape for k, v in streaming.items()}
    EncoderStream(models["train_hat_iam_streaming"].encoder.eval(), 16)  # accepted: chunked, causal
