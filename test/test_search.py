"""Searches: thresholds off = plain search, beam 1 = greedy, batching, frame skipping, counters,
several labels per frame, exact merging, the search config."""

import math

import pytest
import torch

from espnet_hatiam.search import (
    SearchConfig,
    SearchCounters,
    decode_encoded,
    greedy_search,
    iam_frame_skip,
    modified_beam_search,
)
from tiny_model import build_tiny_model


def _encoder_output(batch=3, frames=(30, 22, 9), size=32, seed=0):
    """Random encoder outputs, scaled so the random joint is confident and emits labels."""
    g = torch.Generator().manual_seed(seed)
    enc_out = 3 * torch.randn(batch, max(frames), size, generator=g)
    return enc_out, torch.tensor(frames)


@pytest.fixture(scope="module")
def model():
    """A random HAT model that emits a label on roughly half of the frames."""
    torch.manual_seed(1)
    model = build_tiny_model("hat")
    with torch.no_grad():
        model.joint_network.lin_blank.weight.mul_(4.0)
        model.joint_network.lin_label.weight.mul_(4.0)
    return model


def _search(model, enc_out, enc_lens, beam, **kwargs):
    counters = SearchCounters.for_lengths(enc_lens)
    if beam == 1:
        hyps = [[h] for h in greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, counters=counters, **kwargs)]
    else:
        hyps = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, beam, counters=counters, **kwargs)
    return hyps, counters


@pytest.mark.parametrize("beam", [1, 4])
def test_thresholds_of_one_return_exactly_the_plain_search(model, beam):
    enc_out, enc_lens = _encoder_output()
    plain, _ = _search(model, enc_out, enc_lens, beam)
    kept, kept_lens = iam_frame_skip(model.joint_network, enc_out, enc_lens, 1.0)
    off, counters = _search(model, kept, kept_lens, beam, hat_blank_threshold=1.0)
    assert off == plain
    assert any(h[0].token_ids for h in plain), "the test model should emit labels"
    if beam > 1:  # the selecting plan projects every row's labels (greedy: only where one can win, P(blank) < 0.5)
        _, counters = _search(model, kept, kept_lens, beam, hat_blank_threshold=1.0, row_plan="select")
        assert torch.equal(counters.label_projections, counters.joint_evaluations)


@pytest.mark.parametrize("max_sym", [1, 3])
def test_beam_one_equals_greedy(model, max_sym):
    enc_out, enc_lens = _encoder_output()
    greedy = greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, max_sym_per_frame=max_sym)
    beam = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, beam_size=1,
                                max_sym_per_frame=max_sym)
    assert [b[0].token_ids for b in beam] == [g.token_ids for g in greedy]
    for b, g in zip(beam, greedy):
        assert b[0].score == pytest.approx(g.score, abs=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_batched_decoding_equals_one_by_one(model, beam):
    enc_out, enc_lens = _encoder_output()
    batched, _ = _search(model, enc_out, enc_lens, beam)
    for b in range(enc_out.size(0)):
        single, _ = _search(model, enc_out[b : b + 1, : enc_lens[b]], enc_lens[b : b + 1], beam)
        assert single[0][0].token_ids == batched[b][0].token_ids
        assert single[0][0].score == pytest.approx(batched[b][0].score, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_beam_search_score_is_never_below_greedy(model, seed):
    enc_out, enc_lens = _encoder_output(seed=seed)
    greedy, _ = _search(model, enc_out, enc_lens, 1)
    beam, _ = _search(model, enc_out, enc_lens, 4)
    for g, b in zip(greedy, beam):
        assert b[0].score >= g[0].score - 1e-4


def test_nbest_is_sorted_and_distinct(model):
    enc_out, enc_lens = _encoder_output()
    nbests = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, beam_size=4, nbest=4)
    for nbest in nbests:
        assert len(nbest) == 4
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.token_ids) for h in nbest}) == len(nbest)


