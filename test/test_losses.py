"""Specification of the training losses (docs/METHOD.md section 3).

The transducer loss is checked against two independent float64 references: a brute-force
sum over every alignment and a plain alpha-lattice forward algorithm. Gradients of the
references come from autograd on the float64 computation.
"""

import itertools
import math

import pytest
import torch

from espnet_hatiam.losses import transducer_loss, iam_ctc_loss, ilm_loss
from espnet_hatiam.nets import HATJointNetwork, RNNTJointNetwork


# ---------------------------------------------------------------- float64 references


def transducer_nll_bruteforce(lp, y):
    """-log sum over all alignments. lp (T, U+1, V) float64 log-probs, y list of U labels.

    An alignment is a sequence of T blanks and the U labels in order, ending with a
    blank; it visits lattice node (t, u) and takes lp[t, u, blank] (t -> t+1) or
    lp[t, u, y[u]] (u -> u+1).
    """
    T, U = lp.size(0), len(y)
    scores = []
    for label_slots in itertools.combinations(range(T + U - 1), U):
        t = u = 0
        score = lp.new_zeros(())
        for step in range(T + U):
            if step in label_slots:
                score = score + lp[t, u, y[u]]
                u += 1
            else:
                score = score + lp[t, u, 0]
                t += 1
        assert (t, u) == (T, U)
        scores.append(score)
    assert len(scores) == math.comb(T + U - 1, U)
    return -torch.logsumexp(torch.stack(scores), 0)


def transducer_nll_alpha(lp, y):
    """Forward algorithm on the (T, U+1) lattice in float64."""
    T, U = lp.size(0), len(y)
    alpha = [[None] * (U + 1) for _ in range(T)]
    for t in range(T):
        for u in range(U + 1):
            if t == 0 and u == 0:
                alpha[t][u] = lp.new_zeros(())
                continue
            terms = []
            if t > 0:
                terms.append(alpha[t - 1][u] + lp[t - 1, u, 0])
            if u > 0:
                terms.append(alpha[t][u - 1] + lp[t, u - 1, y[u - 1]])
            alpha[t][u] = torch.logsumexp(torch.stack(terms), 0)
    return -(alpha[T - 1][U] + lp[T - 1, U, 0])


def ctc_nll_bruteforce(lp, y):
    """-log sum over every length-T path that collapses to y. lp (T, V) float64."""
    T, V = lp.shape
    scores = []
    for path in itertools.product(range(V), repeat=T):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        if collapsed == list(y):
            scores.append(sum(lp[t, k] for t, k in enumerate(path)))
    if not scores:
        return lp.new_tensor(math.inf)
    return -torch.logsumexp(torch.stack(scores), 0)


def random_log_probs(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype).mul(1.5).log_softmax(-1)


# (T, U, V) with V counting blank
SHAPES = [(1, 1, 2), (1, 3, 3), (2, 1, 2), (3, 2, 4), (4, 3, 3), (4, 1, 5), (2, 3, 3), (4, 2, 6)]


# ---------------------------------------------------------------- references agree


@pytest.mark.parametrize("T,U,V", SHAPES)
def test_references_agree_with_each_other(T, U, V):
    lp = random_log_probs(T, U + 1, V)
    y = torch.randint(1, V, (U,)).tolist()
    torch.testing.assert_close(transducer_nll_bruteforce(lp, y), transducer_nll_alpha(lp, y), rtol=1e-12, atol=1e-12)


def test_reference_of_single_frame_single_label_is_label_then_blank():
    lp = random_log_probs(1, 2, 3)
    torch.testing.assert_close(transducer_nll_bruteforce(lp, [2]), -(lp[0, 0, 2] + lp[0, 1, 0]))


# ---------------------------------------------------------------- transducer_loss


