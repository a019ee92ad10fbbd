"""Specification of the joint networks (docs/METHOD.md sections 1-2, CONTRACT.md).

Every mathematical check compares against a slow, obvious float64 computation written
out here from the formulas, not from the package code.
"""

import pytest
import torch

from espnet_hatiam.nets import HATJointNetwork, JOINT_TYPES, RNNTJointNetwork

VOCAB = 7  # blank + 6 labels
DE, DD, J = 5, 4, 6
JOINTS = [HATJointNetwork, RNNTJointNetwork]


def make_joint(cls, vocab=VOCAB, dtype=torch.float64, **kw):
    joint = cls(vocab, DE, DD, joint_space_size=J, **kw).to(dtype)
    # Non-trivial biases everywhere, so a dropped or misplaced bias is visible.
    with torch.no_grad():
        for p in joint.parameters():
            p.normal_(0.0, 0.7)
    return joint


def broadcast_inputs(B=2, T=3, U1=4, dtype=torch.float64):
    enc = torch.randn(B, T, 1, DE, dtype=dtype)
    dec = torch.randn(B, 1, U1, DD, dtype=dtype)
    return enc, dec


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize("cls", JOINTS)
def test_output_is_normalized_distribution_over_vocab_size_entries(cls):
    joint = make_joint(cls)
    enc, dec = broadcast_inputs()
    out = joint(enc, dec)
    assert out.shape == (2, 3, 4, VOCAB)
    assert torch.allclose(out.logsumexp(-1), torch.zeros(2, 3, 4, dtype=out.dtype), atol=1e-12)
    assert (out <= 0).all()


def test_hat_blank_is_index_zero_and_is_sigmoid_of_blank_logit():
    joint = make_joint(HATJointNetwork)
    with torch.no_grad():
        joint.lin_blank.bias.fill_(50.0)  # P(blank) ~ 1
    out = joint(torch.randn(3, DE, dtype=torch.float64), torch.randn(3, DD, dtype=torch.float64))
    assert torch.allclose(out[:, 0].exp(), torch.ones(3, dtype=out.dtype), atol=1e-6)


def test_rnnt_blank_is_index_zero_of_the_output_projection():
    joint = make_joint(RNNTJointNetwork)
    with torch.no_grad():
        joint.lin_out.bias.zero_()
        joint.lin_out.bias[0] = 50.0
    out = joint(torch.randn(3, DE, dtype=torch.float64), torch.randn(3, DD, dtype=torch.float64))
    assert torch.allclose(out[:, 0].exp(), torch.ones(3, dtype=out.dtype), atol=1e-6)


@pytest.mark.parametrize("joint_type, cls", [("hat", HATJointNetwork), ("rnnt", RNNTJointNetwork)])
def test_joint_type_of_the_task_builds_that_joint_with_the_configured_sizes(joint_type, cls):
    from tiny_model import TOKENS, build_tiny_model  # encoder output 32, decoder hidden 16, joint space 24

    joint = build_tiny_model(joint_type).joint_network
    assert type(joint) is cls
    assert (joint.vocab_size, joint.joint_space_size) == (len(TOKENS), 24)
    assert (joint.lin_enc.in_features, joint.lin_dec.in_features, joint.lin_enc.out_features) == (32, 16, 24)
    assert joint(torch.randn(3, 32), torch.randn(3, 16)).shape == (3, len(TOKENS))


def test_task_refuses_a_joint_type_it_does_not_have(capsys):
    from espnet_hatiam.tasks.hat_asr import HATASRTask

    with pytest.raises(SystemExit):
        HATASRTask.get_parser().parse_args(["--joint_type", "tdt"])
    assert "'hat', 'rnnt'" in capsys.readouterr().err and sorted(JOINT_TYPES) == ["hat", "rnnt"]


@pytest.mark.parametrize("cls", JOINTS)
def test_is_factorized_means_the_blank_does_not_depend_on_the_label_weights(cls):
    """What the searches rely on (HAT-blank thresholding needs it): only HAT's blank is its own output."""
    joint = make_joint(cls)
    f, g = torch.randn(4, DE, dtype=torch.float64), torch.randn(4, DD, dtype=torch.float64)
    blank = joint(f, g)[:, 0]
    label_weight = joint.lin_label.weight if cls.is_factorized else joint.lin_out.weight[1:]
    with torch.no_grad():
        label_weight.add_(torch.randn_like(label_weight))
    assert torch.equal(joint(f, g)[:, 0], blank) == cls.is_factorized


# ---------------------------------------------------------------- HAT factorisation


