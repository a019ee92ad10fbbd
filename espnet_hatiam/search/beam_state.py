"""What a batched search carries between rounds: the encoder frames it reads and its beam of hypotheses.

:class:`EncodedFrames` looks up projected encoder frames at per-utterance frame pointers.
:class:`BeamState` holds B x K hypotheses as rows r = b*K + k (greedy search: K = 1): the scores
and the rows' prediction-network (and LM) state on the device, ``reorder`` (rows take their
parents' hypotheses) and ``advance`` (the prediction network steps on the rows that emitted).
Its two row plans differ in where the labels live and how a round's top-K becomes the next beam
(:meth:`choose`): :class:`HostBeam` (row plan select) reads the K best candidates of each
utterance and keeps the label sequences (as nodes of a prefix tree), the merge and the choice of rows on the host, a few
plain Python operations on K values instead of dozens of tensor calls; :class:`MaskedBeam` (row
plan mask) keeps everything on the device, with masks, and never waits for it in the frame loop.
"""

import math
from typing import List, Optional, Tuple

import torch

from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import PredictionNetwork, State, TransducerJoint

NEG_INF = float("-inf")


class EncodedFrames:
    """Projected encoder frames W_e f_t + b of B utterances (or one chunk of B streams), read at frame pointers.

    ``enc_out (B, T, De)`` is projected once and padded with ``pad`` frames, flattened to
    ``(B * (T + pad), J)``, so that a window of ``pad`` frames from any pointer < T is one index.
    The frames at and beyond ``enc_lens`` (not received yet, in a stream) are not valid.
    """

    def __init__(self, joint: TransducerJoint, enc_out: torch.Tensor, enc_lens: torch.Tensor, pad: int):
        batch, frames = enc_out.shape[:2]
        proj = joint.project_encoder(enc_out)
        self.flat = torch.nn.functional.pad(proj, (0, 0, 0, pad)).view(batch * (frames + pad), -1)
        self.start = torch.arange(batch, device=enc_out.device).unsqueeze(1) * (frames + pad)  # (B, 1)
        self.lens = enc_lens.to(enc_out.device).view(batch, 1)  # (B, 1)
        self.window_start = self.start + torch.arange(pad, device=enc_out.device)  # (B, W)
        self.ends = self.start + self.lens  # (B, 1): each utterance's end in the flat frames

    def window(self, t: torch.Tensor):
        """Frames t .. t+W-1 of each utterance: ``(frames (B, W, J), valid (B, W))`` for pointers ``t (B, 1)``."""
        index = self.window_start + t
        return self.flat[index], index < self.ends

    def at(self, t: torch.Tensor) -> torch.Tensor:
        """Frame t of each utterance, ``(B, 1, J)`` for pointers ``t (B, 1)``: it broadcasts over the
        utterance's K rows ``(B, K, J)`` (no copy per row)."""
        return self.flat[self.start + t]


