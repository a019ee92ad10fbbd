"""The pruned transducer loss against the full loss and slow obvious references."""

import pytest
import torch

from espnet_hatiam.losses import transducer_loss
from espnet_hatiam.losses.pruned import PrunedTransducerLoss, lattice_arcs, prune_ranges, simple_lattice
from espnet_hatiam.losses.transducer_losses import lattice_nll
from espnet_hatiam.nets import JOINT_TYPES

from test_model import NO_DROPOUT, batch, build

ENC, DEC, VOCAB = 8, 10, 7  # V+1 outputs, blank included


def _inputs(seed=0, batch_size=3, frames=7, labels=4):
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(batch_size, frames, ENC, generator=g, requires_grad=True)
    dec = torch.randn(batch_size, labels + 1, DEC, generator=g, requires_grad=True)
    targets = torch.randint(1, VOCAB, (batch_size, labels), generator=g)
    enc_lens = torch.tensor([frames, frames - 2, frames - 1])[:batch_size]
    target_lens = torch.tensor([labels, labels - 2, labels - 1])[:batch_size]
    targets[torch.arange(labels) >= target_lens.unsqueeze(1)] = 0  # padding as the model passes it
    return enc, dec, targets, enc_lens, target_lens


def _slow_nll(blank_lp, label_lp, frames, labels):
    """-log of the sum over every alignment, enumerated one by one; each ends with a blank at (T-1, U)."""

    def scores(t, u):
        if t == frames - 1 and u == labels:
            return [float(blank_lp[t, u])]
        out = []
        if u < labels:
            out += [float(label_lp[t, u]) + s for s in scores(t, u + 1)]
        if t < frames - 1:
            out += [float(blank_lp[t, u]) + s for s in scores(t + 1, u)]
        return out

    return -float(torch.logsumexp(torch.tensor(scores(0, 0), dtype=torch.float64), 0))


def test_lattice_nll_is_the_sum_over_alignments():
    g = torch.Generator().manual_seed(3)
    frames, labels = 4, 3
    blank_lp = torch.randn(1, frames, labels + 1, generator=g).clamp(max=0) - 0.5
    label_lp = torch.randn(1, frames, labels, generator=g).clamp(max=0) - 0.5
    nll = lattice_nll(lattice_arcs(blank_lp, label_lp), torch.tensor([frames]), torch.tensor([labels]))
    assert float(nll) == pytest.approx(_slow_nll(blank_lp[0], label_lp[0], frames, labels), rel=1e-5)


@pytest.mark.parametrize("joint_type", ["hat", "rnnt"])
def test_a_range_over_all_labels_gives_the_full_loss_and_its_gradients(joint_type):
    torch.manual_seed(0)
    joint = JOINT_TYPES[joint_type](VOCAB, ENC, DEC, joint_space_size=12)
    enc, dec, targets, enc_lens, target_lens = _inputs()
    loss = PrunedTransducerLoss(VOCAB, ENC, DEC, prune_range=targets.size(1) + 1)
    full = transducer_loss(joint(enc.unsqueeze(2), dec.unsqueeze(1)), targets, enc_lens, target_lens, reduction="none")
    pruned, _ = loss(joint, enc, dec, targets, enc_lens, target_lens, reduction="none")
    torch.testing.assert_close(pruned, full)
    for a, b in zip(torch.autograd.grad(full.sum(), (enc, dec)), torch.autograd.grad(pruned.sum(), (enc, dec))):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_the_simple_loss_is_the_full_loss_of_the_trivial_joiner():
    enc, dec, targets, enc_lens, target_lens = _inputs(seed=1)
    loss = PrunedTransducerLoss(VOCAB, ENC, DEC, prune_range=2)
    am, lm = loss.simple_am_proj(enc), loss.simple_lm_proj(dec)
    reference = transducer_loss(
        (am.unsqueeze(2) + lm.unsqueeze(1)).log_softmax(-1), targets, enc_lens, target_lens, reduction="none"
    )
    torch.testing.assert_close(lattice_nll(lattice_arcs(*simple_lattice(am, lm, targets)), enc_lens, target_lens), reference)
    _, simple = loss(JOINT_TYPES["hat"](VOCAB, ENC, DEC), enc, dec, targets, enc_lens, target_lens, reduction="none")
    torch.testing.assert_close(simple, reference)


