"""Specification of the ESPnet model, built through the task exactly as a yaml config would."""

import pytest
import torch

from espnet_hatiam.losses import transducer_loss
from espnet_hatiam.nets import HATJointNetwork, RNNTJointNetwork
from espnet_hatiam.tasks.hat_asr import HATASRTask

TOKENS = ["<blank>", "a", "b", "<space>", "c", "<sos/eos>"]
NO_DROPOUT = ", dropout_rate: 0.0, positional_dropout_rate: 0.0, attention_dropout_rate: 0.0"


def build(model_conf="{iam_weight: 0.3}", extra=(), token_list=TOKENS, encoder_extra=""):
    args = HATASRTask.get_parser().parse_args(
        [
            "--token_list", "unused",
            "--encoder", "conformer",
            "--encoder_conf", "{output_size: 32, num_blocks: 1, linear_units: 32, attention_heads: 2" + encoder_extra + "}",
            "--decoder", "transducer",
            "--decoder_conf", "{hidden_size: 16}",
            "--joint_net_conf", "{joint_space_size: 24}",
            "--frontend_conf", "{n_mels: 20}",
            "--model_conf", model_conf,
            *extra,
        ]
    )  # fmt: skip
    args.token_list = list(token_list)
    return HATASRTask.build_model(args)


def batch():
    """Two utterances of different lengths; text padded with -1 (ESPnet's collate)."""
    g = torch.Generator().manual_seed(1)
    speech = torch.randn(2, 3200, generator=g)
    speech_lengths = torch.tensor([3200, 2400])
    text = torch.tensor([[1, 2, 3, 4], [2, 1, -1, -1]])
    text_lengths = torch.tensor([4, 2])
    return speech, speech_lengths, text, text_lengths


def _stat(stats, key):
    return float(torch.as_tensor(stats[key]).reshape(-1)[0])


# ---------------------------------------------------------------- construction


def test_default_joint_is_hat_and_sizes_follow_config():
    model = build()
    joint = model.joint_network
    assert isinstance(joint, HATJointNetwork)
    assert joint.vocab_size == len(TOKENS)
    assert joint.joint_space_size == 24
    assert joint.lin_enc.in_features == 32 and joint.lin_dec.in_features == 16
    assert model.iam_weight == 0.3 and model.ilm_weight == 0.0


def test_joint_type_rnnt_selects_rnnt_joint():
    model = build(extra=["--joint_type", "rnnt"])
    assert isinstance(model.joint_network, RNNTJointNetwork)


