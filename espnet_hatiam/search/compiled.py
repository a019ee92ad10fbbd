"""Row plan compiled: the beam search of one stream as one compiled loop (Numba), for the CPU at any batch; greedy
search is the same loop with K = 1.

The selecting plan (:class:`~espnet_hatiam.search.beam_state.HostBeam`) pays about 37 PyTorch calls a round, most
of a round's time at the sizes of a beam of 4; here the same algorithm is one machine-code loop per stream, whose
time is its arithmetic (the joint's products, the LSTM steps) and a few scalar operations. Same rounds, top-K,
expansion beam, merge (exact comparison of label sequences, as prefix-tree nodes) and prediction store (a label
sequence computed once) as :class:`~espnet_hatiam.search.beam.BeamSearch` with the selecting plan; HAT-blank
thresholding frame by frame (a blank-certain frame costs K blank logits, no label projection), which is the
frame-by-frame thresholded search that the windowed one reproduces. Work that cannot change the top K is not done:
rows are evaluated best first, each HAT row's blank candidate offered before any labels; a row whose score is below
the K best candidates offered so far is not evaluated, a HAT row's labels (at most score + log P(not blank)) are not
projected when below them, and a new label sequence's LSTM step waits until its row is evaluated. IAM frame
skipping is decided in the loop, a frame at a time, from the projected frame (the IAM's blank logit: one dot
product), instead of a PyTorch pass before it. The products run in float32 through BLAS, the rest in float32 like
the tensors of the PyTorch plans: the hypotheses are theirs but where two candidates' scores are within float
rounding (tested against the selecting plan on random models).

What it runs: an eval-mode LSTM prediction network (ESPnet ``TransducerDecoder``, any number of layers), a tanh
joint (HAT or RNN-T), float32 on the CPU, no LM fusion (:meth:`SearchConfig.compiles`). Greedy search (K = 1:
the top-1 of V+1 is the most probable output, ties to blank; at most S labels a frame) gives the frame-looping
greedy search's path, and the frames its labels were emitted on.
"""

import math
import weakref
from typing import List, NamedTuple, Optional, Tuple

import numba
import numpy as np
import torch
from numba import types
from numba.typed import Dict

from espnet_hatiam.errors import InputError
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.frame_skip import blank_logit_bound
from espnet_hatiam.search.state import Hypothesis, PredictionNetwork, TransducerJoint, chunk_frames, lstm_step_weights

MAX_ENTRIES = 4096  # prediction store entries kept before a compaction (as the selecting plan's store)


class _Stream(NamedTuple):
    """A stream's search state between chunks (what :func:`_search` takes and returns)."""

    scores: np.ndarray  # (K,) float32, -inf: an empty slot
    nodes: np.ndarray  # (K,) each row's label sequence (prefix-tree node)
    pointer: np.ndarray  # (K,) each row's store entry (a pending row: its parent's)
    pending: np.ndarray  # (K,) a row's last label while its sequence's LSTM step waits (0: none)
    store_proj: np.ndarray  # (N, J) prediction store: W_p g of each stored sequence
    store_h: np.ndarray  # (N, L, H)
    store_c: np.ndarray  # (N, L, H)
    size: int  # store entries in use
    entries: Dict  # prefix-tree node -> store entry
    children: Dict  # node * (V+1) + label -> child node
    trie_parent: np.ndarray  # (nodes,) a node's parent
    trie_label: np.ndarray  # (nodes, 2) a node's last label and the frame it was first made on
    trie_size: int  # nodes made