def hat_reference(joint, f, g):
    """docs/METHOD.md section 1 in float64, one (t, u) pair at a time: f (De,), g (Dd,) -> (V+1,)."""
    We, be = joint.lin_enc.weight.double(), joint.lin_enc.bias.double()
    Wp = joint.lin_dec.weight.double()
    wb, cb = joint.lin_blank.weight.double()[0], joint.lin_blank.bias.double()[0]
    Wo, co = joint.lin_label.weight.double(), joint.lin_label.bias.double()
    h = torch.tanh(We @ f.double() + be + Wp @ g.double())
    s = wb @ h + cb
    z = Wo @ h + co
    log_blank = torch.log(1.0 / (1.0 + torch.exp(-s)))
    log_not_blank = torch.log(1.0 / (1.0 + torch.exp(s)))
    log_softmax_z = z - torch.log(torch.exp(z).sum())
    return torch.cat([log_blank.reshape(1), log_not_blank + log_softmax_z])


def rnnt_reference(joint, f, g):
    We, be = joint.lin_enc.weight.double(), joint.lin_enc.bias.double()
    Wp = joint.lin_dec.weight.double()
    Wo, co = joint.lin_out.weight.double(), joint.lin_out.bias.double()
    z = Wo @ torch.tanh(We @ f.double() + be + Wp @ g.double()) + co
    return z - torch.log(torch.exp(z).sum())


def test_hat_forward_matches_method_factorization_in_float64():
    joint = make_joint(HATJointNetwork)
    enc, dec = broadcast_inputs()
    out = joint(enc, dec)
    for b in range(2):
        for t in range(3):
            for u in range(4):
                ref = hat_reference(joint, enc[b, t, 0], dec[b, 0, u])
                torch.testing.assert_close(out[b, t, u], ref, rtol=1e-10, atol=1e-10)


def test_hat_forward_without_gradients_skips_the_autograd_function_with_equal_output(monkeypatch):
    """The searches (no_grad) skip the autograd function's apply; the numbers must not change."""
    import espnet_hatiam.nets.hat_joint as hat_joint

    joint = make_joint(HATJointNetwork)
    enc, dec = broadcast_inputs()
    with_grad = joint(enc, dec)
    assert with_grad.grad_fn is not None

    def refuse(*args):
        raise AssertionError("the autograd function ran without gradients")

    monkeypatch.setattr(hat_joint._HATLogProbs, "apply", refuse)
    with torch.no_grad():
        assert torch.equal(joint(enc, dec), with_grad.detach())


def test_hat_forward_float32_matches_float64_reference():
    joint = make_joint(HATJointNetwork, dtype=torch.float32)
    enc, dec = broadcast_inputs(dtype=torch.float32)
    out = joint(enc, dec)
    assert out.dtype == torch.float32
    ref = torch.stack(
        [
            torch.stack([torch.stack([hat_reference(joint, enc[b, t, 0], dec[b, 0, u]) for u in range(4)]) for t in range(3)])
            for b in range(2)
        ]
    )
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_rnnt_forward_is_one_log_softmax_over_blank_and_labels():
    joint = make_joint(RNNTJointNetwork)
    f, g = torch.randn(DE, dtype=torch.float64), torch.randn(DD, dtype=torch.float64)
    torch.testing.assert_close(joint(f, g), rnnt_reference(joint, f, g), rtol=1e-10, atol=1e-10)


