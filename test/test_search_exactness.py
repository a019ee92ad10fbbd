"""The searches of issue 28 against the frame-by-frame searches they replace (test/reference_search.py):
blank-certain runs passed in one step, label-looping greedy, per-utterance frame pointers, both row plans."""

import pytest
import torch

from espnet_hatiam.search import RNNLMFusion, greedy_search, modified_beam_search
from reference_search import reference_beam_search, reference_greedy_search
from tiny_model import build_tiny_model


def _random_model(joint_type, seed, sharpness):
    """A random tiny model; ``sharpness`` scales the output layer (how confident, how often blank-certain)."""
    torch.manual_seed(seed)
    model = build_tiny_model(joint_type)
    joint = model.joint_network
    with torch.no_grad():
        for layer in (joint.lin_blank, joint.lin_label) if joint_type == "hat" else (joint.lin_out,):
            layer.weight.mul_(sharpness)
        if joint_type == "hat":
            joint.lin_blank.bias.add_(2.0)  # blank-heavy, like a trained model: runs of certain frames
    return model.eval()


def _mixed_batch(model, seed, lengths=(31, 5, 18, 1, 24)):
    g = torch.Generator().manual_seed(seed)
    enc_out = 3 * torch.randn(len(lengths), max(lengths), model.joint_network.lin_enc.in_features, generator=g)
    return enc_out, torch.tensor(lengths)


def _assert_same(new, reference):
    assert [[h.token_ids for h in n] for n in new] == [[h.token_ids for h in n] for n in reference]
    for a, b in zip(new, reference):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


@pytest.mark.parametrize("seed, sharpness", [(0, 4.0), (1, 8.0), (2, 2.0)])
@pytest.mark.parametrize("theta", [1.0, 0.95, 0.6])
@pytest.mark.parametrize("max_sym", [1, 4])
@pytest.mark.parametrize("plan", ["select", "mask", "compiled"])
def test_windowed_beam_search_equals_the_frame_by_frame_thresholded_search(seed, sharpness, theta, max_sym, plan):
    model = _random_model("hat", seed, sharpness)
    enc_out, enc_lens = _mixed_batch(model, seed)
    args = (model.joint_network, model.decoder, enc_out, enc_lens, 4)
    options = dict(nbest=3, max_sym_per_frame=max_sym, hat_blank_threshold=theta)
    _assert_same(modified_beam_search(*args, row_plan=plan, **options), reference_beam_search(*args, **options))


@pytest.mark.parametrize("seed, sharpness", [(0, 4.0), (1, 8.0), (2, 2.0)])
@pytest.mark.parametrize("theta", [1.0, 0.95, 0.3])
@pytest.mark.parametrize("max_sym", [1, 2, 4])
@pytest.mark.parametrize("plan", ["select", "mask", "compiled"])
def test_label_looping_greedy_equals_frame_looping_greedy(seed, sharpness, theta, max_sym, plan):
    model = _random_model("hat", seed, sharpness)
    enc_out, enc_lens = _mixed_batch(model, seed)
    args = (model.joint_network, model.decoder, enc_out, enc_lens, max_sym, theta)
    new = [[h] for h in greedy_search(*args, row_plan=plan)]
    _assert_same(new, [[h] for h in reference_greedy_search(*args)])


def test_the_windows_settle_most_frames_of_a_blank_heavy_model():
    """The case the tests above run on passes runs of frames in one step (else they would test nothing new)."""
    from espnet_hatiam.search import SearchCounters

    model = _random_model("hat", 0, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 0)
    counters = SearchCounters.for_lengths(enc_lens)
    modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, hat_blank_threshold=0.95,
                         counters=counters, row_plan="select")
    greedy = SearchCounters.for_lengths(enc_lens)
    greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, counters=greedy, row_plan="select")
    assert int(counters.frames_searched.sum()) < int(enc_lens.sum())
    assert int(greedy.frames_searched.sum()) < int(enc_lens.sum())


@pytest.mark.parametrize("beam, plan", [(1, "select"), (1, "compiled"), (3, "select"), (3, "compiled")])
def test_rnnt_searches_equal_the_frame_by_frame_searches(beam, plan):
    model = _random_model("rnnt", 0, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 0)
    if beam == 1:
        new = [[h] for h in greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, 2, row_plan=plan)]
        _assert_same(new, [[h] for h in reference_greedy_search(model.joint_network, model.decoder, enc_out,
                                                                 enc_lens, 2)])
    else:
        args = (model.joint_network, model.decoder, enc_out, enc_lens, beam)
        _assert_same(modified_beam_search(*args, max_sym_per_frame=2, row_plan=plan),
                     reference_beam_search(*args, max_sym_per_frame=2))