class CompiledBeamSearch:
    """:class:`~espnet_hatiam.search.beam.BeamSearch`'s interface (``extend`` over chunks, ``nbest``) on the
    compiled loop: B streams, each its own beam, prediction store and prefix tree (numpy arrays and typed
    dictionaries held between chunks). Batching buys nothing here (a stream's round has no per-call cost to share),
    so the streams are searched one after another. The prediction store and the prefix tree's links are kept to the
    sequences in use (compacted at ``MAX_ENTRIES``); the tree's node arrays (16 bytes a sequence ever made) grow
    with the stream.

    Args:
        config: ``beam_size`` (greedy: 1), ``nbest``, ``max_sym_per_frame``, ``hat_blank_threshold``,
            ``expansion_beam``. batch: B streams. counters: as in ``BeamSearch``; ``frames_searched`` counts every
            frame (each is visited; a blank-certain one costs K blank logits), ``joint_evaluations`` the rows whose
            joint hidden was computed, ``label_projections`` the rows whose label logits were (fewer than the
            selecting plan's: rows and labels that cannot enter the top K are passed).
    """

    def __init__(self, joint: TransducerJoint, decoder: torch.nn.Module, config: SearchConfig, batch: int,
                 counters: Optional[SearchCounters] = None):
        config = config.for_joint(joint)
        self.config, self.joint, self.counters, self.batch = config, joint, counters, batch
        self.model, start = _model_arrays(joint, decoder)
        # with K = 1 a label can win only where P(blank) < 0.5 (HAT: P(label) <= 1 - P(blank)), as in label-looping greedy
        theta = config.hat_blank_threshold if config.beam_size > 1 else min(config.hat_blank_threshold, 0.5)
        self.bound = np.float32(blank_logit_bound(theta) if joint.is_factorized else math.inf)
        # IAM frame skipping, decided in the loop: a frame is dropped where the IAM's blank logit (HAT) or blank
        # log-prob (RNN-T) reaches this, i.e. P(blank) >= theta_IAM (iam_frame_skip's rule)
        iam = config.iam_blank_threshold
        self.iam_bound = np.float32(blank_logit_bound(iam) if joint.is_factorized
                                    else (math.inf if iam >= 1.0 else math.log(iam) if iam > 0 else -math.inf))
        self.streams = [_new_stream(config.beam_size, *start) for _ in range(batch)]
        self.received = [0] * batch  # frames of each stream searched: the first frame of its next chunk

    @torch.inference_mode()
    def extend(self, enc_out: torch.Tensor, enc_lens: torch.Tensor) -> None:
        """Search each stream's next ``enc_lens[b]`` frames (0 allowed) of the chunk ``enc_out (B, C, De)``."""
        if chunk_frames(enc_out, self.batch) == 0:
            return
        frames = self.joint.project_encoder(enc_out).float().numpy()  # (B, C, J)
        lens = enc_lens.tolist()
        config = self.config
        for b, stream in enumerate(self.streams):
            if lens[b] == 0:
                continue
            counts = np.zeros(4, dtype=np.int64)
            self.streams[b] = _Stream(*_search(np.ascontiguousarray(frames[b, : lens[b]]), *self.model, self.bound,
                                               self.iam_bound, config.max_sym_per_frame, float(config.expansion_beam),
                                               MAX_ENTRIES, self.received[b], counts, *stream))
            self.received[b] += lens[b] - int(counts[3])
            if self.counters is not None:
                self.counters.joint_evaluations[b] += int(counts[0])
                self.counters.label_projections[b] += int(counts[1])
                self.counters.frames_searched[b] += int(counts[2])
                self.counters.frames_kept[b] -= int(counts[3])

    def nbest(self, nbest: Optional[int] = None) -> List[List[Hypothesis]]:
        """Each stream's ``nbest`` (default ``config.nbest``) best hypotheses so far, best first; changes nothing."""
        n = self.config.nbest if nbest is None else nbest
        if n > self.config.beam_size:
            rule = "1 for greedy search" if self.config.beam_size == 1 else f"<= beam_size ({self.config.beam_size})"
            raise InputError(f"search option 'nbest' must be {rule}, got {n!r}")
        result = []
        for stream in self.streams:
            scores = stream.scores
            order = sorted((k for k in range(len(scores)) if scores[k] > -np.inf), key=lambda k: -scores[k])[:n]
            result.append([Hypothesis(_labels(int(stream.nodes[k]), stream.trie_parent, stream.trie_label),
                                      float(scores[k])) for k in order])
        return result

    def best(self) -> List[Hypothesis]:
        """Each stream's best hypothesis so far (greedy search: its path)."""
        return [nbest[0] for nbest in self.nbest(1)]

    @property
    def label_frames(self) -> List[List[int]]:
        """For each stream, the frame of its input (counted over its chunks) on which the prefix-tree node of each
        label of its best hypothesis was made: exactly where the path emitted it for greedy search (K = 1), the first
        hypothesis to make that sequence for a beam."""
        frames = []
        for stream in self.streams:
            best = int(np.argmax(stream.scores))
            frames.append(_labels(int(stream.nodes[best]), stream.trie_parent, stream.trie_label, column=1))
        return frames