def test_hat_relu_activation_is_used_for_the_shared_hidden():
    joint = make_joint(HATJointNetwork, joint_activation_type="relu")
    f, g = torch.randn(4, DE, dtype=torch.float64), torch.randn(4, DD, dtype=torch.float64)
    h = torch.relu(f @ joint.lin_enc.weight.T + joint.lin_enc.bias + g @ joint.lin_dec.weight.T)
    s = h @ joint.lin_blank.weight[0] + joint.lin_blank.bias[0]
    z = h @ joint.lin_label.weight.T + joint.lin_label.bias
    ref = torch.cat([torch.nn.functional.logsigmoid(s)[:, None], torch.nn.functional.logsigmoid(-s)[:, None] + z.log_softmax(-1)], -1)
    torch.testing.assert_close(joint(f, g), ref, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- IAM / ILM


@pytest.mark.parametrize("cls", JOINTS)
def test_iam_equals_forward_with_zero_decoder_output(cls):
    joint = make_joint(cls)
    enc = torch.randn(2, 5, DE, dtype=torch.float64)
    iam = joint.iam(enc)
    assert iam.shape == (2, 5, VOCAB)
    torch.testing.assert_close(iam, joint(enc, torch.zeros(2, 5, DD, dtype=torch.float64)), rtol=1e-12, atol=1e-12)
    assert torch.allclose(iam.logsumexp(-1), torch.zeros(2, 5, dtype=iam.dtype), atol=1e-12)


@pytest.mark.parametrize("cls", JOINTS)
def test_iam_blank_log_prob_equals_blank_column_of_iam(cls):
    joint = make_joint(cls)
    enc = torch.randn(2, 5, DE, dtype=torch.float64)
    blank = joint.iam_blank_log_prob(enc)
    assert blank.shape == (2, 5)
    torch.testing.assert_close(blank, joint.iam(enc)[..., 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", JOINTS)
def test_ilm_is_label_part_of_forward_with_zero_encoder_renormalized(cls):
    joint = make_joint(cls)
    dec = torch.randn(2, 5, DD, dtype=torch.float64)
    ilm = joint.ilm(dec)
    assert ilm.shape == (2, 5, VOCAB - 1)
    labels = joint(torch.zeros(2, 5, DE, dtype=torch.float64), dec)[..., 1:]
    torch.testing.assert_close(ilm, labels - labels.logsumexp(-1, keepdim=True), rtol=1e-10, atol=1e-10)


def test_hat_ilm_is_log_softmax_of_label_logits_without_blank_factor():
    joint = make_joint(HATJointNetwork)
    g = torch.randn(DD, dtype=torch.float64)
    h = torch.tanh(joint.lin_dec.weight @ g + joint.lin_enc.bias)
    z = joint.lin_label.weight @ h + joint.lin_label.bias
    torch.testing.assert_close(joint.ilm(g), z - torch.log(torch.exp(z).sum()), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- broadcasting


@pytest.mark.parametrize("cls", JOINTS)
def test_broadcast_lattice_equals_pairwise_flat_evaluation(cls):
    joint = make_joint(cls)
    B, T, U1 = 2, 3, 4
    enc, dec = broadcast_inputs(B, T, U1)
    lattice = joint(enc, dec)
    assert lattice.shape == (B, T, U1, VOCAB)
    for b in range(B):
        for t in range(T):
            for u in range(U1):
                flat = joint(enc[b, t, 0].unsqueeze(0), dec[b, 0, u].unsqueeze(0))
                assert flat.shape == (1, VOCAB)
                torch.testing.assert_close(lattice[b, t, u], flat[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", JOINTS)
def test_flat_rows_are_evaluated_independently(cls):
    joint = make_joint(cls)
    f, g = torch.randn(5, DE, dtype=torch.float64), torch.randn(5, DD, dtype=torch.float64)
    out = joint(f, g)
    assert out.shape == (5, VOCAB)
    for n in range(5):
        torch.testing.assert_close(out[n], joint(f[n : n + 1], g[n : n + 1])[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", JOINTS)
def test_no_projection_with_precomputed_projections_equals_forward(cls):
    joint = make_joint(cls)
    enc, dec = broadcast_inputs()
    pre = joint(joint.project_encoder(enc), joint.project_decoder(dec), no_projection=True)
    torch.testing.assert_close(pre, joint(enc, dec), rtol=1e-12, atol=1e-12)
    f, g = torch.randn(5, DE, dtype=torch.float64), torch.randn(5, DD, dtype=torch.float64)
    torch.testing.assert_close(
        joint(joint.project_encoder(f), joint.project_decoder(g), no_projection=True), joint(f, g), rtol=1e-12, atol=1e-12
    )


# ---------------------------------------------------------------- search helpers


def test_hat_label_log_probs_equal_label_columns_of_full_output():
    joint = make_joint(HATJointNetwork)
    hidden = torch.randn(6, J, dtype=torch.float64)
    full = joint.log_probs_from_hidden(hidden)
    labels = joint.label_log_probs(hidden, joint.blank_logit(hidden))
    assert labels.shape == (6, VOCAB - 1)
    torch.testing.assert_close(labels, full[:, 1:], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", JOINTS)
def test_blank_log_prob_equals_blank_column_of_full_output(cls):
    joint = make_joint(cls)
    hidden = torch.randn(6, J, dtype=torch.float64)
    torch.testing.assert_close(joint.blank_log_prob(hidden), joint.log_probs_from_hidden(hidden)[..., 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", JOINTS)
def test_hidden_of_projections_is_the_shared_joint_hidden(cls):
    joint = make_joint(cls)
    f, g = torch.randn(3, DE, dtype=torch.float64), torch.randn(3, DD, dtype=torch.float64)
    hidden = joint.hidden(joint.project_encoder(f), joint.project_decoder(g))
    ref = torch.tanh(f @ joint.lin_enc.weight.T + joint.lin_enc.bias + g @ joint.lin_dec.weight.T)
    torch.testing.assert_close(hidden, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(joint.log_probs_from_hidden(hidden), joint(f, g), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("cls", JOINTS)
def test_gradients_reach_every_parameter_from_forward_output(cls):
    joint = make_joint(cls, dtype=torch.float32)
    enc, dec = broadcast_inputs(dtype=torch.float32)
    out = joint(enc, dec)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in joint.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_hat_forward_gradient_matches_float64_reference_gradient():
    joint = make_joint(HATJointNetwork)
    enc, dec = broadcast_inputs(B=1, T=2, U1=2)
    weights = torch.randn(1, 2, 2, VOCAB, dtype=torch.float64)
    (joint(enc, dec) * weights).sum().backward()
    got = {n: p.grad.clone() for n, p in joint.named_parameters()}
    joint.zero_grad()
    ref = sum((hat_reference(joint, enc[0, t, 0], dec[0, 0, u]) * weights[0, t, u]).sum() for t in range(2) for u in range(2))
    ref.backward()
    for n, p in joint.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("cls", JOINTS)
@pytest.mark.parametrize("vocab", [0, 1])
def test_vocab_size_below_two_is_rejected(cls, vocab):
    with pytest.raises(ValueError):
        cls(vocab, DE, DD, joint_space_size=J)


@pytest.mark.parametrize("cls", JOINTS)
def test_unknown_activation_is_rejected(cls):
    with pytest.raises(ValueError):
        cls(VOCAB, DE, DD, joint_space_size=J, joint_activation_type="no_such_activation")


@pytest.mark.parametrize("cls", JOINTS)
def test_vocab_size_two_gives_blank_and_one_label(cls):
    joint = make_joint(cls, vocab=2)
    out = joint(torch.randn(3, DE, dtype=torch.float64), torch.randn(3, DD, dtype=torch.float64))
    assert out.shape == (3, 2)
    assert torch.allclose(out.logsumexp(-1), torch.zeros(3, dtype=out.dtype), atol=1e-12)
    assert joint.ilm(torch.randn(3, DD, dtype=torch.float64)).shape == (3, 1)


def test_hat_log_probs_custom_backward_passes_gradcheck():
    from espnet_hatiam.nets.hat_joint import hat_log_probs

    blank_logit = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    label_logits = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(hat_log_probs, (blank_logit, label_logits))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_hat_log_probs_from_output_layer_logits_equal_the_factorised_formula(dtype, tol):
    """The search's composition from output_layer logits, also where the blank logit saturates (|s| up to 60)."""
    joint = make_joint(HATJointNetwork)
    weight, bias = joint.output_layer()
    hidden = torch.randn(50, J, dtype=torch.float64)
    logits = torch.addmm(bias, hidden, weight.t())
    logits[:, 0] = torch.linspace(-60.0, 60.0, 50, dtype=torch.float64)
    blank, labels = logits[:, :1], logits[:, 1:]
    reference = torch.cat([torch.nn.functional.logsigmoid(blank),
                           torch.nn.functional.logsigmoid(-blank) + torch.log_softmax(labels, -1)], -1)
    got = joint.to(dtype).log_probs_from_logits(logits.to(dtype))
    torch.testing.assert_close(got.double(), reference, rtol=tol, atol=tol)


def test_hat_thresholded_log_probs_drop_the_labels_exactly_where_the_blank_logit_reaches_the_bound():
    joint = make_joint(HATJointNetwork)
    weight, bias = joint.output_layer()
    logits = torch.addmm(bias, torch.randn(40, J, dtype=torch.float64), weight.t())
    logits[:, 0] = torch.linspace(-4.0, 4.0, 40, dtype=torch.float64)
    bound = 1.0
    log_probs, certain = joint.thresholded_log_probs(logits, bound)
    plain = joint.log_probs_from_logits(logits)
    assert torch.equal(certain.view(-1), logits[:, 0] >= bound) and 0 < int(certain.sum()) < 40
    torch.testing.assert_close(log_probs[:, 0], plain[:, 0], rtol=0, atol=0)
    assert torch.isneginf(log_probs[certain.view(-1), 1:]).all()
    torch.testing.assert_close(log_probs[~certain.view(-1)], plain[~certain.view(-1)], rtol=0, atol=0)
