"""The searches resumed over chunks of encoder frames (issue 29) against the same searches over whole utterances:
same hypotheses, partial results, counters, and memory that does not grow with the stream."""

import weakref

import pytest
import torch

from espnet_hatiam.errors import InputError
from espnet_hatiam.search import (
    BeamSearch,
    GreedySearch,
    RNNLMFusion,
    SearchConfig,
    SearchCounters,
    StreamingDecoder,
    decode_encoded,
    greedy_search,
    modified_beam_search,
)
from espnet_hatiam.search.frame_skip import WINDOW
from test_search_exactness import _mixed_batch, _random_model

CPU = torch.device("cpu")
LENGTHS = (31, 5, 18, 1, 24)
SEARCHES = [("beam", "select"), ("beam", "mask"), ("beam", "compiled"), ("greedy", "select"), ("greedy", "mask"),
            ("greedy", "compiled")]


@pytest.fixture(scope="module")
def model():
    """A random blank-heavy HAT model that emits labels and has blank-certain runs (test_search_exactness)."""
    return _random_model("hat", 1, 8.0)


def _chunks(enc_out, enc_lens, size, seed=0):
    """Each stream's frames in chunks of ``size`` (its last one shorter), padded with noise the search must not
    read. Stream 1 gets 0 frames in the second chunk (they come a chunk later), and after the first chunk comes
    one of no frames at all."""
    g = torch.Generator().manual_seed(seed)
    batch, dim = enc_out.size(0), enc_out.size(2)
    sent, index = [0] * batch, 0
    while any(s < int(n) for s, n in zip(sent, enc_lens)):
        take = [0 if b == 1 and index == 1 else min(size, int(enc_lens[b]) - sent[b]) for b in range(batch)]
        chunk = 100 * torch.randn(batch, max(take), dim, generator=g)
        for b in range(batch):
            chunk[b, : take[b]] = enc_out[b, sent[b] : sent[b] + take[b]]
            sent[b] += take[b]
        yield chunk, torch.tensor(take)
        if index == 0:
            yield enc_out.new_zeros(batch, 0, dim), torch.zeros(batch, dtype=torch.long)
        index += 1


def _config(search, plan, **options):
    beam = dict(beam_size=4, nbest=3) if search == "beam" else {}
    return SearchConfig(search_type=search, row_plan=plan, max_sym_per_frame=3, **beam, **options)


def _stream(model, config, enc_out, enc_lens, size, read_partial=False):
    """StreamingDecoder over the chunks: ``(final n-best lists, counters, partial n-best lists after each chunk)``."""
    counters = SearchCounters.for_lengths(torch.zeros(enc_out.size(0), dtype=torch.long))
    decoder = StreamingDecoder(model.joint_network, model.decoder, config, enc_out.size(0), CPU, counters)
    partial = []
    for chunk, lens in _chunks(enc_out, enc_lens, size):
        decoder.extend(chunk, lens)
        if read_partial:
            partial.append((lens, decoder.nbest()))
    return decoder.nbest(), counters, partial


def _offline(model, config, enc_out, enc_lens):
    counters = SearchCounters.for_lengths(enc_lens)
    hyps = decode_encoded(model.joint_network, model.decoder, enc_out, enc_lens, config, counters,
                          blank_agreement_pass=False)
    return hyps, counters


def _assert_same(streamed, offline):
    """Identical label sequences; scores allclose: a blank-certain run cut at a chunk's end is summed in two parts
    (and the masked greedy plan sums its steps per chunk), an addition order that can differ in the last bits."""
    assert [[h.token_ids for h in n] for n in streamed] == [[h.token_ids for h in n] for n in offline]
    for a, b in zip(streamed, offline):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


@pytest.mark.parametrize("search, plan", SEARCHES)
@pytest.mark.parametrize("thresholds", [{}, {"hat_blank_threshold": 0.6}, {"iam_blank_threshold": 0.9}],
                         ids=["thresholds off", "hat 0.6", "iam 0.9"])
