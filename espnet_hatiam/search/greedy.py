"""Batched label-looping greedy transducer search (NeMo, arXiv 2406.06220), exact for HAT:
:class:`GreedySearch` over a stream's chunks of encoder frames, :func:`greedy_search` over whole utterances."""

import dataclasses
import math
from typing import List, Optional

import torch

from espnet_hatiam.errors import InputError
from espnet_hatiam.search.beam_state import BeamState, EncodedFrames
from espnet_hatiam.search.compiled import CompiledBeamSearch
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.frame_skip import WINDOW, blank_certain_run, blank_logit_bound, iam_frame_skip
from espnet_hatiam.search.state import Hypothesis, PredictionNetwork, TransducerJoint, chunk_frames


@torch.inference_mode()
def greedy_search(
    joint: TransducerJoint,
    decoder: torch.nn.Module,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    max_sym_per_frame: int = SearchConfig.max_sym_per_frame,
    hat_blank_threshold: float = 1.0,
    counters: Optional[SearchCounters] = None,
    frame_labels: Optional[torch.Tensor] = None,
    row_plan: str = SearchConfig.row_plan,
) -> List[Hypothesis]:
    """Greedy search over a batch of utterances, looping over labels rather than frames.

    The result of the frame-looping greedy search: at each frame the most probable output (ties
    to blank), after a label the same frame again, at most S = ``max_sym_per_frame`` labels a
    frame; with ``hat_blank_threshold`` theta, blank wherever P(blank) >= theta. With HAT,
    P(k) <= 1 - P(blank) for every label k, so a label can win only where P(blank) < 0.5 (and
    < theta): each step computes, for each utterance's current state, the blank logits of the
    next W frames (one product), passes the leading frames where no label can win with their
    blank log-probs added (:func:`~espnet_hatiam.search.frame_skip.blank_certain_run`), projects
    the labels at the first frame where one can, and emits there or moves on. The prediction
    network runs once per emitted label. For the RNN-T joint (no separate blank) W = 1: every
    frame is projected. Each utterance has its own frame pointer; ``row_plan`` as in
    :func:`~espnet_hatiam.search.beam.modified_beam_search` (the masked plan runs T x S steps; the compiled plan
    is the compiled beam search with K = 1, frame by frame: the same path, up to float rounding).
    One :meth:`GreedySearch.extend` over all the frames.

    Args:
        joint: HAT or RNN-T joint network; decoder: ESPnet ``TransducerDecoder``.
        enc_out: ``(B, T, De)``; enc_lens: ``(B,)``.
        counters: if given, ``joint_evaluations`` (window frames whose blank logit was computed),
            ``label_projections`` and ``frames_searched`` (frames labels were projected on) are added to it; the
            compiled plan counts as its beam search does (a joint evaluation per row and round, every frame searched).
        frame_labels: if given, a ``(B, T)`` integer tensor (any device), in input order, to which the
            number of labels the path emitted on each frame is added.

    Returns:
        One ``Hypothesis`` per utterance, in input order.
    """
    config = SearchConfig(search_type="greedy", max_sym_per_frame=max_sym_per_frame,
                          hat_blank_threshold=hat_blank_threshold, row_plan=row_plan).for_joint(joint)
    (batch, frames), device = enc_out.shape[:2], enc_out.device
    if frame_labels is not None and tuple(frame_labels.shape) != (batch, frames):
        raise ValueError(f"frame_labels must be (B, T) = {(batch, frames)}, got {tuple(frame_labels.shape)}")
    search = open_greedy_search(joint, decoder, config, batch, device, counters)
    search.extend(enc_out, enc_lens)
    if frame_labels is not None:
        frame_labels += frame_label_counts(search.label_frames, (batch, frames)).to(frame_labels.device,
                                                                                     frame_labels.dtype)
    return search.best()


def frame_label_counts(label_frames: List[List[int]], shape) -> torch.Tensor:
    """``(B, T)`` int64: the labels each stream's path emitted on each frame, from its ``label_frames``."""
    batch, frames = shape
    flat = [b * frames + f for b in range(batch) for f in label_frames[b]]
    return torch.bincount(torch.tensor(flat, dtype=torch.long), minlength=batch * frames).view(batch, frames)


