"""Batched label-looping greedy transducer search (NeMo, arXiv 2406.06220), exact for HAT."""

import math
from typing import List, Optional

import torch

from espnet_hatiam.search.beam_state import BeamState, EncodedFrames
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.frame_skip import WINDOW, blank_certain_run, blank_logit_bound
from espnet_hatiam.search.state import Hypothesis, PredictionNetwork, TransducerJoint


@torch.no_grad()
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
    :func:`~espnet_hatiam.search.beam.modified_beam_search` (the masked plan runs T x S steps).

    Args:
        joint: HAT or RNN-T joint network; decoder: ESPnet ``TransducerDecoder``.
        enc_out: ``(B, T, De)``; enc_lens: ``(B,)``.
        counters: if given, ``joint_evaluations`` (window frames whose blank logit was computed),
            ``label_projections`` and ``frames_searched`` (frames labels were projected on) are added to it.
        frame_labels: if given, a ``(B, T)`` integer tensor (any device), in input order, to which the
            number of labels the path emitted on each frame is added.

    Returns:
        One ``Hypothesis`` per utterance, in input order.
    """
    config = SearchConfig(search_type="greedy", max_sym_per_frame=max_sym_per_frame,
                          hat_blank_threshold=hat_blank_threshold, row_plan=row_plan).for_joint(joint)
    (batch, frames), device, S = enc_out.shape[:2], enc_out.device, max_sym_per_frame
    if frame_labels is not None and tuple(frame_labels.shape) != (batch, frames):
        raise ValueError(f"frame_labels must be (B, T) = {(batch, frames)}, got {tuple(frame_labels.shape)}")
    select = not config.masks_rows(device)
    # a label can beat blank only where P(blank) < 0.5, and is allowed only where P(blank) < theta
    bound = blank_logit_bound(min(hat_blank_threshold, 0.5)) if joint.is_factorized else math.inf
    width = WINDOW if joint.is_factorized else 1
    weight, bias = joint.output_layer()
    weight_t = weight.t()
    encoded = EncodedFrames(joint, enc_out, enc_lens, width)
    prediction = PredictionNetwork(decoder)
    beam = BeamState(joint, prediction, None, batch, 1, device)
    if select:
        return _label_looping_on_host(beam, encoded, weight, bias, bound, width, S, enc_lens.tolist(), counters,
                                      frame_labels)
    window_rows = torch.arange(batch, device=device) * width
    size = weight.size(1)
    t = torch.zeros(batch, 1, dtype=torch.long, device=device)  # frame pointers
    on_frame = torch.zeros_like(t)  # labels emitted on frame t so far
    scores, steps, windows = [], [], []  # per step, (B, 1) and (B, W) tensors, read once after the loop

    for _ in range(frames * S):  # each step emits a label (at most S - 1 a frame) or moves on
        window, valid = encoded.window(t)
        hiddens = joint.hidden(window, beam.dec_proj.unsqueeze(1))  # (B, W, J)
        windows.append(valid)
        if joint.is_factorized:
            blank_logits = torch.addmv(bias[0], hiddens.view(-1, size), weight[0]).view(batch, 1, width)
            run, _, blank = blank_certain_run(blank_logits, bound, valid)
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

    total = torch.cat(scores, 1).sum(1) if scores else torch.zeros(batch, device=device)
    if counters is not None:
        counters.joint_evaluations += torch.cat(windows, 1).sum(1).cpu() if windows else 0
    return _hypotheses(total, steps, frames, counters, frame_labels)


def _hypotheses(scores, steps, frames, counters, frame_labels) -> List[Hypothesis]:
    """Copy the result to the host: scores ``(B,)`` and each step's token, emitted flag and projected frame
    (-1: none), all ``(B, 1)``; adds the label projections, the frames searched and the labels per frame
    (``frame_labels (B, T)``) if asked."""
    batch = scores.numel()
    if steps:
        tokens, emitted, projected = (torch.cat(column, 1).tolist() for column in zip(*steps))
    else:
        tokens = emitted = projected = [[] for _ in range(batch)]
    labels = [[k for k, e in zip(tokens[b], emitted[b]) if e] for b in range(batch)]
    if counters is not None:
        counters.label_projections += torch.tensor([sum(f >= 0 for f in row) for row in projected])
        counters.frames_searched += torch.tensor([len({f for f in row if f >= 0}) for row in projected])
    if frame_labels is not None:
        flat = [b * frames + f for b in range(batch) for f, e in zip(projected[b], emitted[b]) if e]
        added = torch.bincount(torch.tensor(flat, dtype=torch.long), minlength=frame_labels.numel())
        frame_labels += added.view_as(frame_labels).to(frame_labels.device, frame_labels.dtype)
    return [Hypothesis(labels[b], score) for b, score in enumerate(scores.tolist())]


def _label_looping_on_host(beam: BeamState, encoded: EncodedFrames, weight: torch.Tensor, bias: torch.Tensor,
                           bound: float, width: int, S: int, lens: List[int], counters: Optional[SearchCounters],
                           frame_labels: Optional[torch.Tensor]) -> List[Hypothesis]:
    """The selecting plan of :func:`greedy_search`: frame pointers, scores and labels on the host.

    Each step reads the window's blank logits and, at the candidate frames, the best outputs
    (two reads); the runs, the choice and the bookkeeping are plain Python, the prediction network
    steps on the rows that emitted. The same decisions as the masked loop (the bound is compared in
    the tensors' precision).
    """
    batch, size, device = len(lens), weight.size(1), beam.device
    bound = float(torch.tensor(bound, dtype=weight.dtype))
    starts = encoded.start.view(-1).tolist()
    t, on_frame, scores = [0] * batch, [0] * batch, [0.0] * batch
    labels, label_frames = [[] for _ in range(batch)], [[] for _ in range(batch)]
    evaluations, projections, visited, last = [0] * batch, [0] * batch, [0] * batch, [-1] * batch
    live = [b for b in range(batch) if lens[b] > 0]
    weight_t = weight.t()
    while live:
        index = torch.tensor([[starts[b] + t[b] + w for w in range(width)] for b in range(batch)], device=device)
        hiddens = beam.joint.hidden(encoded.flat[index], beam.dec_proj.unsqueeze(1)).view(batch * width, size)
        blank = torch.addmv(bias[0], hiddens, weight[0]).tolist() if width > 1 else None
        rows, frames = [], []  # utterances with a candidate frame, and that frame
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
            logits = torch.addmm(bias, hiddens[torch.tensor([b * width + f - t[b] for b, f in zip(rows, frames)],
                                                           device=device)], weight_t)
            best, token = beam.joint.log_probs_from_logits(logits).max(1)  # ties go to blank (index 0)
            emitting, emitted = [], []
            for b, f, value, k in zip(rows, frames, best.tolist(), token.tolist()):
                scores[b] += value
                projections[b] += 1
                visited[b] += f != last[b]
                last[b] = f
                stay = k != 0 and on_frame[b] + 1 < S
                if k:
                    labels[b].append(k)
                    label_frames[b].append(f)
                    emitting.append(b)
                    emitted.append(k)
                t[b], on_frame[b] = (f, on_frame[b] + 1) if stay else (f + 1, 0)
            if emitting:
                beam.advance(torch.tensor(emitted, device=device), torch.tensor(emitting, device=device))
        live = [b for b in live if t[b] < lens[b]]

    if counters is not None:
        counters.joint_evaluations += torch.tensor(evaluations)
        counters.label_projections += torch.tensor(projections)
        counters.frames_searched += torch.tensor(visited)
    if frame_labels is not None:
        for b in range(batch):
            for f in label_frames[b]:
                frame_labels[b, f] += 1
    return [Hypothesis(labels[b], scores[b]) for b in range(batch)]


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))