@pytest.mark.parametrize("plan", ["select", "mask"])
def test_lm_fusion_with_thresholding_equals_the_frame_by_frame_search(plan):
    from espnet2.lm.seq_rnn_lm import SequentialRNNLM

    model = _random_model("hat", 1, 4.0)
    torch.manual_seed(3)
    lm = SequentialRNNLM(model.joint_network.vocab_size, unit=8, nlayers=1).eval()
    fusion = RNNLMFusion(lm, model.joint_network, 0.5, 0.3)
    enc_out, enc_lens = _mixed_batch(model, 1)
    args = (model.joint_network, model.decoder, enc_out, enc_lens, 4)
    options = dict(nbest=2, max_sym_per_frame=2, hat_blank_threshold=0.9, fusion=fusion)
    _assert_same(modified_beam_search(*args, row_plan=plan, **options), reference_beam_search(*args, **options))


def test_window_backoff_waits_longer_after_each_empty_window_and_resets_after_a_settling_one():
    from espnet_hatiam.search.frame_skip import WindowBackoff

    policy, empty, settling = WindowBackoff(max_wait=8), torch.zeros(2, 1, dtype=torch.long), torch.tensor([[0], [3]])
    waits = []
    for _ in range(5):
        assert policy.due()
        policy.settled(empty)
        passed = 0
        while not policy.due():
            passed += 1
        waits.append(passed)
    assert waits == [1, 3, 7, 8, 8]
    policy.settled(settling)  # one utterance of the batch settled frames
    assert policy.due() and policy.due()


@pytest.mark.parametrize("theta", [0.95, 0.6])
def test_the_backoff_looks_ahead_less_where_windows_settle_nothing_with_the_same_hypotheses(theta):
    """A label-heavy model, rarely blank-certain for the whole beam: with the back-off the selecting plan
    computes fewer window frames than when it looks ahead at every chance (max_wait 0), same n-best."""
    from espnet_hatiam.search import BeamSearch, SearchConfig, SearchCounters
    from espnet_hatiam.search.frame_skip import WindowBackoff

    model = _random_model("hat", 0, 4.0)
    with torch.no_grad():
        model.joint_network.lin_blank.bias.sub_(1.0)  # less blank-heavy than the models above
    enc_out, enc_lens = _mixed_batch(model, 0, lengths=(40, 33))
    config = SearchConfig(nbest=3, hat_blank_threshold=theta, row_plan="select")
    results, evaluations = {}, {}
    for max_wait in (0, 8):
        counters = SearchCounters.for_lengths(enc_lens)
        search = BeamSearch(model.joint_network, model.decoder, config, 2, enc_out.device, counters)
        search.backoff = WindowBackoff(max_wait)
        search.extend(enc_out, enc_lens)
        results[max_wait], evaluations[max_wait] = search.nbest(), int(counters.joint_evaluations.sum())
    reference = reference_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, nbest=3,
                                      hat_blank_threshold=theta)
    _assert_same(results[8], reference)
    _assert_same(results[0], reference)
    assert evaluations[8] < evaluations[0]