def open_greedy_search(joint: TransducerJoint, decoder: torch.nn.Module, config: SearchConfig, batch: int,
                       device: torch.device, counters: Optional[SearchCounters] = None):
    """The resumable greedy search of ``config.row_plan``: :class:`GreedySearch` (select or mask) or the compiled
    beam search with K = 1 (compiled); both have ``extend``, ``best``, ``nbest`` and ``label_frames``."""
    config = config.for_joint(joint)
    if config.compiles(joint, decoder, device, False):
        return CompiledBeamSearch(joint, decoder, dataclasses.replace(config, beam_size=1), batch, counters)
    return GreedySearch(joint, decoder, config, batch, device, counters)


class GreedySearch:
    """:func:`greedy_search` of B streams, resumable over chunks of encoder frames.

    As :class:`~espnet_hatiam.search.beam.BeamSearch`: :meth:`extend` searches every frame it
    receives (a window's blank-certain run ends at the last frame received, the next chunk's
    window starts there), so only the path is carried between chunks, not the frames. Same
    labels as one extend over all the frames, the scores up to the order of the additions and
    the shapes of the products; the windows, so ``joint_evaluations``, are cut at the chunks' ends.

    Args:
        config: ``max_sym_per_frame``, ``hat_blank_threshold`` and ``row_plan``.
        batch: B streams; device: where the search runs (the chunks' device).
        counters: if given, each extend adds its ``joint_evaluations``, ``label_projections`` and ``frames_searched``.

    Attributes:
        label_frames: for each stream, the frame of its input (counted over its chunks) each label was emitted on.
    """

    def __init__(self, joint: TransducerJoint, decoder: torch.nn.Module, config: SearchConfig, batch: int,
                 device: torch.device, counters: Optional[SearchCounters] = None):
        self.config, self.joint, self.counters, self.batch = config.for_joint(joint), joint, counters, batch
        self.select = not config.masks_rows(device)
        # a label can beat blank only where P(blank) < 0.5, and is allowed only where P(blank) < theta
        self.bound = blank_logit_bound(min(config.hat_blank_threshold, 0.5)) if joint.is_factorized else math.inf
        self.width = WINDOW if joint.is_factorized else 1
        self.weight, self.bias = joint.output_layer()
        self.beam = BeamState(joint, PredictionNetwork(decoder), None, batch, 1, device)
        self.labels: List[List[int]] = [[] for _ in range(batch)]
        self.label_frames: List[List[int]] = [[] for _ in range(batch)]
        self.received = [0] * batch  # frames of each stream searched: the first frame of its next chunk
        # the path's scores: host floats (selecting plan) or (B,) on the device (masked plan)
        self.scores = [0.0] * batch if self.select else torch.zeros(batch, device=device)

    @torch.inference_mode()
    def extend(self, enc_out: torch.Tensor, enc_lens: torch.Tensor) -> None:
        """Search each stream's next ``enc_lens[b]`` frames (0 allowed) of the chunk ``enc_out (B, C, De)``."""
        if chunk_frames(enc_out, self.batch) == 0:
            return
        enc_out, enc_lens = iam_frame_skip(self.joint, enc_out, enc_lens, self.config.iam_blank_threshold,
                                           self.counters)
        if enc_out.size(1) == 0:
            return
        encoded = EncodedFrames(self.joint, enc_out, enc_lens, self.width)
        if self.select:
            self._extend_on_host(encoded, enc_lens.tolist())
        else:
            self._extend_masked(encoded, enc_out.size(1))

    def best(self) -> List[Hypothesis]:
        """Each stream's path so far (one ``Hypothesis`` per stream); the state is unchanged."""
        return _hypotheses(self, [])

    def nbest(self, nbest: Optional[int] = None) -> List[List[Hypothesis]]:
        """:meth:`best` as one-element n-best lists (``nbest`` must be 1)."""
        if nbest not in (None, 1):
            raise InputError(f"search option 'nbest' must be 1 for greedy search, got {nbest!r}")
        return [[h] for h in self.best()]

    def _extend_masked(self, encoded: EncodedFrames, frames: int) -> None:
        """The masked plan: T x S steps over the chunk's T frames without host synchronisation, then the copy."""
        joint, beam, weight, bias, width, S = (self.joint, self.beam, self.weight, self.bias, self.width,
                                               self.config.max_sym_per_frame)
        batch, size, device = self.batch, weight.size(1), encoded.lens.device
        weight_t = weight.t()
        window_rows = torch.arange(batch, device=device) * width
        t = torch.zeros(batch, 1, dtype=torch.long, device=device)  # frame pointers
        on_frame = torch.zeros_like(t)  # labels emitted on frame t so far (0 at a chunk's start: every frame
        # of the last chunk was left)
        scores, steps, windows = [], [], []  # per step, (B, 1) and (B, W) tensors, read once after the loop

        for _ in range(frames * S):  # each step emits a label (at most S - 1 a frame) or moves on
            window, valid = encoded.window(t)
            hiddens = joint.hidden(window, beam.dec_proj.unsqueeze(1))  # (B, W, J)
            windows.append(valid)
            if joint.is_factorized:
                blank_logits = torch.addmv(bias[0], hiddens.view(-1, size), weight[0]).view(batch, 1, width)
                run, _, blank = blank_certain_run(blank_logits, self.bound, valid)
                scores.append(blank)
                f = t + run
                at_frame = (f < encoded.lens) & (run < width)
                hidden = hiddens.view(batch * width, size)[window_rows + run.clamp(max=width - 1).view(-1)]
            else:
                f, at_frame, hidden = t, valid, hiddens.view(batch, size)
                run = None
            best, token = joint.log_probs_from_logits(torch.addmm(bias, hidden, weight_t)).max(1, keepdim=True)
            emit = (token != 0) & at_frame  # ties went to blank (index 0)
            scores.append(best * at_frame)
            steps.append((token, emit, torch.where(at_frame, f, -1)))
            on_frame = (on_frame if run is None else on_frame * (run == 0)) + emit  # a run moved to a new frame
            stay = emit & (on_frame < S)
            t = f + (at_frame & ~stay)
            on_frame = on_frame * stay
            beam.advance(token, stepping=emit)

        self.scores = self.scores + torch.cat(scores, 1).sum(1)
        if self.counters is not None:
            self.counters.joint_evaluations += torch.cat(windows, 1).sum(1).cpu()
        _hypotheses(self, steps, encoded.lens)

    def _extend_on_host(self, encoded: EncodedFrames, lens: List[int]) -> None:
        """The selecting plan: frame pointers, scores and labels on the host.

        Each step reads the window's blank logits and, at the candidate frames, the best outputs
        (two reads); the runs, the choice and the bookkeeping are plain Python, the prediction network
        steps on the rows that emitted. The same decisions as the masked loop (the bound is compared in
        the tensors' precision; with HAT, blank against the best label in float64, :func:`_hat_choice`).
        """
        beam, weight, bias, width, S = self.beam, self.weight, self.bias, self.width, self.config.max_sym_per_frame
        batch, size, device = self.batch, weight.size(1), beam.device
        bound = float(torch.tensor(self.bound, dtype=weight.dtype))
        starts = encoded.start.view(-1).tolist()
        scores, labels, label_frames, first = self.scores, self.labels, self.label_frames, self.received
        t, on_frame = [0] * batch, [0] * batch  # pointers in the chunk; every frame of the last chunk was left
        evaluations, projections, visited, last = [0] * batch, [0] * batch, [0] * batch, [-1] * batch
        live = [b for b in range(batch) if lens[b] > 0]
        weight_t = weight.t()
        while live:
            index = torch.tensor([[starts[b] + t[b] + w for w in range(width)] for b in range(batch)], device=device)
            hiddens = beam.joint.hidden(encoded.flat[index], beam.dec_proj.unsqueeze(1)).view(batch * width, size)
            blank = torch.addmv(bias[0], hiddens, weight[0]).tolist() if width > 1 else None
            rows, frames = [], []  # streams with a candidate frame, and that frame
            for b in live:
                w, end = 0, min(width, lens[b] - t[b])
                while blank is not None and w < end and blank[b * width + w] >= bound:  # blank-certain
                    scores[b] += _log_sigmoid(blank[b * width + w])
                    w += 1
                evaluations[b] += end
                if w < end:
                    rows.append(b)
                    frames.append(t[b] + w)
                    if w:
                        on_frame[b] = 0
                else:
                    t[b], on_frame[b] = t[b] + w, 0
            if rows:
                picked = [b * width + f - t[b] for b, f in zip(rows, frames)]
                hidden = hiddens[torch.tensor(picked, device=device)]
                if blank is None:  # RNN-T: the joint's log-probs, ties to blank (index 0)
                    best, token = beam.joint.log_probs_from_logits(torch.addmm(bias, hidden, weight_t)).max(1)
                    choices = zip(best.tolist(), token.tolist())
                else:  # HAT: the best label's log_softmax on the device, its duel with blank here
                    best, token = torch.log_softmax(torch.addmm(bias[1:], hidden, weight_t[:, 1:]), 1).max(1)
                    choices = map(_hat_choice, [blank[i] for i in picked], best.tolist(), token.tolist())
                emitting, emitted = [], []
                for b, f, (value, k) in zip(rows, frames, choices):
                    scores[b] += value
                    projections[b] += 1
                    visited[b] += f != last[b]
                    last[b] = f
                    stay = k != 0 and on_frame[b] + 1 < S
                    if k:
                        labels[b].append(k)
                        label_frames[b].append(first[b] + f)
                        emitting.append(b)
                        emitted.append(k)
                    t[b], on_frame[b] = (f, on_frame[b] + 1) if stay else (f + 1, 0)
                if emitting:
                    beam.advance(torch.tensor(emitted, device=device), torch.tensor(emitting, device=device))
            live = [b for b in live if t[b] < lens[b]]

        self.received = [r + n for r, n in zip(first, lens)]
        if self.counters is not None:
            self.counters.joint_evaluations += torch.tensor(evaluations)
            self.counters.label_projections += torch.tensor(projections)
            self.counters.frames_searched += torch.tensor(visited)