def _certain_blank_model(model):
    """Copy of the model whose IAM and HAT blank posterior is ~1 on frames with feature 0 = +10.

    Hidden unit 0 follows encoder feature 0 only (no prediction-network input) and drives
    the blank logit, so "easy" frames are blank for the IAM and for every hypothesis.
    """
    import copy

    easy = copy.deepcopy(model)
    joint = easy.joint_network
    with torch.no_grad():
        joint.lin_enc.weight[0] = 0
        joint.lin_enc.weight[0, 0] = 1.0
        joint.lin_enc.bias[0] = -5.0
        joint.lin_dec.weight[0] = 0
        joint.lin_blank.weight[0, 0] = 40.0
        joint.lin_blank.bias[0] = -2.0
        joint.lin_label.weight[:, 0] = 0
    return easy


def _easy_frames(enc_out, enc_lens, every=3):
    """Feature 0 := +10 on every ``every``-th valid frame (easy), -10 elsewhere; returns (enc_out, enc_lens, easy)."""
    enc_out = enc_out.clone()
    t = torch.arange(enc_out.size(1))
    easy = (t % every == 0).unsqueeze(0) & (t.unsqueeze(0) < enc_lens.unsqueeze(1))
    enc_out[..., 0] = torch.where(easy, 10.0, -10.0)
    return enc_out, enc_lens, easy


def test_iam_threshold_skips_exactly_the_certain_blank_frames(model):
    easy_model = _certain_blank_model(model)
    enc_out, enc_lens, easy = _easy_frames(*_encoder_output())
    kept, kept_lens = iam_frame_skip(easy_model.joint_network, enc_out, enc_lens, 0.99)
    assert torch.equal(kept_lens, enc_lens - easy.sum(1))
    for b in range(enc_out.size(0)):
        expected = enc_out[b, : enc_lens[b]][~easy[b, : enc_lens[b]]]
        assert torch.equal(kept[b, : kept_lens[b]], expected)


@pytest.mark.parametrize("beam, plan", [(1, "select"), (4, "select"), (4, "mask"), (4, "compiled")])
def test_hat_threshold_passes_the_easy_frames_and_drops_their_label_projections(model, beam, plan):
    easy_model = _certain_blank_model(model)
    enc_out, enc_lens, easy = _easy_frames(*_encoder_output())
    plain, plain_counters = _search(easy_model, enc_out, enc_lens, beam, row_plan=plan)
    fast, counters = _search(easy_model, enc_out, enc_lens, beam, hat_blank_threshold=0.99, row_plan=plan)
    assert [h[0].token_ids for h in fast] == [h[0].token_ids for h in plain]
    if beam == 1:  # label-looping: on the easy frames P(blank) >= 0.5, no label can win there anyway
        assert torch.equal(counters.frames_searched, enc_lens - easy.sum(1))
        assert torch.equal(counters.label_projections, plain_counters.label_projections)
        return
    assert torch.equal(plain_counters.frames_searched, enc_lens)
    assert (counters.label_projections < plain_counters.label_projections).all()
    if plan == "mask":  # looks ahead before every frame: visits exactly the frames not blank-certain
        assert torch.equal(counters.frames_searched, enc_lens - easy.sum(1))
    elif plan == "compiled":  # frame by frame: visits every frame, and projects no label on the easy ones
        assert torch.equal(counters.frames_searched, enc_lens)
    else:  # looks ahead only after a frame without a label (here the first frame, easy: one pass)
        assert torch.equal(counters.frames_searched, enc_lens - 1)


def test_blank_certain_run_equals_a_frame_by_frame_scan():
    from espnet_hatiam.search.frame_skip import blank_certain_run

    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(5, 3, 8, generator=g) + 4
    valid = torch.arange(8) < torch.tensor([8, 8, 5, 2, 0]).unsqueeze(1)
    empty = torch.zeros(5, 3, 1, dtype=torch.bool)
    empty[1, 2] = True
    run, settled, blank = blank_certain_run(logits, 1.5, valid, empty)
    for b in range(5):
        expected = 0
        while expected < 8 and valid[b, expected] and all(logits[b, k, expected] >= 1.5 or empty[b, k]
                                                          for k in range(3)):
            expected += 1
        assert int(run[b]) == expected and settled[b].tolist() == [1] * expected + [0] * (8 - expected)
        for k in range(3):
            want = sum(float(torch.nn.functional.logsigmoid(logits[b, k, w])) for w in range(expected))
            assert float(blank[b, k]) == pytest.approx(want, abs=1e-5)
    assert 0 < int(run.sum()) < 8 * 4, "the case should have short and empty runs"