_MODEL_ARRAYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # decoder -> (weights key, arrays)


def _model_arrays(joint: TransducerJoint, decoder: torch.nn.Module):
    """``(weights, start)``: the weights the loop reads, as float32 numpy arrays: the output layer's blank row
    ``(J,)``, its label rows and all its rows transposed, ``(J, V)`` and ``(J, V+1)``, and its bias ``(V+1,)``, the LSTM's token table ``(V+1, 4H)``, per-layer ``W_ih^T``, ``W_hh^T`` ``(L, H, 4H)`` (layer 0's input
    weights are in the table: zeros) and biases ``(L, 4H)``, ``W_p^T (H, J)`` and its bias ``(J,)`` (from
    ``project_decoder``), whether the joint is HAT; and the prediction network after the start symbol
    (``dec_proj (J,)``, ``h``, ``c (L, H)``). Made once per model, again when any of its weights change (as
    :func:`~espnet_hatiam.search.state.lstm_step_weights`)."""
    parameters = list(joint.parameters()) + list(decoder.parameters())
    key = (id(joint),) + tuple((p.data_ptr(), p._version) for p in parameters)
    cached = _MODEL_ARRAYS.get(decoder)
    if cached is not None and cached[0] == key:
        return cached[1]
    with torch.inference_mode():
        table, layers = lstm_step_weights(decoder)
        hidden = layers[0][1].size(0)
        w_ih = torch.stack([torch.zeros(hidden, 4 * hidden) if w is None else w for w, _, _ in layers])
        w_hh = torch.stack([w for _, w, _ in layers])
        bias = torch.stack([b for _, _, b in layers])
        weight, out_bias = joint.output_layer()
        dec_bias = joint.project_decoder(torch.zeros(1, hidden))  # W_p g + b as g (W_p^T) + b
        dec_w_t = joint.project_decoder(torch.eye(hidden)) - dec_bias
        dec_out, (h, c) = PredictionNetwork(decoder).initial(1, torch.device("cpu"))
        dec_proj = joint.project_decoder(dec_out)

    def array(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().float().cpu().numpy())

    weights = (array(weight[0]), array(weight[1:].t()), array(weight.t()), array(out_bias), array(table), array(w_ih),
               array(w_hh), array(bias), array(dec_w_t), array(dec_bias[0]), bool(joint.is_factorized))
    result = weights, (array(dec_proj[0]), array(h[:, 0]), array(c[:, 0]))
    _MODEL_ARRAYS[decoder] = key, result
    return result


def _new_stream(beam: int, dec_proj: np.ndarray, h: np.ndarray, c: np.ndarray) -> _Stream:
    """A stream's state before its first frame: slot 0 holds the empty sequence (score 0, store entry 0)."""
    scores = np.full(beam, -np.inf, dtype=np.float32)
    scores[0] = 0.0
    capacity = 64
    store_proj = np.zeros((capacity, dec_proj.shape[0]), dtype=np.float32)
    store_h = np.zeros((capacity,) + h.shape, dtype=np.float32)
    store_c = np.zeros((capacity,) + c.shape, dtype=np.float32)
    store_proj[0], store_h[0], store_c[0] = dec_proj, h, c
    entries, children = _new_tables()
    rows = np.zeros(beam, dtype=np.int64)
    return _Stream(scores, rows, rows.copy(), rows.copy(), store_proj, store_h, store_c, 1, entries, children,
                   np.zeros(capacity, dtype=np.int64), np.zeros((capacity, 2), dtype=np.int64), 1)


def warm_up() -> None:
    """Compile the loop now (Numba caches it on disk: the first search of a process then loads it in a fraction of a
    second instead of compiling it, about 15-30 s on a 2-core CPU); ``tools/install.sh`` calls it once."""
    J, V1, H = 4, 3, 2
    weights = (np.zeros(J, np.float32), np.zeros((J, V1 - 1), np.float32), np.zeros((J, V1), np.float32),
               np.zeros(V1, np.float32), np.zeros((V1, 4 * H), np.float32), np.zeros((1, H, 4 * H), np.float32),
               np.zeros((1, H, 4 * H), np.float32), np.zeros((1, 4 * H), np.float32), np.zeros((H, J), np.float32),
               np.zeros(J, np.float32), True)
    stream = _new_stream(2, np.zeros(J, np.float32), np.zeros((1, H), np.float32), np.zeros((1, H), np.float32))
    _search(np.zeros((3, J), np.float32), *weights, np.float32(math.inf), np.float32(math.inf), 2, 4.0, MAX_ENTRIES,
            0, np.zeros(4, dtype=np.int64), *stream)