class BeamState:
    """B utterances x K hypotheses as R = B*K rows (row b*K + k: utterance b's slot k).

    scores ``(R, 1)`` (-inf: empty slot); active ``(R, 1)``: the rows still on the current frame;
    dec_proj ``(R, J)`` the projected prediction-network output W_p g; state the prediction
    network's ``(layers, R, H)``; with LM fusion, lm_state and bonus ``(R, V)`` (label bonuses).
    """

    def __init__(self, joint: TransducerJoint, prediction: PredictionNetwork, fusion: Optional[RNNLMFusion],
                 batch: int, beam: int, device: torch.device):
        self.joint, self.prediction, self.fusion, self.device = joint, prediction, fusion, device
        self.batch, self.beam, self.rows, self.vocab = batch, beam, batch * beam, joint.vocab_size
        dec_out, self.state = prediction.initial(self.rows, device)
        self.dec_proj = joint.project_decoder(dec_out)
        scores = torch.full((batch, beam), NEG_INF, device=device)
        scores[:, 0] = 0.0
        self.scores = scores.view(self.rows, 1)
        self.active = torch.zeros(self.rows, 1, dtype=torch.bool, device=device)
        self.all_active = False  # known on the host: every row is on the frame (no mask needed)
        self.lm_state = self.bonus = None
        if fusion is not None:
            lm_log_probs, self.lm_state = fusion.initial(self.rows, device)
            self.bonus = fusion.bonus(lm_log_probs, self.dec_proj)

    def reorder(self, source: torch.Tensor) -> None:
        """Row r takes row ``source[r]``'s state ``(R,)``."""
        self.dec_proj = self.dec_proj.index_select(0, source)
        self.state = _rows(self.state, source)
        if self.bonus is not None:
            self.bonus = self.bonus.index_select(0, source)
            self.lm_state = _rows(self.lm_state, source)

    def step(self, tokens: torch.Tensor, state: State, lm_state: Optional[State]):
        """The prediction network (and LM) after ``tokens (N,)`` from ``state`` (and ``lm_state``):
        ``(dec_proj (N, J), new state, bonus (N, V) or None, new LM state or None)``."""
        out, new_state = self.prediction.step(tokens, state)
        dec_proj = self.joint.project_decoder(out)
        if self.fusion is None:
            return dec_proj, new_state, None, None
        lm_log_probs, new_lm_state = self.fusion.step(tokens, lm_state)
        return dec_proj, new_state, self.fusion.bonus(lm_log_probs, dec_proj), new_lm_state

    def advance(self, token: torch.Tensor, rows: Optional[torch.Tensor] = None,
                stepping: Optional[torch.Tensor] = None) -> None:
        """The rows that emitted ``token`` step their prediction network (and LM).

        Either ``rows (M,)`` with ``token (M,)``: step those rows only; or ``stepping (R, 1)`` with
        ``token (R, 1)``: step every row and keep the stepping rows' results (no host synchronisation).
        """
        tokens = token.view(-1)
        state, lm_state = self.state, self.lm_state
        if rows is not None:
            state, lm_state = _rows(state, rows), None if lm_state is None else _rows(lm_state, rows)
        dec_proj, new_state, bonus, new_lm_state = self.step(tokens, state, lm_state)
        if rows is not None:
            self.dec_proj.index_copy_(0, rows, dec_proj)
            _copy_rows(self.state, rows, new_state)
            if self.fusion is not None:
                self.bonus.index_copy_(0, rows, bonus)
                _copy_rows(self.lm_state, rows, new_lm_state)
            return
        self.dec_proj = torch.where(stepping, dec_proj, self.dec_proj)
        self.state = _where_rows(stepping, new_state, self.state)
        if self.fusion is not None:
            self.bonus = torch.where(stepping, bonus, self.bonus)
            self.lm_state = _where_rows(stepping, new_lm_state, self.lm_state)