def test_dual_thresholding_counts_the_frames_it_keeps_and_bounds_the_other_counters(model):
    easy_model = _certain_blank_model(model)
    enc_out, enc_lens, easy = _easy_frames(*_encoder_output(), every=2)
    counters = SearchCounters.for_lengths(enc_lens)
    config = SearchConfig(beam_size=4, max_sym_per_frame=2, iam_blank_threshold=0.99, hat_blank_threshold=0.9)
    decode_encoded(easy_model.joint_network, easy_model.decoder, enc_out, enc_lens, config, counters)
    assert torch.equal(counters.frames_kept, enc_lens - easy.sum(1))
    assert (counters.frames_searched <= counters.frames_kept).all()
    assert (counters.label_projections <= counters.joint_evaluations).all()
    assert (counters.joint_evaluations >= counters.frames_kept).all()  # every kept frame's blank is computed


def test_hat_threshold_is_refused_for_the_rnnt_joint_by_greedy_and_beam_search():
    from espnet_hatiam.errors import InputError

    rnnt = build_tiny_model("rnnt")
    enc_out, enc_lens = _encoder_output()
    with pytest.raises(InputError, match="'hat_blank_threshold'.*joint_type: hat"):
        greedy_search(rnnt.joint_network, rnnt.decoder, enc_out, enc_lens, hat_blank_threshold=0.9)
    with pytest.raises(InputError, match="'hat_blank_threshold'.*joint_type: hat"):
        modified_beam_search(rnnt.joint_network, rnnt.decoder, enc_out, enc_lens, 2, hat_blank_threshold=0.9)


def test_rnnt_beam_search_equals_the_slow_reference():
    rnnt = build_tiny_model("rnnt")
    enc_out, enc_lens = _encoder_output()
    plain = modified_beam_search(rnnt.joint_network, rnnt.decoder, enc_out, enc_lens, 2)
    labels, score = _reference_modified_beam_search(rnnt, enc_out[0, : enc_lens[0]], 2)
    assert plain[0][0].token_ids == labels and plain[0][0].score == pytest.approx(score, abs=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_max_sym_per_frame_bounds_the_labels_and_changes_the_result(model, beam):
    enc_out, enc_lens = _encoder_output()
    one, _ = _search(model, enc_out, enc_lens, beam, max_sym_per_frame=1)
    three, _ = _search(model, enc_out, enc_lens, beam, max_sym_per_frame=3)
    for b in range(enc_out.size(0)):
        assert len(one[b][0].token_ids) <= int(enc_lens[b])
        assert len(three[b][0].token_ids) <= 3 * int(enc_lens[b])
    assert [h[0].token_ids for h in three] != [h[0].token_ids for h in one]


def _reference_modified_beam_search(model, enc_out, beam, bonus=None, max_sym=SearchConfig.max_sym_per_frame,
                                    expansion_beam=SearchConfig.expansion_beam):
    """Slow, obvious beam search for one utterance ``(T, De)``: hypotheses in dicts.

    Each frame is searched in up to ``max_sym`` rounds. In a round every hypothesis still on
    the frame is extended by every output: blank makes it leave the frame, a label keeps it
    on the frame (it leaves after the ``max_sym``-th label); those that left earlier compete
    unchanged. The ``beam`` best candidates are kept, and candidates with equal label
    sequences and the same position (left or not) are merged by log-sum-exp. With
    ``max_sym`` 1 this is icefall's ``modified_beam_search``. ``bonus(labels, dec_out)``
    gives ``(V,)`` scores added to the labels (LM fusion). A kept label candidate more than
    ``expansion_beam`` below the round's best candidate leaves the frame.
    """
    joint, decoder = model.joint_network, model.decoder
    decoder.set_device(enc_out.device)

    def predict(labels):
        tokens = torch.tensor([[0] + list(labels)])
        return decoder(tokens)[0, -1]

    left = {(): 0.0}
    for t in range(enc_out.size(0)):
        active, left = left, {}
        for s in range(max_sym):
            candidates = [(score, labels, False) for labels, score in left.items()]
            for labels, score in active.items():
                dec_out = predict(labels)
                log_probs = joint(enc_out[t], dec_out)
                if bonus is not None:
                    log_probs = torch.cat([log_probs[:1], log_probs[1:] + bonus(labels, dec_out)])
                for k in range(log_probs.numel()):
                    if k == 0:
                        candidates.append((score + float(log_probs[0]), labels, False))
                    else:
                        candidates.append((score + float(log_probs[k]), labels + (k,), s + 1 < max_sym))
            candidates.sort(key=lambda c: -c[0])
            kept = {}
            for score, labels, stays in candidates[:beam]:
                key = (labels, stays and score >= candidates[0][0] - expansion_beam)
                kept[key] = float(torch.logaddexp(torch.tensor(kept[key]), torch.tensor(score))) if key in kept else score
            left = {labels: score for (labels, stays), score in kept.items() if not stays}
            active = {labels: score for (labels, stays), score in kept.items() if stays}
            if not active:
                break
    best = max(left.items(), key=lambda item: item[1])
    return list(best[0]), best[1]


@pytest.mark.parametrize("max_sym", [1, 2, 3])
@pytest.mark.parametrize("plan", ["select", "mask", "compiled"])
def test_beam_search_equals_slow_reference_and_merges_equal_sequences(model, monkeypatch, max_sym, plan):
    from espnet_hatiam.search import beam_state

    merged = []
    merge, add = beam_state.merge_equal_sequences, beam_state._log_add_exp

    def counting_merge(scores, labels, active, later_slot):
        out = merge(scores, labels, active, later_slot)
        merged.append(int(((scores.view(-1, 1) > float("-inf")) & ~out[1]).sum()))
        return out

    def counting_add(a, b):
        merged.append(1)
        return add(a, b)

    monkeypatch.setattr(beam_state, "merge_equal_sequences", counting_merge)
    monkeypatch.setattr(beam_state, "_log_add_exp", counting_add)
    enc_out, enc_lens = _encoder_output(frames=(12, 7), batch=2)
    # Every frame twice: a label can be emitted on either copy, so equal sequences meet.
    enc_out = enc_out.repeat_interleave(2, dim=1)[:, :12]
    with torch.no_grad():
        batched = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4,
                                       max_sym_per_frame=max_sym, row_plan=plan)
        for b in range(2):
            labels, score = _reference_modified_beam_search(model, enc_out[b, : enc_lens[b]], 4, max_sym=max_sym)
            assert batched[b][0].token_ids == labels
            assert batched[b][0].score == pytest.approx(score, abs=1e-4)
    assert plan == "compiled" or sum(merged) > 0, "the case should exercise merging"  # (the compiled loop's
    # merges are not observable: the same frames, the same algorithm)


