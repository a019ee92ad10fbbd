"""Batch invariance (docs/RELIABILITY.md): an utterance is encoded, scored and decoded the same
whether it is alone or padded in a batch beside much longer ones, in training and decoding.

The model is the project's conformer (conv2d subsampling, convolution modules, ESPnet's current
relative positional encoding) built through the task, or the streaming one (``chunked_conformer``:
chunked attention, causal convolutions) under a chunk mask; the reference is each utterance alone.
"""

import logging

import pytest
import torch

from espnet_hatiam.models.padding import subsampled_lengths
from espnet_hatiam.search import SearchConfig, SearchCounters, decode_encoded
from espnet_hatiam.tasks.hat_asr import HATASRTask

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "<sos/eos>"]
LENGTHS = [32000, 2385, 9000, 4161]  # 2 s down to 0.15 s: 62 to 4 encoder frames


ENCODERS = {"conformer": "", "chunked_conformer": ", chunk_size: 4"}  # the streaming one: chunks of 4 frames


def build(input_layer="conv2d", rel_pos_type="latest", encoder="conformer"):
    args = HATASRTask.get_parser().parse_args([
        "--token_list", "unused", "--encoder", encoder,
        "--encoder_conf", f"{{output_size: 32, num_blocks: 2, linear_units: 32, attention_heads: 2, "
                          f"cnn_module_kernel: 15, input_layer: {input_layer}, rel_pos_type: {rel_pos_type}"
                          f"{ENCODERS[encoder]}}}",
        "--decoder_conf", "{hidden_size: 16}", "--joint_net_conf", "{joint_space_size: 24}",
        "--frontend_conf", "{n_fft: 512, hop_length: 160, n_mels: 20}", "--model_conf", "{iam_weight: 0.3}",
    ])
    args.token_list = list(TOKENS)
    torch.manual_seed(0)
    return HATASRTask.build_model(args).eval()


def _speech():
    g = torch.Generator().manual_seed(3)
    speech = 0.1 * torch.randn(len(LENGTHS), max(LENGTHS), generator=g)
    lengths = torch.tensor(LENGTHS)
    return speech.masked_fill(torch.arange(speech.size(1)) >= lengths[:, None], 0.0), lengths


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d6", "conv2d8"])
def test_subsampled_lengths_follow_the_convolutions(input_layer):
    embed = build(input_layer).encoder.embed
    for frames in range(16, 90):  # from what conv2d8 needs
        with torch.no_grad():
            out, _ = embed(torch.zeros(1, frames, 20), torch.ones(1, 1, frames, dtype=torch.bool))
        out = out[0] if isinstance(out, tuple) else out
        assert subsampled_lengths(embed, torch.tensor([frames])).item() == out.size(1), frames


@pytest.mark.parametrize("input_layer,encoder", [("conv2d", "conformer"), ("conv2d6", "conformer"),
                                                 ("conv2d", "chunked_conformer")])
def test_encoder_output_of_a_batch_equals_each_utterance_alone(input_layer, encoder):
    model = build(input_layer, encoder=encoder)
    speech, lengths = _speech()
    with torch.no_grad():
        enc_out, enc_lens = model.encode(speech, lengths)
        for b, length in enumerate(LENGTHS):
            alone, alone_len = model.encode(speech[b : b + 1, :length], lengths[b : b + 1])
            assert int(enc_lens[b]) == int(alone_len[0]), f"utterance {b}: lengths"
            torch.testing.assert_close(enc_out[b, : int(alone_len[0])], alone[0], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_losses_of_a_batch_equal_each_utterance_alone(encoder):
    model = build(encoder=encoder)
    speech, lengths = _speech()
    text = torch.tensor([[2, 3, 4, 5], [3, 2, -1, -1], [5, -1, -1, -1], [2, 4, 3, -1]])
    text_lengths = (text >= 0).sum(1)
    with torch.no_grad():
        _, stats, _ = model(speech, lengths, text, text_lengths)
        alone = [model(speech[b : b + 1, :n], lengths[b : b + 1], text[b : b + 1], text_lengths[b : b + 1])[1]
                 for b, n in enumerate(LENGTHS)]
    for name in ("loss_transducer", "loss_iam"):
        expected = sum(float(s[name]) for s in alone) / len(alone)
        assert float(stats[name]) == pytest.approx(expected, rel=1e-5), name


@pytest.mark.parametrize("options", [
    dict(search_type="greedy"),
    dict(beam_size=3, nbest=2),
    # this untrained model's IAM P(blank) is 0.35-0.56: 0.45 skips some frames of most utterances, not all; its
    # HAT P(blank) stays below 0.5: at 0.45 some rows are blank-certain (their label projections skipped)
    dict(beam_size=3, iam_blank_threshold=0.45, hat_blank_threshold=0.45),
])
@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_decoding_a_batch_equals_decoding_one_by_one(options, encoder):
    """Same hypotheses, scores and work counters; with thresholds, frames and label projections are skipped."""
    model = build(encoder=encoder)
    config = SearchConfig(**options)
    speech, lengths = _speech()

    def decode(speech, lengths):
        enc_out, enc_lens = model.encode(speech, lengths)
        counters = SearchCounters.for_lengths(enc_lens)
        return decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, config, counters), counters

    with torch.no_grad():
        batched, counters = decode(speech, lengths)
        for b, length in enumerate(LENGTHS):
            (alone,), alone_counters = decode(speech[b : b + 1, :length], lengths[b : b + 1])
            assert [h.token_ids for h in batched[b]] == [h.token_ids for h in alone], f"utterance {b}"
            assert [float(h.score) for h in batched[b]] == pytest.approx([float(h.score) for h in alone], abs=1e-4)
            assert counters.utterance(b) == alone_counters.utterance(0), f"utterance {b}"
    totals = counters.totals()
    if config.iam_blank_threshold < 1.0:
        assert 0 < totals["frames_kept"] < totals["frames"], totals
    if config.hat_blank_threshold < 1.0:
        assert totals["label_projections"] < totals["joint_evaluations"], totals


def test_legacy_relative_positions_are_named_as_not_batch_invariant(caplog):
    with caplog.at_level(logging.WARNING):
        build(rel_pos_type="legacy")
    assert "rel_pos_type: legacy" in caplog.text and "not batch-invariant" in caplog.text