def test_the_prediction_store_computes_each_label_sequence_once_and_compacts_with_the_same_hypotheses(monkeypatch):
    """The selecting plan looks up a label sequence computed before instead of stepping the prediction
    network again, and keeps its store and its label-sequence nodes bounded (entries and nodes not in use
    dropped), with the reference's n-best."""
    from espnet_hatiam.search import BeamSearch, SearchConfig
    from espnet_hatiam.search.beam_state import PredictionStore
    from espnet_hatiam.search.state import PredictionNetwork

    model = _random_model("hat", 0, 4.0)
    with torch.no_grad():
        model.joint_network.lin_blank.bias.sub_(2.0)  # many labels, many competing alignments
    enc_out, enc_lens = _mixed_batch(model, 1, lengths=(60, 41))
    reference = reference_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, nbest=3)
    steps, original = [], PredictionNetwork.step
    monkeypatch.setattr(PredictionNetwork, "step", lambda self, tokens, state: steps.append(tokens.numel())
                        or original(self, tokens, state))
    found, trie_nodes = {}, {}
    for max_entries in (4096, 12):
        search = BeamSearch(model.joint_network, model.decoder, SearchConfig(nbest=3, row_plan="select"), 2,
                            enc_out.device)
        start = search.beam.store
        search.beam.store = PredictionStore(start.dec_proj[:1], start.states(torch.zeros(1, dtype=torch.long))[0],
                                            None, None, max_entries=max_entries)
        steps.clear()
        search.extend(enc_out, enc_lens)
        _assert_same(search.nbest(), reference)
        found[max_entries] = sum(steps), search.beam.store.size, len(search.beam.entries)
        made = search.beam.trie.next  # label-sequence nodes made, the empty sequence's included
        trie_nodes[max_entries] = made, len(search.beam.trie)
    computed, size, sequences = found[4096]
    assert computed == size - 1 == sequences - 1  # one step per stored sequence (entry 0: the start)
    assert computed > 20 and found[12][1] <= 12  # a search with labels; the small store stayed bounded
    assert found[12][0] >= computed  # sequences dropped from the small store may be computed again
    assert trie_nodes[4096][0] == trie_nodes[4096][1] == sequences  # one node per stored sequence, none dropped
    assert trie_nodes[12][1] < trie_nodes[12][0]  # the small store's compactions dropped label-sequence nodes


def test_the_compiled_plan_keeps_its_store_and_prefix_tree_links_bounded_with_the_same_hypotheses(monkeypatch):
    """The compiled plan's prediction store, compacted at a small size, keeps only the entries in use and its
    prefix tree only the links of kept sequences, with the frame-by-frame reference's n-best."""
    from espnet_hatiam.search import SearchConfig
    from espnet_hatiam.search import compiled
    from espnet_hatiam.search.compiled import CompiledBeamSearch

    model = _random_model("hat", 0, 4.0)
    with torch.no_grad():
        model.joint_network.lin_blank.bias.sub_(2.0)  # many labels, many competing alignments
    enc_out, enc_lens = _mixed_batch(model, 1, lengths=(60, 41))
    reference = reference_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, nbest=3)
    held = {}
    for max_entries in (4096, 12):
        monkeypatch.setattr(compiled, "MAX_ENTRIES", max_entries)
        search = CompiledBeamSearch(model.joint_network, model.decoder, SearchConfig(nbest=3, row_plan="compiled"), 2)
        search.extend(enc_out, enc_lens)
        _assert_same(search.nbest(), reference)
        # per stream: store entries, stored sequences, prefix-tree links, nodes made
        held[max_entries] = [(s.size, len(s.entries), len(s.children), s.trie_size) for s in search.streams]
    for (size, sequences, links, made), (small_size, _, small_links, small_made) in zip(held[4096], held[12]):
        assert size == sequences > 20  # one entry per sequence computed, in a search with labels
        assert small_size <= 12 and small_links < small_made - 1  # bounded; links of dropped sequences gone


@pytest.mark.parametrize("theta", [1.0, 0.9])
def test_the_compiled_plan_projects_only_labels_that_can_enter_the_top_k_with_the_same_hypotheses(theta):
    """A HAT row's labels score at most its score + log P(not blank): where that is below the K best candidates
    offered (each row's blank first, best row first), they are not projected; a row below them is not evaluated at
    all (nor its new sequence's LSTM step made). Same n-best and scores as the frame-by-frame search, which projects
    the labels of every row below theta."""
    from espnet_hatiam.search import SearchConfig, SearchCounters
    from espnet_hatiam.search.compiled import CompiledBeamSearch

    model = _random_model("hat", 3, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 3, lengths=(50, 37, 12))
    reference_counters, counters = SearchCounters.for_lengths(enc_lens), SearchCounters.for_lengths(enc_lens)
    reference = reference_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, nbest=4,
                                      hat_blank_threshold=theta, counters=reference_counters)
    search = CompiledBeamSearch(model.joint_network, model.decoder,
                                SearchConfig(nbest=4, hat_blank_threshold=theta, row_plan="compiled"), 3, counters)
    search.extend(enc_out, enc_lens)
    _assert_same(search.nbest(), reference)
    assert any(nbest[0].token_ids for nbest in reference), "the test model should emit labels"
    assert counters.joint_evaluations.sum() < reference_counters.joint_evaluations.sum()  # rows not evaluated
    assert counters.label_projections.sum() < 0.9 * reference_counters.label_projections.sum()