def test_expansion_beam_equals_slow_reference_and_saves_joint_evaluations(model):
    enc_out, enc_lens = _encoder_output(frames=(12, 7), batch=2)
    evaluations, best = {}, {}
    with torch.no_grad():
        for width in (math.inf, 2.0, 0.5):
            hyps, counters = _search(model, enc_out, enc_lens, 4, max_sym_per_frame=3, expansion_beam=width)
            evaluations[width] = int(counters.joint_evaluations.sum())
            best[width] = [h[0].token_ids for h in hyps]
            for b in range(2):
                labels, score = _reference_modified_beam_search(model, enc_out[b, : enc_lens[b]], 4, max_sym=3,
                                                                expansion_beam=width)
                assert hyps[b][0].token_ids == labels
                assert hyps[b][0].score == pytest.approx(score, abs=1e-4)
    assert evaluations[0.5] < evaluations[2.0] <= evaluations[math.inf], evaluations
    assert best[0.5] != best[math.inf], "the case should change a result, or a search ignoring the beam would pass"


def test_merging_compares_whole_label_sequences_and_frame_positions():
    from espnet_hatiam.search.beam_state import merge_equal_sequences

    scores = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    # Slots 0 and 1 hold permutations of one multiset (what an order-blind hash would equate);
    # slot 2 repeats slot 0, slot 3 too but is still on the frame.
    labels = torch.tensor([[[1, 2], [2, 1], [1, 2], [1, 2]]])
    active = torch.tensor([[False, False, False, True]])
    merged, keep = merge_equal_sequences(scores, labels, active, torch.arange(4).view(4, 1) > torch.arange(4))
    assert keep.view(-1).tolist() == [True, True, False, True]
    merged = merged.view(-1)
    assert merged[0] == pytest.approx(float(torch.logaddexp(torch.tensor(-1.0), torch.tensor(-3.0))))
    assert merged[1] == -2.0 and merged[3] == -4.0 and merged[2] == float("-inf")