@pytest.mark.parametrize("T,U,V", SHAPES)
def test_transducer_loss_value_equals_bruteforce_sum_over_alignments(T, U, V):
    lp = random_log_probs(T, U + 1, V)
    y = torch.randint(1, V, (U,))
    got = transducer_loss(
        lp.float()[None], y[None], torch.tensor([T]), torch.tensor([U]), reduction="none"
    )
    assert got.shape == (1,)
    ref = transducer_nll_bruteforce(lp, y.tolist())
    torch.testing.assert_close(got[0].double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("T,U,V", SHAPES)
def test_transducer_loss_gradient_wrt_log_probs_equals_bruteforce_gradient(T, U, V):
    lp = random_log_probs(T, U + 1, V)
    y = torch.randint(1, V, (U,))
    lp32 = lp.float().requires_grad_()
    transducer_loss(lp32[None], y[None], torch.tensor([T]), torch.tensor([U]), reduction="sum").backward()

    lp64 = lp.clone().requires_grad_()
    transducer_nll_bruteforce(lp64, y.tolist()).backward()
    torch.testing.assert_close(lp32.grad.double(), lp64.grad, rtol=1e-4, atol=1e-5)
    # Only the blank and next-label arcs are used: every other entry has zero gradient.
    used = torch.zeros(T, U + 1, V, dtype=torch.bool)
    used[:, :, 0] = True
    for u in range(U):
        used[:, u, y[u]] = True
    assert (lp32.grad[~used] == 0).all()


@pytest.mark.parametrize("T,U,V", [(5, 4, 4), (7, 3, 6), (6, 6, 3)])
def test_transducer_loss_value_and_gradient_equal_alpha_lattice_reference(T, U, V):
    lp = random_log_probs(T, U + 1, V)
    y = torch.randint(1, V, (U,))
    lp32 = lp.float().requires_grad_()
    got = transducer_loss(lp32[None], y[None], torch.tensor([T]), torch.tensor([U]), reduction="sum")
    got.backward()
    lp64 = lp.clone().requires_grad_()
    ref = transducer_nll_alpha(lp64, y.tolist())
    ref.backward()
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lp32.grad.double(), lp64.grad, rtol=1e-4, atol=1e-5)


def test_transducer_loss_gradient_scales_with_upstream_gradient():
    lp = random_log_probs(3, 3, 4).float()
    y = torch.tensor([[1, 3]])
    a = lp.clone().requires_grad_()
    transducer_loss(a[None], y, torch.tensor([3]), torch.tensor([2]), reduction="sum").backward()
    b = lp.clone().requires_grad_()
    (2.5 * transducer_loss(b[None], y, torch.tensor([3]), torch.tensor([2]), reduction="sum")).backward()
    torch.testing.assert_close(b.grad, 2.5 * a.grad)


def _padded_batch(V=5):
    """Three utterances of different T_b / U_b padded into one (B, T, U+1, V) tensor."""
    lengths = [(4, 3), (2, 1), (3, 0)]
    T, U = max(t for t, _ in lengths), max(u for _, u in lengths)
    lp = random_log_probs(len(lengths), T, U + 1, V)
    targets = torch.full((len(lengths), U), -1, dtype=torch.long)
    for b, (_, u) in enumerate(lengths):
        targets[b, :u] = torch.randint(1, V, (u,))
    # Garbage in the padded region must not matter.
    for b, (t, u) in enumerate(lengths):
        lp[b, t:] = torch.randn(T - t, U + 1, V, dtype=torch.float64)
        lp[b, :, u + 1 :] = torch.randn(T, U - u, V, dtype=torch.float64)
    return lp, targets, torch.tensor([t for t, _ in lengths]), torch.tensor([u for _, u in lengths])


def test_padded_batch_per_utterance_losses_equal_each_utterance_alone():
    lp, targets, T_b, U_b = _padded_batch()
    batched = transducer_loss(lp.float(), targets, T_b, U_b, reduction="none")
    assert batched.shape == (3,)
    for b in range(3):
        t, u = int(T_b[b]), int(U_b[b])
        alone_lp = lp[b, :t, : u + 1].float()[None].contiguous()
        alone = transducer_loss(alone_lp, targets[b : b + 1, :u], T_b[b : b + 1], U_b[b : b + 1], reduction="none")
        torch.testing.assert_close(batched[b], alone[0])
        ref = transducer_nll_alpha(lp[b, :t, : u + 1], targets[b, :u].tolist())
        torch.testing.assert_close(batched[b].double(), ref, rtol=1e-5, atol=1e-5)


def test_padded_batch_gradient_equals_reference_and_is_zero_in_padding():
    lp, targets, T_b, U_b = _padded_batch()
    weights = torch.tensor([0.3, 1.7, -0.8])
    lp32 = lp.float().requires_grad_()
    (transducer_loss(lp32, targets, T_b, U_b, reduction="none") * weights).sum().backward()
    for b in range(3):
        t, u = int(T_b[b]), int(U_b[b])
        lp64 = lp[b, :t, : u + 1].clone().requires_grad_()
        (weights[b].double() * transducer_nll_alpha(lp64, targets[b, :u].tolist())).backward()
        torch.testing.assert_close(lp32.grad[b, :t, : u + 1].double(), lp64.grad, rtol=1e-4, atol=1e-5)
        assert (lp32.grad[b, t:] == 0).all()
        assert (lp32.grad[b, :, u + 1 :] == 0).all()