@pytest.mark.parametrize("joint_type", ["hat", "rnnt"])
def test_the_compiled_plan_skips_rows_that_cannot_enter_the_top_k_with_the_selecting_plans_hypotheses(joint_type):
    """A row whose score is below the K best candidates already offered on the frame is not evaluated (no joint
    hidden, no blank logit, no labels): fewer joint evaluations than the selecting plan, which evaluates every row on
    the frame, and the same n-best and scores. (With both of the loop's row checks removed the counts are equal.)"""
    from espnet_hatiam.search import SearchCounters

    model = _random_model(joint_type, 3, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 3, lengths=(50, 37, 12))
    results, evaluations = {}, {}
    for plan in ("select", "compiled"):
        counters = SearchCounters.for_lengths(enc_lens)
        results[plan] = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, nbest=4,
                                             row_plan=plan, counters=counters)
        evaluations[plan] = int(counters.joint_evaluations.sum())
    _assert_same(results["compiled"], results["select"])
    assert evaluations["compiled"] < evaluations["select"]


@pytest.mark.parametrize("joint_type", ["hat", "rnnt"])
@pytest.mark.parametrize("search_type", ["beam", "greedy"])
def test_the_compiled_plan_drops_the_frames_iam_frame_skip_drops_inside_its_loop(joint_type, search_type):
    """The compiled loop decides IAM frame skipping frame by frame from the projected frame: the hypotheses and kept
    frames of ``iam_frame_skip``'s pass followed by a search of the kept frames (the selecting plan)."""
    from espnet_hatiam.search import SearchConfig, SearchCounters, decode_encoded
    from espnet_hatiam.search.frame_skip import iam_frame_skip

    model = _random_model(joint_type, 4, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 4, lengths=(40, 23, 9))
    joint = model.joint_network
    with torch.no_grad():  # about half the frames dropped; no frame near the threshold (float rounding)
        probs = joint.iam_blank_log_prob(enc_out).exp().flatten().sort().values
    middle = probs.numel() // 2
    threshold = float(probs[middle - 1] + probs[middle]) / 2
    kept, kept_lens = iam_frame_skip(joint, enc_out, enc_lens, threshold)
    results = {}
    for plan in ("select", "compiled"):
        counters = SearchCounters.for_lengths(enc_lens)
        config = SearchConfig(search_type=search_type, beam_size=4 if search_type == "beam" else 1, nbest=1,
                              iam_blank_threshold=threshold, row_plan=plan)
        results[plan] = decode_encoded(joint, model.decoder, enc_out, enc_lens, config, counters)
        assert torch.equal(counters.frames_kept, kept_lens.long())
    reference = decode_encoded(joint, model.decoder, kept, kept_lens,
                               SearchConfig(search_type=search_type, beam_size=4 if search_type == "beam" else 1,
                                            nbest=1, row_plan="select"))
    _assert_same(results["compiled"], reference)
    _assert_same(results["select"], reference)
    assert 0 < int(kept_lens.sum()) < int(enc_lens.sum())


def test_the_compiled_plan_follows_weights_changed_in_place():
    """Its weight arrays are made once per model and again after an in-place update (an optimiser step)."""
    model = _random_model("hat", 2, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 2)
    args = (model.joint_network, model.decoder, enc_out, enc_lens, 4)
    before = modified_beam_search(*args, nbest=2, row_plan="compiled")
    with torch.no_grad():
        model.joint_network.lin_label.weight.mul_(-1.0)
        model.decoder.decoder[0].weight_hh_l0.mul_(0.5)
    after = modified_beam_search(*args, nbest=2, row_plan="compiled")
    _assert_same(after, modified_beam_search(*args, nbest=2, row_plan="select"))
    assert [[h.token_ids for h in n] for n in after] != [[h.token_ids for h in n] for n in before]


def test_the_install_time_warm_up_compiles_the_signature_a_search_uses():
    """tools/install.sh's warm_up compiles the loop a real search then calls (no second compilation, which would
    cost a user's first decode 15-30 s)."""
    from espnet_hatiam.search import compiled

    compiled.warm_up()
    model = _random_model("hat", 0, 4.0)
    enc_out, enc_lens = _mixed_batch(model, 0)
    modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, row_plan="compiled")
    greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, row_plan="compiled")
    assert len(compiled._search.signatures) == 1