def test_decode_encoded_dispatches_on_the_search_type(model):
    enc_out, enc_lens = _encoder_output()
    greedy = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, SearchConfig(search_type="greedy"))
    assert [h[0] for h in greedy] == greedy_search(model.joint_network, model.decoder, enc_out, enc_lens,
                                                   max_sym_per_frame=SearchConfig().max_sym_per_frame)
    beam = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens,
                          SearchConfig(search_type="beam", beam_size=3, max_sym_per_frame=2))
    assert beam == modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 3, max_sym_per_frame=2)


@pytest.mark.parametrize("options, named", [
    ({"beam_size": 0}, "beam_size"),
    ({"iam_blank_threshold": 1.5}, "iam_blank_threshold"),
    ({"hat_blank_threshold": -0.1}, "hat_blank_threshold"),
    ({"search_type": "k2"}, "search_type"),
    ({"espnet_search_type": "beam"}, "espnet_search_type"),
    ({"nbest": 5, "beam_size": 4}, "nbest"),
    ({"search_type": "greedy", "nbest": 2}, "nbest"),
    ({"max_sym_per_frame": 0}, "max_sym_per_frame"),
    ({"expansion_beam": 0.0}, "expansion_beam"),
    ({"expansion_beam": float("nan")}, "expansion_beam"),
    ({"search_type": "espnet", "hat_blank_threshold": 0.9}, "hat_blank_threshold"),
    ({"row_plan": "cuda"}, "row_plan"),
    ({"row_plan": "compiled", "search_type": "espnet"}, "row_plan"),
    ({"row_plan": "compiled", "lm_weight": 0.3}, "row_plan"),
    ({"beam_width": 4}, "beam_width"),
])
def test_search_config_refuses_bad_options_by_name(options, named):
    from espnet_hatiam.errors import InputError

    with pytest.raises(InputError, match=f"'{named}'"):
        SearchConfig.from_options(**options)


@pytest.mark.parametrize("options, named", [
    ({"beam_size": 4, "nbest": 5}, "nbest"),
    ({"max_sym_per_frame": 0}, "max_sym_per_frame"),
    ({"expansion_beam": -1.0}, "expansion_beam"),
    ({"row_plan": "gather"}, "row_plan"),
    ({"hat_blank_threshold": 2.0}, "hat_blank_threshold"),
])
def test_the_searches_refuse_bad_options_with_the_configs_error(model, options, named):
    from espnet_hatiam.errors import InputError

    enc_out, enc_lens = _encoder_output()
    with pytest.raises(InputError, match=f"'{named}'"):
        modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, **options)
    greedy_options = {k: v for k, v in options.items() if k in ("max_sym_per_frame", "row_plan", "hat_blank_threshold")}
    if greedy_options:
        with pytest.raises(InputError, match=f"'{named}'"):
            greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, **greedy_options)


def test_the_compiled_plan_is_refused_by_name_where_it_cannot_run_and_auto_then_selects():
    """A GRU prediction network: row_plan compiled names what it needs; auto searches with the selecting plan."""
    from espnet_hatiam.errors import InputError
    from espnet_hatiam.search.beam import BeamSearch, open_beam_search

    gru = build_tiny_model(rnn_type="gru")
    with pytest.raises(InputError, match="'row_plan'=compiled needs an LSTM prediction network"):
        open_beam_search(gru.joint_network, gru.decoder, SearchConfig(row_plan="compiled"), 1, torch.device("cpu"))
    search = open_beam_search(gru.joint_network, gru.decoder, SearchConfig(), 1, torch.device("cpu"))
    assert isinstance(search, BeamSearch) and not search.masked


def _tiny_lm(vocab_size):
    from espnet2.lm.seq_rnn_lm import SequentialRNNLM

    torch.manual_seed(3)
    return SequentialRNNLM(vocab_size, unit=8, nlayers=1).eval()