def test_the_two_arc_lattice_gives_torchaudios_full_loss_and_gradients():
    import torchaudio.functional

    lp, targets, T_b, U_b = _padded_batch()
    ours = lp.float().requires_grad_()
    theirs = lp.float().requires_grad_()
    loss = transducer_loss(ours, targets, T_b, U_b, reduction="none")
    reference = torchaudio.functional.rnnt_loss(theirs, targets.masked_fill(targets < 0, 0).int(), T_b.int(),
                                                U_b.int(), blank=0, reduction="none", fused_log_softmax=False)
    torch.testing.assert_close(loss, reference)
    loss.sum().backward()
    reference.sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)


def test_reduction_mean_and_sum_are_mean_and_sum_of_per_utterance_losses():
    lp, targets, T_b, U_b = _padded_batch()
    lp = lp.float()
    none = transducer_loss(lp, targets, T_b, U_b, reduction="none")
    torch.testing.assert_close(transducer_loss(lp, targets, T_b, U_b, reduction="mean"), none.mean())
    torch.testing.assert_close(transducer_loss(lp, targets, T_b, U_b, reduction="sum"), none.sum())
    torch.testing.assert_close(transducer_loss(lp, targets, T_b, U_b), none.mean())  # default


def test_unknown_reduction_is_rejected():
    lp, targets, T_b, U_b = _padded_batch()
    with pytest.raises(ValueError):
        transducer_loss(lp.float(), targets, T_b, U_b, reduction="batchmean")


def test_float64_input_gives_float64_loss_close_to_reference():
    lp = random_log_probs(4, 3, 4)
    y = torch.tensor([[2, 1]])
    got = transducer_loss(lp[None], y, torch.tensor([4]), torch.tensor([2]), reduction="none")
    assert got.dtype == torch.float64
    torch.testing.assert_close(got[0], transducer_nll_alpha(lp, [2, 1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [HATJointNetwork, RNNTJointNetwork])
def test_loss_on_joint_output_matches_float64_reference_in_value_and_parameter_gradients(cls):
    B, V, De, Dd = 2, 5, 6, 4
    T_b, U_b = torch.tensor([4, 3]), torch.tensor([3, 2])
    targets = torch.tensor([[1, 4, 2], [3, 3, -1]])
    joint = cls(V, De, Dd, joint_space_size=8)
    enc = torch.randn(B, 4, De)
    dec = torch.randn(B, 4, Dd)
    weights = torch.tensor([0.7, 1.3])

    log_probs = joint(enc.unsqueeze(2), dec.unsqueeze(1))
    assert log_probs.dtype == torch.float32
    got = transducer_loss(log_probs, targets, T_b, U_b, reduction="none")
    (got * weights).sum().backward()
    got_grads = {n: p.grad.clone() for n, p in joint.named_parameters()}

    joint64 = cls(V, De, Dd, joint_space_size=8).double()
    joint64.load_state_dict({k: v.double() for k, v in joint.state_dict().items()})
    lp64 = joint64(enc.double().unsqueeze(2), dec.double().unsqueeze(1))
    refs = torch.stack(
        [transducer_nll_alpha(lp64[b, : T_b[b], : U_b[b] + 1], targets[b, : U_b[b]].tolist()) for b in range(B)]
    )
    (refs * weights.double()).sum().backward()

    torch.testing.assert_close(got.double(), refs.detach(), rtol=1e-4, atol=1e-5)
    for n, p in joint64.named_parameters():
        assert got_grads[n].abs().sum() > 0, n
        torch.testing.assert_close(got_grads[n].double(), p.grad, rtol=1e-4, atol=1e-5, msg=n)


# ---------------------------------------------------------------- iam_ctc_loss


def _iam_batch(V=5, De=6):
    joint = HATJointNetwork(V, De, 4, joint_space_size=8)
    enc = torch.randn(3, 6, De)
    targets = torch.tensor([[1, 2, 2, 4], [3, -1, -1, -1], [4, 1, 3, -1]])
    T_b, U_b = torch.tensor([6, 4, 5]), torch.tensor([4, 1, 3])
    return joint, enc, targets, T_b, U_b


def test_iam_ctc_loss_is_summed_nll_not_normalised_by_target_length():
    joint, enc, targets, T_b, U_b = _iam_batch()
    iam = joint.iam(enc)
    per_utt = iam_ctc_loss(iam, targets, T_b, U_b, reduction="none")
    assert not torch.allclose(iam_ctc_loss(iam, targets, T_b, U_b, reduction="mean"), (per_utt / U_b).mean())


@pytest.mark.parametrize("y", [[1], [2, 3], [2, 2], [1, 3, 1]])
def test_iam_ctc_loss_equals_bruteforce_ctc_over_all_paths(y):
    T, V = 4, 4
    lp = random_log_probs(T, V)
    got = iam_ctc_loss(lp.float()[None], torch.tensor([y]), torch.tensor([T]), torch.tensor([len(y)]), reduction="none")
    torch.testing.assert_close(got[0].double(), ctc_nll_bruteforce(lp, y), rtol=1e-5, atol=1e-5)


def test_iam_ctc_gradient_through_joint_matches_float64_bruteforce():
    V, De = 3, 4
    joint = HATJointNetwork(V, De, 2, joint_space_size=5)
    enc = torch.randn(1, 4, De)
    y = [1, 2]
    iam_ctc_loss(joint.iam(enc), torch.tensor([y]), torch.tensor([4]), torch.tensor([2]), reduction="sum").backward()
    joint64 = HATJointNetwork(V, De, 2, joint_space_size=5).double()
    joint64.load_state_dict({k: v.double() for k, v in joint.state_dict().items()})
    ctc_nll_bruteforce(joint64.iam(enc.double())[0], y).backward()
    # The IAM has no prediction-network input: W_p gets no gradient from it.
    assert joint.lin_dec.weight.grad is None
    for (n, p), p64 in zip(joint.named_parameters(), joint64.parameters()):
        if n == "lin_dec.weight":
            continue
        assert p.grad.abs().sum() > 0, n
        torch.testing.assert_close(p.grad.double(), p64.grad, rtol=1e-4, atol=1e-6, msg=n)


def test_impossible_ctc_alignments_contribute_zero_loss_and_zero_gradient():
    V = 4
    lp = random_log_probs(2, 3, V).float().requires_grad_()
    # utterance 0: three labels in two frames (U > T) has no CTC path.
    targets = torch.tensor([[1, 2, 3], [1, 1, -1]])
    T_b, U_b = torch.tensor([2, 3]), torch.tensor([3, 2])
    per_utt = iam_ctc_loss(lp, targets, T_b, U_b, reduction="none")
    assert per_utt[0] == 0  # U > T
    assert torch.isfinite(per_utt).all() and per_utt[1] > 0
    torch.testing.assert_close(per_utt[1].double(), ctc_nll_bruteforce(lp[1].detach().double(), [1, 1]), rtol=1e-5, atol=1e-5)
    per_utt.sum().backward()
    assert (lp.grad[0] == 0).all()
    assert torch.isfinite(lp.grad).all()


def test_repeated_label_needing_a_blank_is_impossible_when_frames_run_out():
    lp = random_log_probs(1, 2, 3).float()
    # "1 1" needs 1 blank 1: three frames; with two frames it is impossible.
    assert ctc_nll_bruteforce(lp[0].double(), [1, 1]) == math.inf
    assert iam_ctc_loss(lp, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2]), reduction="none")[0] == 0