class HostBeam(BeamState):
    """Row plan select: label sequences on the host, the round's choice made there.

    Each row holds its label sequence as a node of a :class:`LabelTrie`: extending a sequence by
    a label is one dictionary lookup and two sequences are equal when their nodes are, however
    long they are (a long recording's hypotheses hold thousands of labels). The prediction
    network's (and LM's) results live in a :class:`PredictionStore`, one entry per label
    sequence computed, and each row points at its sequence's entry: a reorder is a list
    permutation, and a sequence computed before (another alignment of the same labels, pruned and
    found again: about 40 % of a beam of 4's steps on the demo model) is looked up, not computed again, as
    ESPnet's searches cache their decoder outputs by label sequence.
    """

    def __init__(self, *args):
        super().__init__(*args)
        self.trie = LabelTrie()
        self.nodes: List[int] = [LabelTrie.EMPTY] * self.rows  # each row's label sequence
        self.finite = [k == 0 for _ in range(self.batch) for k in range(self.beam)]
        self.emitted = False  # a hypothesis kept in the beam emitted on the current frame
        self.masks = {}  # active-row patterns -> (R, 1) bool tensors
        first = torch.zeros(1, dtype=torch.long, device=self.device)
        self.store = PredictionStore(self.dec_proj[:1], _rows(self.state, first),
                                     None if self.bonus is None else self.bonus[:1],
                                     None if self.lm_state is None else _rows(self.lm_state, first))
        self.state = self.lm_state = None  # the rows' states are the store's
        self.pointer = [0] * self.rows  # each row's store entry
        self.entries = {LabelTrie.EMPTY: 0}  # label sequence (trie node) -> its store entry

    def start_frame(self, at_frame: torch.Tensor) -> List[bool]:
        """Rows on a frame: the finite slots of the utterances ``at_frame (B, 1)``; returns them."""
        at = [a for a, in at_frame.tolist()]
        self.emitted = False
        active = [at[r // self.beam] and self.finite[r] for r in range(self.rows)]
        self._set_active(active)
        return at

    def _set_active(self, active: List[bool]) -> None:
        self.all_active = all(active)
        key = tuple(active)  # a beam has few patterns: each (R, 1) mask is made once (and never written)
        self.active = self.masks.get(key)
        if self.active is None:
            if len(self.masks) >= 256:
                self.masks.clear()
            self.active = self.masks[key] = torch.tensor(active, device=self.device).view(-1, 1)

    def choose(self, top: torch.Tensor, index: torch.Tensor, more_rounds: bool, expansion_beam: float) -> bool:
        """The next beam from each utterance's top-K candidates ``(B, K)`` (flat index parent * (V+1) + token).

        A label keeps a candidate on the frame while ``more_rounds`` and it is within ``expansion_beam``
        of the utterance's best; candidates with the same label sequence and frame position merge
        (log-sum-exp into the best). Returns whether any row is still on the frame.
        """
        K, V1, child = self.beam, self.vocab, self.trie.child
        source, scores, nodes, active, step_rows, step_tokens = [], [], [], [], [], []
        merged = False
        for b, (values, indices) in enumerate(zip(top.tolist(), index.tolist())):
            groups = {}  # (sequence, stays) -> its first row
            for value, i in zip(values, indices):
                parent, token = b * K + i // V1, i % V1
                row = len(source)
                source.append(parent)
                if value == NEG_INF:  # an empty slot
                    nodes.append(self.nodes[parent])
                    scores.append(NEG_INF)
                    active.append(False)
                    continue
                seq = child(self.nodes[parent], token) if token else self.nodes[parent]
                stays = bool(token) and more_rounds and value >= values[0] - expansion_beam
                nodes.append(seq)
                first = groups.setdefault((seq, stays), row)
                if first != row:
                    scores[first] = _log_add_exp(scores[first], value)
                    merged = True
                    scores.append(NEG_INF)
                    active.append(False)
                    continue
                scores.append(value)
                active.append(stays)
                if token:
                    step_rows.append(row)
                    step_tokens.append(token)
        device = self.device
        self.nodes, self.finite = nodes, [v > NEG_INF for v in scores]
        # without a merge the new scores are the top-K values in order: no copy from the host
        self.scores = torch.tensor(scores, device=device).view(-1, 1) if merged else top.view(-1, 1)
        pointer = [self.pointer[p] for p in source]
        if step_rows:
            self.emitted = True
            self._step(pointer, step_rows, step_tokens)
        if pointer != self.pointer:
            self.pointer = pointer
            index = torch.tensor(pointer, device=device)
            self.dec_proj = self.store.dec_proj.index_select(0, index)
            if self.fusion is not None:
                self.bonus = self.store.bonus.index_select(0, index)
        self._set_active(active)
        return any(active)

    def _step(self, pointer: List[int], step_rows: List[int], step_tokens: List[int]) -> None:
        """Point the rows that emitted at their new sequences' entries, computing the sequences not in the store."""
        missing = []
        for row in step_rows:
            entry = self.entries.get(self.nodes[row])
            if entry is None:
                missing.append(row)
            else:
                pointer[row] = entry
        if missing:
            if self.store.full(len(missing)):
                self._compact(pointer)  # renumbers pointer (a missing row still points at its parent)
            new = {}  # sequence -> (parent entry, token): each computed once
            for row, token in zip(step_rows, step_tokens):
                if self.nodes[row] not in self.entries:
                    new.setdefault(self.nodes[row], (pointer[row], token))
            parents, tokens = torch.tensor(list(zip(*new.values())), device=self.device)
            state, lm_state = self.store.states(parents)
            first = self.store.add(*self.step(tokens, state, lm_state))
            for i, seq in enumerate(new):
                self.entries[seq] = first + i
            for row in step_rows:
                pointer[row] = self.entries[self.nodes[row]]

    def _compact(self, pointer: List[int]) -> None:
        """Keep only the store entries the rows point at (``pointer`` is renumbered in place), and only the
        trie nodes of the rows' sequences, of the sequences still stored and of their prefixes."""
        kept = sorted(set(pointer))
        renumber = {old: new for new, old in enumerate(kept)}
        self.store.keep(torch.tensor(kept, device=self.device))
        self.entries = {seq: renumber[e] for seq, e in self.entries.items() if e in renumber}
        pointer[:] = [renumber[e] for e in pointer]
        self.pointer = None  # renumbered: the rows' dec_proj must be read again
        self.trie.prune(set(self.nodes) | set(self.entries))

    def nbest(self, nbest: int) -> List[List[Tuple[List[int], float]]]:
        """The ``nbest`` best ``(labels, score)`` of each utterance, best first."""
        scores = self.scores.view(-1).tolist()
        return [[(self.trie.labels(self.nodes[r]), scores[r])
                 for r in sorted(range(b * self.beam, (b + 1) * self.beam), key=lambda r: -scores[r])[:nbest]
                 if scores[r] > NEG_INF] for b in range(self.batch)]


class LabelTrie:
    """Label sequences as the nodes of a prefix tree, one node per sequence (node :attr:`EMPTY`: no label).

    :meth:`child` extends a sequence by a label (one dictionary lookup, a new node the first time),
    so sequences are equal exactly when their nodes are; :meth:`labels` reads a node's sequence
    back. :meth:`prune` drops the nodes that are neither kept nor a prefix of a kept one: a
    sequence made again after its node was dropped gets a new node, which no kept node can equal
    (a kept sequence's prefixes are kept with it).
    """

    EMPTY = 0

    def __init__(self):
        self.parent = {}  # node -> (its prefix's node, its last label)
        self.children = {}  # (node, label) -> node
        self.next = 1

    def child(self, node: int, label: int) -> int:
        """The node of ``node``'s sequence followed by ``label``."""
        key = (node, label)
        found = self.children.get(key)
        if found is None:
            found = self.children[key] = self.next
            self.parent[found] = key
            self.next += 1
        return found

    def labels(self, node: int) -> List[int]:
        """The labels of ``node``'s sequence, first to last."""
        labels = []
        while node != self.EMPTY:
            node, label = self.parent[node]
            labels.append(label)
        return labels[::-1]

    def prune(self, keep) -> None:
        """Keep the nodes ``keep`` and their prefixes; drop the others."""
        kept = set()
        for node in keep:
            while node != self.EMPTY and node not in kept:
                kept.add(node)
                node = self.parent[node][0]
        self.parent = {node: self.parent[node] for node in kept}
        self.children = {key: node for key, node in self.children.items() if node in kept}

    def __len__(self) -> int:
        """Nodes held, the empty sequence's included."""
        return len(self.parent) + 1


class MaskedBeam(BeamState):
    """Row plan mask: labels ``(R, L)`` zero beyond lengths ``(R, 1)``, the round's choice in tensors."""

    def __init__(self, *args, max_labels: int = 1):
        super().__init__(*args)
        device = self.device
        self.labels = torch.zeros(self.rows, max_labels, dtype=torch.long, device=device)
        self.lengths = torch.zeros(self.rows, 1, dtype=torch.long, device=device)
        slots = torch.arange(self.beam, device=device)
        self.later_slot = slots.view(-1, 1) > slots  # (K, K): slot i after slot j
        self.first_row = (torch.arange(self.batch, device=device) * self.beam).view(-1, 1)
        self.width = 0  # labels a row may hold: one more each round
        self.emitted = True  # unknown on the host

    def reserve(self, rounds: int) -> None:
        """Room in ``labels`` for ``rounds`` more rounds (a chunk of T frames: T * S).

        Before a later chunk the buffer is first cut to the longest hypothesis (one read of the
        lengths, outside the frame loop), so a stream's buffer holds its labels, not its rounds.
        """
        if self.width:
            self.width = int(self.lengths.max())
        size = self.width + rounds + 1
        if size != self.labels.size(1):
            labels = self.labels.new_zeros(self.rows, size)
            labels[:, : self.width] = self.labels[:, : self.width]
            self.labels = labels

    def start_frame(self, at_frame: torch.Tensor) -> None:
        """Rows on a frame: the finite slots of the utterances ``at_frame (B, 1)``."""
        self.active = at_frame.repeat_interleave(self.beam, 0) & (self.scores > NEG_INF)

    def choose(self, top: torch.Tensor, index: torch.Tensor, more_rounds: bool, expansion_beam: float) -> bool:
        """As :meth:`HostBeam.choose`, on the device (exact comparison of the label sequences); returns True."""
        rows, V1 = self.rows, self.vocab
        self.width = min(self.labels.size(1), self.width + 1)  # a round adds at most one label
        parent, token = index // V1, (index % V1).view(rows, 1)
        emitted = token != 0
        stays = emitted if more_rounds else torch.zeros_like(emitted)
        if more_rounds and expansion_beam != math.inf:  # far below the best: no more rounds on this frame
            stays = stays & (top >= top[:, :1] - expansion_beam).view(rows, 1)
        source = (parent + self.first_row).view(rows)
        labels = self.labels[:, : self.width]
        labels.copy_(labels.index_select(0, source))
        self.lengths = self.lengths.index_select(0, source)
        labels.scatter_(1, self.lengths, token)
        self.lengths += emitted
        self.scores, kept = merge_equal_sequences(top, labels.view(self.batch, self.beam, -1),
                                                  stays.view(self.batch, self.beam), self.later_slot)
        self.reorder(source)
        self.advance(token, stepping=kept & emitted)
        self.active = stays & kept
        return True

    def nbest(self, nbest: int) -> List[List[Tuple[List[int], float]]]:
        """The ``nbest`` best ``(labels, score)`` of each utterance, best first."""
        scores = self.scores.view(self.batch, self.beam).cpu()
        labels, lengths = self.labels.cpu(), self.lengths.view(-1).tolist()
        result = []
        for b in range(self.batch):
            best = scores[b].topk(nbest)
            result.append([(labels[b * self.beam + k, : lengths[b * self.beam + k]].tolist(), score)
                           for score, k in zip(best.values.tolist(), best.indices.tolist()) if score > NEG_INF])
        return result


class PredictionStore:
    """Prediction-network (and LM) results of N label sequences, one entry each, with spare room:
    dec_proj ``(N, J)``, state ``(layers, N, H)`` pairs, bonus ``(N, V)`` and LM state with LM fusion.

    Entries are added in blocks (:meth:`add`) and read by index (:meth:`states`, and ``dec_proj`` /
    ``bonus`` rows); at ``max_entries`` the owner keeps only the entries in use (:meth:`keep`), so a
    long stream's store stays bounded.
    """

    def __init__(self, dec_proj: torch.Tensor, state: State, bonus: Optional[torch.Tensor],
                 lm_state: Optional[State], max_entries: int = 4096):
        self.size, self.max_entries = 0, max_entries
        self.dec_proj, self.state, self.bonus, self.lm_state = dec_proj[:0], _rows_empty(state), None, None
        if bonus is not None:
            self.bonus, self.lm_state = bonus[:0], _rows_empty(lm_state)
        self.capacity = 0
        self.add(dec_proj, state, bonus, lm_state)

    def full(self, count: int) -> bool:
        """Whether ``count`` more entries would pass ``max_entries``."""
        return self.size + count > self.max_entries

    def states(self, index: torch.Tensor) -> Tuple[State, Optional[State]]:
        """The prediction-network (and LM) states of entries ``index (M,)``."""
        return _rows(self.state, index), None if self.lm_state is None else _rows(self.lm_state, index)

    def add(self, dec_proj: torch.Tensor, state: State, bonus: Optional[torch.Tensor],
            lm_state: Optional[State]) -> int:
        """Append M entries; returns the first one's index."""
        count, first = dec_proj.size(0), self.size
        if first + count > self.capacity:
            self._resize(max(2 * self.capacity, first + count, 64))
        end = first + count
        self.dec_proj[first:end] = dec_proj
        _write_rows(self.state, first, end, state)
        if bonus is not None:
            self.bonus[first:end] = bonus
            _write_rows(self.lm_state, first, end, lm_state)
        self.size = end
        return first

    def keep(self, index: torch.Tensor) -> None:
        """Keep entries ``index (M,)``, renumbered 0..M-1 in that order."""
        self.dec_proj[: index.numel()] = self.dec_proj.index_select(0, index)
        _write_rows(self.state, 0, index.numel(), _rows(self.state, index))
        if self.bonus is not None:
            self.bonus[: index.numel()] = self.bonus.index_select(0, index)
            _write_rows(self.lm_state, 0, index.numel(), _rows(self.lm_state, index))
        self.size = index.numel()

    def _resize(self, capacity: int) -> None:
        def grown(t: Optional[torch.Tensor], dim: int) -> Optional[torch.Tensor]:
            if t is None:
                return None
            shape = list(t.shape)
            shape[dim] = capacity
            out = t.new_empty(shape)
            out.narrow(dim, 0, self.size).copy_(t.narrow(dim, 0, self.size))
            return out

        self.dec_proj = grown(self.dec_proj, 0)
        self.state = tuple(grown(t, 1) for t in self.state)
        if self.bonus is not None:
            self.bonus = grown(self.bonus, 0)
            self.lm_state = tuple(grown(t, 1) for t in self.lm_state)
        self.capacity = capacity


def merge_equal_sequences(scores: torch.Tensor, labels: torch.Tensor, active: torch.Tensor,
                          later_slot: torch.Tensor):
    """Merge slots of an utterance that hold the same label sequence at the same frame position.

    ``scores (B, K)`` sorted descending per utterance, ``labels (B, K, L)`` zero-padded,
    ``active (B, K)`` (still on the current frame), ``later_slot (K, K)`` (i > j). The first (best)
    slot of each group gets the log-sum-exp of the group; the others become -inf. Sequences are
    compared exactly, element by element. Returns ``(merged scores (B*K, 1), kept (B*K, 1))``:
    kept, the finite first slots of the groups.
    """
    same = (labels.unsqueeze(2) == labels.unsqueeze(1)).all(-1) & (active.unsqueeze(2) == active.unsqueeze(1))
    repeated = (same & later_slot).any(-1)  # (B, K): an earlier slot holds the same hypothesis
    merged = torch.logsumexp(scores.unsqueeze(1).masked_fill(~same, NEG_INF), -1).masked_fill_(repeated, NEG_INF)
    merged = merged.view(-1, 1)
    return merged, merged > NEG_INF


def _log_add_exp(a: float, b: float) -> float:
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))


def _rows(state: State, index: torch.Tensor) -> State:
    """Rows ``index`` of a ``(layers, R, H)`` state."""
    h, c = state
    return h.index_select(1, index), None if c is None else c.index_select(1, index)


def _copy_rows(state: State, index: torch.Tensor, new: State) -> None:
    """Write ``new`` into rows ``index`` of ``state`` in place."""
    for old, value in zip(state, new):
        if old is not None:
            old.index_copy_(1, index, value)


def _rows_empty(state: State) -> State:
    """A ``(layers, 0, H)`` state like ``state``."""
    return tuple(None if t is None else t[:, :0] for t in state)


def _write_rows(state: State, start: int, end: int, value: State) -> None:
    """Write ``value`` into rows ``start:end`` of a ``(layers, N, H)`` state in place."""
    for old, new in zip(state, value):
        if old is not None:
            old[:, start:end] = new


def _where_rows(keep: torch.Tensor, new: State, old: State) -> State:
    """``new`` on the rows ``keep (R, 1)``, ``old`` elsewhere."""
    return tuple(None if n is None else torch.where(keep, n, o) for n, o in zip(new, old))