def test_lm_fusion_with_zero_weights_changes_nothing(model):
    from espnet_hatiam.search import RNNLMFusion

    enc_out, enc_lens = _encoder_output()
    fusion = RNNLMFusion(_tiny_lm(model.joint_network.vocab_size), model.joint_network, 0.0, 0.0)
    plain = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 3)
    fused = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 3, fusion=fusion)
    assert [h[0].token_ids for h in fused] == [h[0].token_ids for h in plain]
    assert [h[0].score for h in fused] == pytest.approx([h[0].score for h in plain], abs=1e-5)


def test_lm_fusion_with_ilm_subtraction_equals_slow_reference(model):
    from espnet_hatiam.search import RNNLMFusion

    lm = _tiny_lm(model.joint_network.vocab_size)
    sos = model.joint_network.vocab_size - 1
    lm_weight, ilm_weight = 0.8, 0.4

    def bonus(labels, dec_out):
        out, _ = lm(torch.tensor([[sos, *labels]]), None)
        lm_log_probs = torch.log_softmax(out[0, -1], dim=-1)[1:]
        return lm_weight * lm_log_probs - ilm_weight * model.joint_network.ilm(dec_out)

    fusion = RNNLMFusion(lm, model.joint_network, lm_weight, ilm_weight)
    enc_out, enc_lens = _encoder_output(frames=(10, 6), batch=2)
    with torch.no_grad():
        fused = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 3, fusion=fusion)
        plain = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 3)
        for b in range(2):
            labels, score = _reference_modified_beam_search(model, enc_out[b, : enc_lens[b]], 3, bonus)
            assert fused[b][0].token_ids == labels
            assert fused[b][0].score == pytest.approx(score, abs=1e-4)
    assert [h[0].score for h in fused] != pytest.approx([h[0].score for h in plain])


def test_lm_with_another_token_list_is_refused(model):
    from espnet_hatiam.search import RNNLMFusion

    with pytest.raises(ValueError, match="token list"):
        RNNLMFusion(_tiny_lm(5), model.joint_network, 0.5, 0.0)


@pytest.mark.parametrize("layers", [1, 2])
def test_prediction_network_step_equals_espnets_rnn_forward(layers):
    """The search's LSTM step (its gate arithmetic on the decoder's transposed weights) is ESPnet's rnn_forward."""
    from espnet2.asr.decoder.transducer_decoder import TransducerDecoder

    from espnet_hatiam.search.state import PredictionNetwork

    torch.manual_seed(0)
    decoder = TransducerDecoder(vocab_size=12, num_layers=layers, hidden_size=16, dropout=0.1, dropout_embed=0.1).eval()
    prediction = PredictionNetwork(decoder)
    state = (torch.randn(layers, 5, 16), torch.randn(layers, 5, 16))
    tokens = torch.tensor([0, 3, 11, 3, 7])
    out, (h, c) = prediction.step(tokens, state)
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = decoder.rnn_forward(decoder.embed(tokens.unsqueeze(1)), state)
    torch.testing.assert_close(out, ref_out.squeeze(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h, ref_h, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c, ref_c, rtol=1e-5, atol=1e-6)


def test_label_trie_gives_each_label_sequence_one_node_and_reads_it_back():
    """Extending a sequence by a label finds the same node each time; different sequences get different nodes."""
    from espnet_hatiam.search.beam_state import LabelTrie

    trie = LabelTrie()
    a = trie.child(LabelTrie.EMPTY, 3)
    assert trie.child(LabelTrie.EMPTY, 3) == a
    ab, ac = trie.child(a, 5), trie.child(a, 6)
    assert len({LabelTrie.EMPTY, a, ab, ac, trie.child(ab, 3)}) == 5
    assert trie.child(a, 5) == ab
    assert trie.labels(ab) == [3, 5] and trie.labels(ac) == [3, 6] and trie.labels(LabelTrie.EMPTY) == []


def test_label_trie_prune_keeps_the_kept_sequences_prefixes_and_a_remade_sequence_equals_no_kept_node():
    """After pruning, kept sequences and their prefixes read back the same and extend to the same nodes;
    a dropped sequence made again gets a node that no kept node equals."""
    from espnet_hatiam.search.beam_state import LabelTrie

    trie = LabelTrie()
    one = trie.child(LabelTrie.EMPTY, 1)
    one_two = trie.child(one, 2)
    kept = trie.child(one_two, 3)  # [1, 2, 3]
    dropped = trie.child(one, 4)  # [1, 4]
    trie.child(dropped, 7)
    trie.prune({kept})
    assert len(trie) == 4  # the empty sequence, [1], [1, 2], [1, 2, 3]
    assert trie.labels(kept) == [1, 2, 3]
    assert trie.child(trie.child(LabelTrie.EMPTY, 1), 2) == one_two and trie.child(one_two, 3) == kept
    remade = trie.child(one, 4)
    assert remade not in (LabelTrie.EMPTY, one, one_two, kept) and trie.labels(remade) == [1, 4]


@pytest.mark.parametrize("change", ["embedding step", "recurrent weight step", "load_state_dict"])
def test_prediction_network_follows_changed_weights(change):
    """The cached step weights (the tokens' input gates, the transposed recurrent weights) are recomputed
    when any of the decoder's weights changes: the embedding alone, the recurrent weight alone, or all."""
    from espnet2.asr.decoder.transducer_decoder import TransducerDecoder

    from espnet_hatiam.search.state import PredictionNetwork

    torch.manual_seed(0)
    decoder = TransducerDecoder(vocab_size=12, hidden_size=16).eval()
    state = (torch.randn(1, 3, 16), torch.randn(1, 3, 16))
    tokens = torch.tensor([0, 3, 11])
    before, _ = PredictionNetwork(decoder).step(tokens, state)
    if change == "load_state_dict":
        decoder.load_state_dict(TransducerDecoder(vocab_size=12, hidden_size=16).state_dict())
    else:
        weight = decoder.embed.weight if change == "embedding step" else decoder.decoder[0].weight_hh_l0
        weight.grad = torch.ones_like(weight)
        torch.optim.SGD([weight], lr=0.5).step()
    after, _ = PredictionNetwork(decoder).step(tokens, state)
    with torch.no_grad():
        ref, _ = decoder.rnn_forward(decoder.embed(tokens.unsqueeze(1)), state)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, ref.squeeze(1), rtol=1e-5, atol=1e-6)