@pytest.mark.parametrize("prune_range", [2, 3, 5])
def test_prune_ranges_make_a_connected_monotonic_band(prune_range):
    g = torch.Generator().manual_seed(prune_range)
    for _ in range(20):
        frames, labels = int(torch.randint(3, 12, (1,), generator=g)), int(torch.randint(4, 10, (1,), generator=g))
        enc_lens = torch.randint(2, frames + 1, (4,), generator=g)
        enc_lens[0] = frames
        target_lens = torch.randint(0, labels + 1, (4,), generator=g)
        target_lens = torch.minimum(target_lens, enc_lens * (prune_range - 1))
        occupancy = torch.rand(4, frames, labels + 1, generator=g)
        starts = prune_ranges(occupancy, enc_lens, target_lens, prune_range)
        for b in range(4):
            r, t_b, u_b = starts[b, : enc_lens[b]], int(enc_lens[b]), int(target_lens[b])
            assert int(r[0]) == 0  # node (0, 0)
            assert r[t_b - 1] <= u_b <= r[t_b - 1] + prune_range - 1  # node (T-1, U)
            steps = r[1:] - r[:-1]
            assert (steps >= 0).all() and (steps <= prune_range - 1).all()
            assert (r + prune_range - 1 <= labels).all()


def test_a_narrow_range_keeps_a_subset_of_the_paths():
    torch.manual_seed(0)
    joint = JOINT_TYPES["hat"](VOCAB, ENC, DEC, joint_space_size=12)
    enc, dec, targets, enc_lens, target_lens = _inputs(frames=9, labels=6)
    full = transducer_loss(joint(enc.unsqueeze(2), dec.unsqueeze(1)), targets, enc_lens, target_lens, reduction="none")
    previous = None
    for prune_range in (2, 3, 4, 7):
        pruned, _ = PrunedTransducerLoss(VOCAB, ENC, DEC, prune_range)(
            joint, enc, dec, targets, enc_lens, target_lens, reduction="none"
        )
        assert (pruned >= full - 1e-4).all()
        if previous is not None:
            assert (pruned <= previous + 1e-4).all()
        previous = pruned
        assert all(g.isfinite().all() for g in torch.autograd.grad(pruned.sum(), (enc, dec)))
    torch.testing.assert_close(previous, full)


def test_an_utterance_with_no_path_through_the_windows_contributes_zero():
    joint = JOINT_TYPES["hat"](VOCAB, ENC, DEC)
    enc, dec, targets, _, _ = _inputs(batch_size=2, frames=3, labels=6)
    enc_lens, target_lens = torch.tensor([2, 3]), torch.tensor([6, 4])  # 2 frames climb at most 2 x 2 labels
    pruned, _ = PrunedTransducerLoss(VOCAB, ENC, DEC, prune_range=3)(
        joint, enc, dec, targets, enc_lens, target_lens, reduction="none"
    )
    pruned = pruned.detach()
    assert float(pruned[0]) == 0.0 and 0 < float(pruned[1]) < 1e3


def test_training_on_the_pruned_loss_lowers_the_full_loss():
    torch.manual_seed(0)
    joint = JOINT_TYPES["hat"](VOCAB, ENC, DEC, joint_space_size=16)
    loss = PrunedTransducerLoss(VOCAB, ENC, DEC, prune_range=3)
    enc, dec, targets, enc_lens, target_lens = _inputs(frames=10, labels=6)
    enc, dec = enc.detach(), dec.detach()
    optimizer = torch.optim.Adam([*joint.parameters(), *loss.parameters()], lr=0.02)

    def full_loss():
        with torch.no_grad():
            return float(transducer_loss(joint(enc.unsqueeze(2), dec.unsqueeze(1)), targets, enc_lens, target_lens))

    before = full_loss()
    for _ in range(60):
        pruned, simple = loss(joint, enc, dec, targets, enc_lens, target_lens)
        optimizer.zero_grad()
        (pruned + 0.5 * simple).backward()
        optimizer.step()
    assert full_loss() < 0.5 * before


def test_the_model_trains_on_the_pruned_loss_and_validates_on_the_full_loss():
    model = build(model_conf="{iam_weight: 0.3, prune_range: 10}", encoder_extra=NO_DROPOUT)
    assert model.pruned_loss is not None and model.pruned_loss.prune_range == 10
    model.train()
    loss, stats, _ = model(*batch())
    loss.backward()
    assert "loss_simple" in stats and torch.isfinite(loss)
    assert model.pruned_loss.simple_am_proj.weight.grad is not None
    pruned_value = float(stats["loss_transducer"])
    model.pruned_loss, pruning = None, model.pruned_loss
    _, full_stats, _ = model(*batch())
    assert pruned_value == pytest.approx(float(full_stats["loss_transducer"]), rel=1e-5)  # range 10 > U+1
    model.eval()
    with torch.no_grad():
        _, full_eval, _ = model(*batch())
        model.pruned_loss = pruning
        _, eval_stats, _ = model(*batch())
    assert "loss_simple" not in eval_stats
    assert float(eval_stats["loss_transducer"]) == float(full_eval["loss_transducer"])


def test_prune_range_below_two_is_refused():
    with pytest.raises(ValueError, match="prune_range"):
        PrunedTransducerLoss(VOCAB, ENC, DEC, prune_range=1)