@pytest.mark.parametrize("size", [1, 3, 7, max(LENGTHS)])
def test_streaming_over_chunks_equals_the_offline_search_over_the_same_frames(model, search, plan, thresholds, size):
    enc_out, enc_lens = _mixed_batch(model, 1, LENGTHS)
    config = _config(search, plan, **thresholds)
    offline, offline_counters = _offline(model, config, enc_out, enc_lens)
    streamed, _, _ = _stream(model, config, enc_out, enc_lens, size)
    _assert_same(streamed, offline)
    assert any(n[0].token_ids for n in offline), "the test model should emit labels"
    if "iam_blank_threshold" in thresholds:  # the case skips frames, in the middle of chunks
        assert int(offline_counters.frames_kept.sum()) < sum(LENGTHS)


@pytest.mark.parametrize("search", ["beam", "greedy"])
def test_streaming_rnnt_searches_equal_the_offline_searches(search):
    rnnt = _random_model("rnnt", 0, 4.0)
    enc_out, enc_lens = _mixed_batch(rnnt, 0, LENGTHS)
    config = _config(search, "select")
    offline = _offline(rnnt, config, enc_out, enc_lens)[0]
    _assert_same(_stream(rnnt, config, enc_out, enc_lens, 3)[0], offline)
    assert any(n[0].token_ids for n in offline), "the test model should emit labels"


@pytest.mark.parametrize("plan", ["select", "mask"])
def test_streaming_lm_fusion_with_thresholding_equals_the_offline_search(model, plan):
    from espnet2.lm.seq_rnn_lm import SequentialRNNLM

    torch.manual_seed(3)
    lm = SequentialRNNLM(model.joint_network.vocab_size, unit=8, nlayers=1).eval()
    fusion = RNNLMFusion(lm, model.joint_network, 0.5, 0.3)
    enc_out, enc_lens = _mixed_batch(model, 1, LENGTHS)
    config = _config("beam", plan, hat_blank_threshold=0.9)
    search = BeamSearch(model.joint_network, model.decoder, config, len(LENGTHS), CPU, fusion=fusion)
    for chunk, lens in _chunks(enc_out, enc_lens, 4):
        search.extend(chunk, lens)
    offline = modified_beam_search(model.joint_network, model.decoder, enc_out, enc_lens, 4, nbest=3,
                                   max_sym_per_frame=3, hat_blank_threshold=0.9, fusion=fusion, row_plan=plan)
    _assert_same(search.nbest(), offline)


@pytest.mark.parametrize("search, plan", SEARCHES)
def test_partial_results_are_the_offline_results_so_far_and_reading_them_changes_nothing(model, search, plan):
    enc_out, enc_lens = _mixed_batch(model, 1, LENGTHS)
    config = _config(search, plan, hat_blank_threshold=0.9)
    final, _, partial = _stream(model, config, enc_out, enc_lens, 4, read_partial=True)
    unread, _, _ = _stream(model, config, enc_out, enc_lens, 4)
    assert final == unread  # the same floats too: nbest reads the state, never changes it
    received = torch.zeros_like(enc_lens)
    for lens, nbest in partial:  # kept as returned: later chunks did not change them either
        received = received + lens
        _assert_same(nbest, _offline(model, config, enc_out, received)[0])
    assert len(partial) > 5 and received.tolist() == list(LENGTHS)


@pytest.mark.parametrize("search, plan", SEARCHES)
@pytest.mark.parametrize("hat", [1.0, 0.9])
def test_counters_over_chunks_equal_the_offline_counters_where_the_window_does_not_matter(model, search, plan, hat):
    enc_out, enc_lens = _mixed_batch(model, 1, LENGTHS)
    config = _config(search, plan, iam_blank_threshold=0.9, hat_blank_threshold=hat)
    _, offline = _offline(model, config, enc_out, enc_lens)
    _, streamed, _ = _stream(model, config, enc_out, enc_lens, 3)
    # per-frame decisions: the frames, the IAM's kept frames and, on every frame searched, the rows whose labels
    # were needed (the uncertain ones: a certain frame passed in a run or searched in a round needs none)
    equal = ["frames", "frames_kept", "label_projections"]
    # the frames searched: all kept frames without HAT thresholding, else the frames that are not blank-certain,
    # except with the selecting beam plan, which looks ahead only after a frame on which no hypothesis of the
    # batch emitted: where its windows start (at each chunk's start, too) decides which certain frames it searches
    if not (search == "beam" and plan == "select" and hat < 1):
        equal.append("frames_searched")
    # joint evaluations count the look-ahead windows' frames, and a chunk's end cuts a window (the next chunk's
    # starts again): equal only where there is no window, the beam search without HAT thresholding and the compiled
    # plan (frame by frame); the other greedy searches with the HAT joint always look ahead
    if plan == "compiled" or (search == "beam" and hat == 1.0):
        equal.append("joint_evaluations")
    for name in equal:
        assert torch.equal(getattr(streamed, name), getattr(offline, name)), name
    assert torch.equal(streamed.frames, enc_lens) and int(streamed.frames_kept.sum()) < sum(LENGTHS)