def test_token_list_file_is_read_one_token_per_line(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("".join(t + "\n" for t in TOKENS), encoding="utf-8")
    args = HATASRTask.get_parser().parse_args(
        ["--token_list", str(path), "--encoder", "conformer",
         "--encoder_conf", "{output_size: 32, num_blocks: 1, linear_units: 32, attention_heads: 2}",
         "--decoder_conf", "{hidden_size: 16}", "--joint_net_conf", "{joint_space_size: 24}",
         "--frontend_conf", "{n_mels: 20}"]
    )  # fmt: skip
    model = HATASRTask.build_model(args)
    assert model.token_list == TOKENS
    assert model.joint_network.vocab_size == len(TOKENS)
    assert model.decoder.embed.num_embeddings == len(TOKENS)


def test_token_list_not_starting_with_blank_is_rejected():
    with pytest.raises(ValueError, match="token_list must start with <blank>, got 'a'"):
        build(token_list=["a", "<blank>", "b", "<sos/eos>"])


# ---------------------------------------------------------------- training


def test_training_step_gives_finite_loss_and_gradients_on_encoder_decoder_joint():
    model = build()
    model.train()
    loss, stats, weight = model(*batch())
    assert loss.numel() == 1 and torch.isfinite(loss).all() and loss.item() > 0
    assert int(weight.reshape(-1)[0]) == 2
    loss.sum().backward()
    for part in (model.encoder, model.decoder, model.joint_network):
        total = 0.0
        for name, p in part.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            total += float(p.grad.abs().sum())
        assert total > 0, type(part).__name__


def test_training_stats_are_loss_transducer_iam_and_loss_combines_them():
    model = build("{iam_weight: 0.3}")
    model.train()
    loss, stats, _ = model(*batch())
    assert set(stats) == {"loss", "loss_transducer", "loss_iam"}
    expected = _stat(stats, "loss_transducer") + 0.3 * _stat(stats, "loss_iam")
    assert float(loss.detach().reshape(-1)[0]) == pytest.approx(expected, rel=1e-5)
    assert _stat(stats, "loss") == pytest.approx(float(loss.detach().reshape(-1)[0]), rel=1e-6)


def test_vanilla_hat_without_iam_reports_only_hat_loss():
    model = build("{iam_weight: 0.0}")
    model.train()
    loss, stats, _ = model(*batch())
    assert set(stats) == {"loss", "loss_transducer"}
    assert float(loss.detach().reshape(-1)[0]) == pytest.approx(_stat(stats, "loss_transducer"), rel=1e-6)


def test_ilm_weight_adds_weighted_ilm_loss():
    model = build("{iam_weight: 0.3, ilm_weight: 0.2}")
    model.train()
    loss, stats, _ = model(*batch())
    assert set(stats) == {"loss", "loss_transducer", "loss_iam", "loss_ilm"}
    expected = _stat(stats, "loss_transducer") + 0.3 * _stat(stats, "loss_iam") + 0.2 * _stat(stats, "loss_ilm")
    assert float(loss.detach().reshape(-1)[0]) == pytest.approx(expected, rel=1e-5)
    assert _stat(stats, "loss_ilm") > 0


def test_negative_loss_weights_are_rejected():
    with pytest.raises(ValueError, match="iam_weight and ilm_weight must be >= 0, got -0.1"):
        build("{iam_weight: -0.1}")


def test_rnnt_joint_trains():
    model = build(extra=["--joint_type", "rnnt"])
    model.train()
    loss, stats, _ = model(*batch())
    assert set(stats) == {"loss", "loss_transducer", "loss_iam"}
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    for name, p in model.joint_network.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def _loss_and_parts(model_conf: str):
    """The model's training loss and stats on :func:`batch`, and the parts the losses are made of:
    encoder output and lengths, targets (padding as 0), their lengths, the blank-prefixed decoder output."""
    model = build(model_conf, encoder_extra=NO_DROPOUT)
    model.train()
    speech, speech_lengths, text, text_lengths = batch()
    loss, stats, _ = model(speech, speech_lengths, text, text_lengths)
    enc_out, enc_lens = model.encode(speech, speech_lengths)
    targets = text.clamp(min=0)
    dec_out = model.decoder(torch.cat([torch.zeros(2, 1, dtype=torch.long), targets], dim=1))
    return model, loss, stats, (enc_out, enc_lens, targets, text_lengths, dec_out)


def test_vanilla_hat_loss_equals_transducer_loss_computed_from_model_parts():
    model, loss, _, (enc_out, enc_lens, targets, text_lengths, dec_out) = _loss_and_parts("{iam_weight: 0.0}")
    assert enc_out.size(1) == int(enc_lens.max())
    assert dec_out.shape == (2, 5, 16)
    log_probs = model.joint_network(enc_out.unsqueeze(2), dec_out.unsqueeze(1))
    per_utt = transducer_loss(log_probs, targets, enc_lens, text_lengths, reduction="none")
    torch.testing.assert_close(loss.reshape(()), per_utt.mean(), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_iam_and_ilm_losses_equal_losses_computed_from_model_parts():
    model, _, stats, (enc_out, enc_lens, targets, text_lengths, dec_out) = _loss_and_parts(
        "{iam_weight: 0.3, ilm_weight: 0.2}")
    # IAM: CTC on joint.iam(encoder output), mean over utterances of summed NLL.
    iam = model.joint_network.iam(enc_out)
    ctc = torch.nn.functional.ctc_loss(
        iam.transpose(0, 1), targets, enc_lens, text_lengths, reduction="none", zero_infinity=True
    )
    assert _stat(stats, "loss_iam") == pytest.approx(float(ctc.mean()), rel=1e-5)
    # ILM: the prediction-network output after blank, y_1..y_u predicts y_{u+1}.
    ilm = model.joint_network.ilm(dec_out)  # (B, U+1, V)
    nll = [
        -sum(float(ilm[b, u, int(targets[b, u]) - 1]) for u in range(int(text_lengths[b]))) for b in range(2)
    ]
    assert _stat(stats, "loss_ilm") == pytest.approx(sum(nll) / 2, rel=1e-5)


def test_text_padded_wider_than_longest_target_is_trimmed():
    model = build("{iam_weight: 0.3}", encoder_extra=NO_DROPOUT)
    model.train()
    speech, speech_lengths, text, text_lengths = batch()
    wide = torch.cat([text, torch.full((2, 3), -1)], dim=1)
    loss_a, _, _ = model(speech, speech_lengths, text, text_lengths)
    loss_b, _, _ = model(speech, speech_lengths, wide, text_lengths)
    torch.testing.assert_close(loss_a, loss_b)


# ---------------------------------------------------------------- validation


def test_eval_mode_reports_all_losses_and_error_rates():
    model = build("{iam_weight: 0.3}")
    model.eval()
    with torch.no_grad():
        loss, stats, _ = model(*batch())
    assert set(stats) == {"loss", "loss_transducer", "loss_iam", "loss_ilm", "cer", "wer", "cer_iam", "wer_iam"}
    # ilm_weight = 0: the ILM loss is reported but does not enter the objective.
    expected = _stat(stats, "loss_transducer") + 0.3 * _stat(stats, "loss_iam")
    assert float(loss.detach().reshape(-1)[0]) == pytest.approx(expected, rel=1e-5)

    with torch.no_grad():  # blank certain everywhere: HAT and IAM emit nothing, every word and letter is an error
        model.joint_network.lin_blank.weight.zero_()
        model.joint_network.lin_blank.bias.fill_(100.0)
        _, stats, _ = model(*batch())
    assert {key: _stat(stats, key) for key in ("cer", "wer", "cer_iam", "wer_iam")} == {
        "cer": 1.0, "wer": 1.0, "cer_iam": 1.0, "wer_iam": 1.0}


def test_eval_mode_of_vanilla_hat_still_reports_iam_but_loss_is_hat_only():
    model = build("{iam_weight: 0.0}")
    model.eval()
    with torch.no_grad():
        loss, stats, _ = model(*batch())
    assert {"loss_iam", "loss_ilm", "cer_iam", "wer_iam"} <= set(stats)
    assert float(loss.detach().reshape(-1)[0]) == pytest.approx(_stat(stats, "loss_transducer"), rel=1e-6)


# ---------------------------------------------------------------- collect_stats


def test_collect_feats_returns_frontend_features_and_lengths():
    model = build()
    speech, speech_lengths, _, _ = batch()
    out = model.collect_feats(speech, speech_lengths)
    assert set(out) == {"feats", "feats_lengths"}
    feats, lengths = out["feats"], out["feats_lengths"]
    assert feats.dim() == 3 and feats.size(0) == 2 and feats.size(2) == 20
    assert lengths.tolist()[0] == feats.size(1) and lengths[1] < lengths[0]
    for b in range(2):  # each utterance's features as the frontend makes them for it alone (batch invariance)
        ref_feats, ref_lengths = model.frontend(speech[b : b + 1, : speech_lengths[b]], speech_lengths[b : b + 1])
        assert int(lengths[b]) == int(ref_lengths[0])
        torch.testing.assert_close(feats[b, : lengths[b]], ref_feats[0])
        assert not feats[b, lengths[b] :].any()