def _refuse_host_synchronisation(monkeypatch):
    """The frame loop may not ask the device for a value: no ``item``, ``int``, ``float``, ``tolist``,
    ``nonzero``, tensor in an ``if`` or boolean-mask indexing. The copy of the result after the loop
    (``MaskedBeam.nbest``, ``greedy._hypotheses``) is exempt."""
    import espnet_hatiam.search.greedy as greedy_module
    from espnet_hatiam.search.beam_state import MaskedBeam

    exempt = []

    def refusing(name, original):
        def method(self, *args, **kwargs):
            if not exempt:
                raise AssertionError(f"host synchronisation in the masked search: Tensor.{name}")
            return original(self, *args, **kwargs)
        return method

    for name in ("item", "tolist", "nonzero", "__bool__", "__int__", "__float__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, refusing(name, getattr(torch.Tensor, name)))
    for name in ("__getitem__", "__setitem__"):
        original = getattr(torch.Tensor, name)

        def indexing(self, index, *args, _original=original, _name=name):
            parts = index if isinstance(index, tuple) else (index,)
            if not exempt and any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts):
                raise AssertionError(f"host synchronisation in the masked search: boolean-mask {_name}")
            return _original(self, index, *args)
        monkeypatch.setattr(torch.Tensor, name, indexing)
    for module, name in ((MaskedBeam, "nbest"), (greedy_module, "_hypotheses")):
        def exempted(*args, _original=getattr(module, name)):
            exempt.append(True)
            try:
                return _original(*args)
            finally:
                exempt.pop()
        monkeypatch.setattr(module, name, exempted)


@pytest.mark.parametrize("max_sym, hat_threshold, with_lm, expansion_beam",
                         [(1, 1.0, False, math.inf), (2, 1.0, False, math.inf), (3, 0.9, False, math.inf),
                          (2, 0.9, True, math.inf), (3, 1.0, False, 1.0)])