@pytest.mark.parametrize("search, plan", [(search, plan) for search, plan in SEARCHES if plan != "compiled"])
def test_a_long_stream_holds_only_the_current_chunks_frames(model, search, plan, monkeypatch):
    """60 chunks of 4 frames: each extend projects its own chunk (+ the window's padding) and drops it on return;
    the masked plan's label buffer holds the labels (+ one chunk's rounds), not the stream's 240 x S rounds."""
    import espnet_hatiam.search.beam as beam_module
    import espnet_hatiam.search.greedy as greedy_module

    buffers = []

    class RecordedFrames(beam_module.EncodedFrames):
        def __init__(self, *args):
            super().__init__(*args)
            buffers.append((self.flat.size(0), weakref.ref(self)))

    monkeypatch.setattr(beam_module if search == "beam" else greedy_module, "EncodedFrames", RecordedFrames)
    config = _config(search, plan, hat_blank_threshold=0.9)
    searcher = (BeamSearch if search == "beam" else GreedySearch)(model.joint_network, model.decoder, config, 2, CPU)
    g = torch.Generator().manual_seed(5)
    chunks, size = 60, 4
    for _ in range(chunks):
        searcher.extend(3 * torch.randn(2, size, 32, generator=g), torch.tensor([size, size - 1]))
        # nothing not yet searched is left after an extend: no frame is held, only the beam
        assert buffers[-1][1]() is None
    assert len(buffers) == chunks and all(rows <= 2 * (size + WINDOW) for rows, _ in buffers)
    longest = max(len(h.token_ids) for n in searcher.nbest() for h in n)
    assert longest > chunks  # a long hypothesis: the buffer below would be small for no reason otherwise
    if search == "beam" and plan == "mask":
        assert searcher.beam.labels.size(1) <= longest + size * config.max_sym_per_frame + 1


def test_the_resumable_searches_return_the_offline_functions_results(model):
    """modified_beam_search and greedy_search are one extend: the results of an explicit extend, bit for bit."""
    enc_out, enc_lens = _mixed_batch(model, 1, LENGTHS)
    joint, decoder = model.joint_network, model.decoder
    beam = BeamSearch(joint, decoder, _config("beam", "select", hat_blank_threshold=0.9), len(LENGTHS), CPU)
    beam.extend(enc_out, enc_lens)
    assert beam.nbest() == modified_beam_search(joint, decoder, enc_out, enc_lens, 4, nbest=3, max_sym_per_frame=3,
                                                hat_blank_threshold=0.9, row_plan="select")
    greedy = GreedySearch(joint, decoder, _config("greedy", "mask"), len(LENGTHS), CPU)
    greedy.extend(enc_out, enc_lens)
    assert greedy.best() == greedy_search(joint, decoder, enc_out, enc_lens, 3, row_plan="mask")


def test_espnets_search_does_not_stream_and_greedy_has_one_best(model):
    with pytest.raises(InputError, match="'search_type'.*greedy or beam.*'espnet'"):
        StreamingDecoder(model.joint_network, model.decoder, SearchConfig(search_type="espnet"), 2, CPU)
    decoder = StreamingDecoder(model.joint_network, model.decoder, SearchConfig(search_type="greedy"), 2, CPU)
    with pytest.raises(InputError, match="'nbest' must be 1"):
        decoder.nbest(2)


@pytest.mark.parametrize("search, plan", SEARCHES)
def test_a_chunk_of_the_wrong_batch_is_refused_with_its_shape(model, search, plan):
    decoder = StreamingDecoder(model.joint_network, model.decoder, _config(search, plan), 2, CPU)
    with pytest.raises(ValueError, match=r"a chunk of 2 streams must be \(B, C, De\), got \(3, 4, 32\)"):
        decoder.search.extend(torch.zeros(3, 4, 32), torch.tensor([4, 4, 4]))