# ---------------------------------------------------------------- ilm_loss


def test_ilm_loss_is_summed_next_label_nll_over_valid_positions():
    V = 4  # non-blank labels 1..4 -> columns 0..3
    ilm_lp = random_log_probs(2, 3, V)
    targets = torch.tensor([[2, 4, 1], [3, -1, -1]])
    lengths = torch.tensor([3, 1])
    got = ilm_loss(ilm_lp, targets, lengths, reduction="none")
    expected = torch.stack(
        [
            -(ilm_lp[0, 0, 1] + ilm_lp[0, 1, 3] + ilm_lp[0, 2, 0]),
            -ilm_lp[1, 0, 2],
        ]
    )
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ilm_loss(ilm_lp, targets, lengths), expected.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ilm_loss(ilm_lp, targets, lengths, reduction="sum"), expected.sum(), rtol=1e-12, atol=1e-12)


def test_ilm_loss_ignores_padding_values_and_padded_rows():
    V = 4
    ilm_lp = random_log_probs(1, 4, V).requires_grad_()
    lengths = torch.tensor([2])
    a = ilm_loss(ilm_lp, torch.tensor([[3, 1, -1, -1]]), lengths, reduction="sum")
    b = ilm_loss(ilm_lp, torch.tensor([[3, 1, 4, 2]]), lengths, reduction="sum")
    torch.testing.assert_close(a, b)
    a.backward()
    assert (ilm_lp.grad[0, 2:] == 0).all()
    expected_grad = torch.zeros(4, V, dtype=torch.float64)
    expected_grad[0, 2] = expected_grad[1, 0] = -1
    torch.testing.assert_close(ilm_lp.grad[0], expected_grad)


def test_ilm_loss_of_empty_target_is_zero():
    ilm_lp = random_log_probs(2, 2, 3)
    got = ilm_loss(ilm_lp, torch.tensor([[1, 2], [-1, -1]]), torch.tensor([2, 0]), reduction="none")
    assert got[1] == 0
    torch.testing.assert_close(got[0], -(ilm_lp[0, 0, 0] + ilm_lp[0, 1, 1]))