def test_the_masked_plan_returns_the_selecting_plans_hypotheses(model, max_sym, hat_threshold, with_lm,
                                                               expansion_beam, monkeypatch):
    from espnet_hatiam.search import RNNLMFusion

    easy_model = _certain_blank_model(model)
    enc_out, enc_lens, _ = _easy_frames(*_encoder_output(batch=4, frames=(30, 22, 9, 17)))
    fusion = RNNLMFusion(_tiny_lm(model.joint_network.vocab_size), model.joint_network, 0.3, 0.2) if with_lm else None
    results = []
    for plan in ("select", "mask"):
        if plan == "mask":
            _refuse_host_synchronisation(monkeypatch)
        counters = SearchCounters.for_lengths(enc_lens)
        hyps = modified_beam_search(easy_model.joint_network, easy_model.decoder, enc_out, enc_lens, 4, nbest=4,
                                    max_sym_per_frame=max_sym, hat_blank_threshold=hat_threshold,
                                    counters=counters, fusion=fusion, row_plan=plan, expansion_beam=expansion_beam)
        monkeypatch.undo()
        results.append((hyps, counters))
    (selecting, counted), (masked, masked_counted) = results
    assert [[h.token_ids for h in n] for n in masked] == [[h.token_ids for h in n] for n in selecting]
    for a, b in zip(selecting, masked):
        assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-5)  # rows stepped apart or together
    # with HAT-blank thresholding the selecting plan looks ahead less often: more frames searched one by one
    for name in ("label_projections",) if hat_threshold < 1 else ("joint_evaluations", "label_projections",
                                                                  "frames_searched"):
        assert torch.equal(getattr(counted, name), getattr(masked_counted, name)), name


@pytest.mark.parametrize("max_sym, hat_threshold", [(1, 1.0), (2, 1.0), (3, 0.9), (2, 0.4)])
def test_the_masked_greedy_search_returns_the_selecting_plans_hypotheses(model, max_sym, hat_threshold,
                                                                        monkeypatch):
    easy_model = _certain_blank_model(model)
    enc_out, enc_lens, _ = _easy_frames(*_encoder_output(batch=4, frames=(30, 22, 9, 17)))
    results = []
    for plan in ("select", "mask"):
        if plan == "mask":
            _refuse_host_synchronisation(monkeypatch)
        counters = SearchCounters.for_lengths(enc_lens)
        frame_labels = torch.zeros(enc_out.shape[:2], dtype=torch.long)
        hyps = greedy_search(easy_model.joint_network, easy_model.decoder, enc_out, enc_lens, max_sym,
                             hat_threshold, counters, frame_labels, row_plan=plan)
        monkeypatch.undo()
        results.append((hyps, counters, frame_labels))
    (selecting, counted, frames), (masked, masked_counted, masked_frames) = results
    assert [h.token_ids for h in masked] == [h.token_ids for h in selecting] and any(h.token_ids for h in selecting)
    assert [h.score for h in masked] == pytest.approx([h.score for h in selecting], abs=1e-5)
    assert torch.equal(frames, masked_frames) and int(frames.sum()) == sum(len(h.token_ids) for h in selecting)
    for name in ("joint_evaluations", "label_projections", "frames_searched"):
        assert torch.equal(getattr(counted, name), getattr(masked_counted, name)), name


@pytest.mark.parametrize("search", ["beam", "greedy"])
@pytest.mark.parametrize("sync", ["item", "int", "float", "tolist", "bool", "mask index"])
def test_the_host_sync_guard_fails_when_the_masked_plan_reads_a_value(model, monkeypatch, search, sync):
    from espnet_hatiam.search import beam_state

    reads = {"item": lambda x: x.sum().item(), "int": lambda x: int(x.sum()), "float": lambda x: float(x.sum()),
             "tolist": lambda x: x.tolist(), "bool": lambda x: bool(x.any()), "mask index": lambda x: x[x]}
    advance = beam_state.BeamState.advance

    def advance_with_a_read(self, token, rows=None, stepping=None):
        reads[sync](stepping)
        return advance(self, token, rows, stepping)

    monkeypatch.setattr(beam_state.BeamState, "advance", advance_with_a_read)
    _refuse_host_synchronisation(monkeypatch)
    enc_out, enc_lens = _encoder_output()
    with pytest.raises(AssertionError, match="host synchronisation"):
        if search == "beam":
            modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, row_plan="mask")
        else:
            greedy_search(model.joint_network, model.decoder, enc_out, enc_lens, row_plan="mask")