def _hypotheses(search: GreedySearch, steps, lens: Optional[torch.Tensor] = None) -> List[Hypothesis]:
    """The masked plan's copies to the host (its only reads; the selecting plan's paths are there already).

    A chunk's ``steps`` (each step's token, emitted flag and projected frame, -1: none, all ``(B, 1)``)
    go into the labels, their frames and the counters (label projections, frames searched), its
    ``lens (B, 1)`` into the frames received. Returns each stream's ``Hypothesis`` so far.
    """
    if steps:
        tokens, emitted, projected = (torch.cat(column, 1).tolist() for column in zip(*steps))
        for b in range(search.batch):
            for k, e, f in zip(tokens[b], emitted[b], projected[b]):
                if e:
                    search.labels[b].append(k)
                    search.label_frames[b].append(search.received[b] + f)
        if search.counters is not None:
            search.counters.label_projections += torch.tensor([sum(f >= 0 for f in row) for row in projected])
            search.counters.frames_searched += torch.tensor([len({f for f in row if f >= 0}) for row in projected])
    if lens is not None:
        search.received = [r + n for r, n in zip(search.received, lens.view(-1).tolist())]
    scores = search.scores if isinstance(search.scores, list) else search.scores.tolist()
    return [Hypothesis(list(search.labels[b]), score) for b, score in enumerate(scores)]


def _hat_choice(blank_logit: float, label_log_softmax: float, label: int):
    """Greedy's choice on a frame: ``(log-prob, token)``, the best label (index ``label`` among the
    labels) against blank, ties to blank: log P(blank) = log sigmoid(s) against log sigmoid(-s) +
    log_softmax(z)_k. In float64 on the host (the device's float32 composition could decide otherwise
    only where the two differ by its rounding, about 1e-7)."""
    blank, best = _log_sigmoid(blank_logit), _log_sigmoid(-blank_logit) + label_log_softmax
    return (best, label + 1) if best > blank else (blank, 0)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))