def _labels(node: int, trie_parent: np.ndarray, trie_label: np.ndarray, column: int = 0) -> List[int]:
    """The labels of ``node``'s sequence, first to last (``column`` 1: the frames they were emitted on)."""
    labels = []
    while node != 0:
        labels.append(int(trie_label[node, column]))
        node = int(trie_parent[node])
    return labels[::-1]


@numba.njit(cache=True)
def _new_tables():
    """A stream's empty tables (made in compiled code: 60 times faster than from Python): label sequence (prefix-tree
    node) -> store entry, holding the empty sequence's entry 0; (node * (V+1) + label) -> child node."""
    entries = Dict.empty(key_type=types.int64, value_type=types.int64)
    entries[0] = 0
    return entries, Dict.empty(key_type=types.int64, value_type=types.int64)


@numba.njit(cache=True)
def _grow(array, size):
    """``array`` with room for at least ``size`` rows (doubling), its rows kept."""
    if size <= array.shape[0]:
        return array
    shape = (max(2 * array.shape[0], size),) + array.shape[1:]
    out = np.zeros(shape, dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


@numba.njit(cache=True)
def _log_softmax(x):
    m = x.max()
    return x - (m + np.float32(np.log(np.exp(x - m).sum())))


@numba.njit(cache=True)
def _log_sigmoid(x):
    """log sigmoid(x) of a float32 scalar, stable on both sides."""
    if x >= 0:
        return np.float32(-np.log1p(np.exp(-x)))
    return np.float32(x - np.log1p(np.exp(x)))


@numba.njit(cache=True, fastmath={"contract"})
def _tanh(x, out):
    """``out = tanh(x)`` (1-D float32), by Eigen's rational approximation (``ptanh_float``): within 3e-7 of libm's
    tanh, as PyTorch's vectorised one is, and several times faster than a libm call per element."""
    limit = np.float32(7.90531110763549805)
    for i in range(x.shape[0]):
        v = min(max(x[i], -limit), limit)
        v2 = v * v
        p = np.float32(-2.76076847742355e-16)
        p = p * v2 + np.float32(2.00018790482477e-13)
        p = p * v2 + np.float32(-8.60467152213735e-11)
        p = p * v2 + np.float32(5.12229709037114e-08)
        p = p * v2 + np.float32(1.48572235717979e-05)
        p = p * v2 + np.float32(6.37261928875436e-04)
        p = p * v2 + np.float32(4.89352455891786e-03)
        q = np.float32(1.19825839466702e-06)
        q = q * v2 + np.float32(1.18534705686654e-04)
        q = q * v2 + np.float32(2.26843463243900e-03)
        q = q * v2 + np.float32(4.89352518554385e-03)
        out[i] = p * v / q


@numba.njit(cache=True)
def _sigmoid(x, out):
    """``out = sigmoid(x) = (1 + tanh(x / 2)) / 2`` (1-D float32)."""
    _tanh(x * np.float32(0.5), out)
    for i in range(out.shape[0]):
        out[i] = np.float32(0.5) * (np.float32(1.0) + out[i])


@numba.njit(cache=True)
def _search(frames, w_blank, w_label_t, w_all_t, out_b, table, w_ih, w_hh, bias, dec_w_t, dec_b, hat, bound,
            iam_bound, max_sym, expansion_beam, max_entries, first_frame, counts, scores, nodes, pointer, pending,
            store_proj, store_h, store_c, size, entries, children, trie_parent, trie_label, trie_size):
    """Search ``frames (T, J)`` (projected encoder frames) from the stream's state; returns the new state.

    ``iam_bound``: a frame whose IAM blank logit (HAT; RNN-T: blank log-prob) is >= it is dropped; ``first_frame``:
    the stream's frames kept before (a node made on the n-th frame kept records first_frame + n); ``counts``: joint
    evaluations, label projections, frames searched and frames dropped are added to it.
    """
    K = scores.shape[0]
    V1 = w_all_t.shape[1]
    layers, H = w_hh.shape[0], w_hh.shape[1]
    neg_inf = np.float32(-np.inf)
    active = np.zeros(K, dtype=np.bool_)
    log_probs = np.full((K, V1), neg_inf, dtype=np.float32)
    top_val = np.empty(K, dtype=np.float32)
    top_idx = np.empty(K, dtype=np.int64)
    new_scores = np.empty(K, dtype=np.float64)  # a merge adds in float64, as the selecting plan's host floats
    new_nodes = np.empty(K, dtype=np.int64)
    new_pointer = np.empty(K, dtype=np.int64)
    new_active = np.empty(K, dtype=np.bool_)
    new_pending = np.empty(K, dtype=np.int64)
    order = np.empty(K, dtype=np.int64)  # the rows on the frame, best first
    kth = np.empty(K, dtype=np.float32)  # the K best candidate scores offered, best first
    hidden = np.empty((K, frames.shape[1]), dtype=np.float32)  # each row's joint hidden
    not_blank = np.empty(K, dtype=np.float32)  # a HAT row's log P(not blank)
    deferred = np.empty(K, dtype=np.int64)
    frame = first_frame  # the frame being searched, counted over the frames kept
    for t in range(frames.shape[0]):
        if iam_bound < np.inf:  # IAM frame skipping: the IAM is the joint on the frame alone
            _tanh(frames[t], hidden[0])
            if hat:
                iam_blank = np.dot(w_blank, hidden[0]) + out_b[0]
            else:
                iam_blank = _log_softmax(np.dot(hidden[0], w_all_t) + out_b)[0]
            if iam_blank >= iam_bound:
                counts[3] += 1
                continue
        counts[2] += 1
        for k in range(K):
            active[k] = scores[k] > neg_inf
        for s in range(max_sym):
            # expand, best row first: the V+1 log-probs of the rows on the frame; a row off it competes unchanged
            # (blank at no cost). ``kth`` holds the K best candidate scores offered so far: a row, or a HAT row's
            # labels (whose scores are at most score + log P(not blank)), that cannot beat it cannot enter the top K,
            # so is not evaluated (and a row's new sequence gets its LSTM step only when the row is evaluated)
            kth[:] = neg_inf
            n_rows = 0
            for k in range(K):
                log_probs[k, :] = neg_inf
                if scores[k] == neg_inf:
                    continue
                if not active[k]:
                    log_probs[k, 0] = 0.0
                    _offer(kth, scores[k])
                    continue
                i = n_rows
                while i > 0 and scores[order[i - 1]] < scores[k]:
                    order[i] = order[i - 1]
                    i -= 1
                order[i] = k
                n_rows += 1
            n_deferred = 0  # HAT rows whose labels wait: projected before a row's LSTM step, or at the end
            for o in range(n_rows):
                k = order[o]
                if scores[k] < kth[K - 1]:
                    continue
                if pending[k] != 0:
                    _project_labels(deferred, n_deferred, scores, not_blank, hidden, w_label_t, out_b, log_probs, kth,
                                    counts)
                    n_deferred = 0
                    if scores[k] < kth[K - 1]:
                        continue
                    store_proj, store_h, store_c, size = _store_sequence(
                        k, nodes, pointer, pending, table, w_ih, w_hh, bias, dec_w_t, dec_b, store_proj, store_h,
                        store_c, size, max_entries, entries, children, trie_parent, trie_size, layers, H)
                counts[0] += 1
                _tanh(frames[t] + store_proj[pointer[k]], hidden[k])
                if hat:
                    blank_logit = np.dot(w_blank, hidden[k]) + out_b[0]
                    log_probs[k, 0] = _log_sigmoid(blank_logit)
                    _offer(kth, scores[k] + log_probs[k, 0])
                    if blank_logit < bound:  # labels only where P(blank) < theta
                        not_blank[k] = _log_sigmoid(-blank_logit)
                        deferred[n_deferred] = k
                        n_deferred += 1
                else:
                    counts[1] += 1
                    log_probs[k, :] = _log_softmax(np.dot(hidden[k], w_all_t) + out_b)
                    for v in range(V1):
                        _offer(kth, scores[k] + log_probs[k, v])
            _project_labels(deferred, n_deferred, scores, not_blank, hidden, w_label_t, out_b, log_probs, kth, counts)
            # top-K of the K x (V+1) candidates, best first (ties: the lower flat index first)
            top_val[:] = neg_inf
            top_idx[:] = -1
            for k in range(K):
                base = scores[k]
                if base == neg_inf:
                    continue
                for v in range(V1):
                    value = base + log_probs[k, v]
                    if value == neg_inf or value <= top_val[K - 1]:
                        continue
                    i = K - 1
                    while i > 0 and top_val[i - 1] < value:
                        top_val[i] = top_val[i - 1]
                        top_idx[i] = top_idx[i - 1]
                        i -= 1
                    top_val[i] = value
                    top_idx[i] = k * V1 + v
            # merge: candidates with the same label sequence and the same frame position (log-sum-exp into the best)
            more = s + 1 < max_sym
            any_active = False
            for i in range(K):
                new_scores[i] = neg_inf
                new_active[i] = False
                new_pending[i] = 0
                if top_val[i] == neg_inf:
                    new_nodes[i] = 0
                    new_pointer[i] = 0
                    continue
                parent, token = top_idx[i] // V1, top_idx[i] % V1
                seq = nodes[parent]
                if token != 0:
                    key = seq * V1 + token
                    if key in children:
                        seq = children[key]
                    else:
                        if trie_size >= trie_parent.shape[0]:
                            trie_parent = _grow(trie_parent, trie_size + 1)
                            trie_label = _grow(trie_label, trie_size + 1)
                        trie_parent[trie_size] = nodes[parent]
                        trie_label[trie_size, 0] = token
                        trie_label[trie_size, 1] = frame
                        children[key] = trie_size
                        seq = trie_size
                        trie_size += 1
                stays = token != 0 and more and np.float64(top_val[i]) >= np.float64(top_val[0]) - expansion_beam
                new_nodes[i] = seq
                new_pointer[i] = pointer[parent]
                new_pending[i] = pending[parent] if token == 0 else 0
                first = -1
                for j in range(i):
                    if new_scores[j] > neg_inf and new_nodes[j] == seq and new_active[j] == stays:
                        first = j
                        break
                if first >= 0:
                    high = max(new_scores[first], np.float64(top_val[i]))
                    low = min(new_scores[first], np.float64(top_val[i]))
                    new_scores[first] = high + math.log1p(math.exp(low - high))
                    continue
                new_scores[i] = top_val[i]
                new_active[i] = stays
                any_active = any_active or stays
                if token != 0:  # its state: the store's, or the parent's entry and the token (pending)
                    if seq in entries:
                        new_pointer[i] = entries[seq]
                    else:
                        new_pending[i] = token
            scores[:] = new_scores.astype(np.float32)
            nodes[:] = new_nodes
            pointer[:] = new_pointer
            pending[:] = new_pending
            active[:] = new_active
            if not any_active:
                break
        frame += 1
    return (scores, nodes, pointer, pending, store_proj, store_h, store_c, size, entries, children, trie_parent,
            trie_label, trie_size)


@numba.njit(cache=True)
def _project_labels(deferred, n_deferred, scores, not_blank, hidden, w_label_t, out_b, log_probs, kth, counts):
    """The label log-probs of the HAT rows ``deferred[:n_deferred]`` (best first) whose labels can still reach the top
    K (a label's score is at most the row's score + log P(not blank)); the others' stay -inf."""
    for i in range(n_deferred):
        k = deferred[i]
        if scores[k] + not_blank[k] < kth[kth.shape[0] - 1]:
            continue
        counts[1] += 1
        log_probs[k, 1:] = _log_softmax(np.dot(hidden[k], w_label_t) + out_b[1:]) + not_blank[k]
        for v in range(1, log_probs.shape[1]):
            _offer(kth, scores[k] + log_probs[k, v])


@numba.njit(cache=True)
def _offer(kth, value):
    """Insert a candidate score into ``kth``, the K best offered so far (descending)."""
    K = kth.shape[0]
    if value <= kth[K - 1]:
        return
    i = K - 1
    while i > 0 and kth[i - 1] < value:
        kth[i] = kth[i - 1]
        i -= 1
    kth[i] = value


@numba.njit(cache=True)
def _store_sequence(k, nodes, pointer, pending, table, w_ih, w_hh, bias, dec_w_t, dec_b, store_proj, store_h, store_c,
                    size, max_entries, entries, children, trie_parent, trie_size, layers, H):
    """Row ``k``'s pending sequence stored (its LSTM step from its parent's entry, unless another row stored it
    first) and pointed at; returns the store (grown or compacted) and its size."""
    node = nodes[k]
    if node not in entries:
        if size + 1 > max_entries:
            size = _compact(pointer, nodes, store_proj, store_h, store_c, entries, children, trie_parent, trie_size)
        if size + 1 > store_proj.shape[0]:
            store_proj = _grow(store_proj, size + 1)
            store_h = _grow(store_h, size + 1)
            store_c = _grow(store_c, size + 1)
        _lstm_step(pointer[k : k + 1], pending[k : k + 1], table, w_ih, w_hh, bias, dec_w_t, dec_b, store_proj,
                   store_h, store_c, size, layers, H)
        entries[node] = size
        size += 1
    pointer[k] = entries[node]
    pending[k] = 0
    return store_proj, store_h, store_c, size


@numba.njit(cache=True)
def _lstm_step(rows, tokens, table, w_ih, w_hh, bias, dec_w_t, dec_b, store_proj, store_h, store_c, first, layers,
               H):
    """Store entries ``first ..``: the prediction network after ``tokens (N,)`` from the entries ``rows (N,)``
    (the arithmetic of :meth:`PredictionNetwork.step`), and their projections W_p g."""
    gate_i = np.empty(H, dtype=np.float32)
    gate_f = np.empty(H, dtype=np.float32)
    gate_g = np.empty(H, dtype=np.float32)
    gate_o = np.empty(H, dtype=np.float32)
    for i in range(rows.shape[0]):  # a row at a time: OpenBLAS's small-M matrix products cost more than M vector ones
        x = store_h[rows[i], 0]  # (unused by layer 0, whose input gates are the token's row of the table)
        for layer in range(layers):
            gates = np.dot(store_h[rows[i], layer], w_hh[layer])  # (4H,): i, f, g, o
            gates += table[tokens[i]] if layer == 0 else np.dot(x, w_ih[layer]) + bias[layer]
            _sigmoid(gates[:H], gate_i)
            _sigmoid(gates[H:2 * H], gate_f)
            _tanh(gates[2 * H:3 * H], gate_g)
            _sigmoid(gates[3 * H:], gate_o)
            c = gate_f * store_c[rows[i], layer] + gate_i * gate_g
            _tanh(c, gate_g)
            x = gate_o * gate_g
            store_c[first + i, layer] = c
            store_h[first + i, layer] = x
        store_proj[first + i] = np.dot(x, dec_w_t) + dec_b


@numba.njit(cache=True)
def _compact(pointer, nodes, store_proj, store_h, store_c, entries, children, trie_parent, trie_size):
    """Keep only the store entries ``pointer`` holds (renumbered in place; a row that emitted a sequence not yet
    stored points at its parent's entry), the entries of the rows' stored sequences, and the prefix-tree links of
    the rows' sequences and their prefixes. Returns the store's new size."""
    renumber = Dict.empty(key_type=types.int64, value_type=types.int64)
    kept_entries = np.unique(pointer)  # ascending: each entry moves down, never over one still to be read
    for new in range(kept_entries.shape[0]):
        old = kept_entries[new]
        if new != old:
            store_proj[new] = store_proj[old]
            store_h[new] = store_h[old]
            store_c[new] = store_c[old]
        renumber[old] = new
    for k in range(pointer.shape[0]):
        pointer[k] = renumber[pointer[k]]
    kept = Dict.empty(key_type=types.int64, value_type=types.int64)
    for seq in list(entries.keys()):
        old = entries[seq]
        del entries[seq]
        if old in renumber:
            kept[seq] = renumber[old]
    for seq in kept:
        entries[seq] = kept[seq]
    live = np.zeros(trie_size, dtype=np.bool_)
    for k in range(nodes.shape[0]):
        node = nodes[k]
        while node != 0 and not live[node]:
            live[node] = True
            node = trie_parent[node]
    for seq in entries:
        node = seq
        while node != 0 and not live[node]:
            live[node] = True
            node = trie_parent[node]
    for key in list(children.keys()):
        if not live[children[key]]:
            del children[key]
    return len(renumber)
