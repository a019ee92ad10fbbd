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
    window_rows = torch.arange(batch, device=device) * width
    t = torch.zeros(batch, 1, dtype=torch.long, device=device)  # frame pointers
    on_frame = torch.zeros_like(t)  # labels emitted on frame t so far
    labels = torch.zeros(batch, frames * S + 1, dtype=torch.long, device=device)  # zero beyond count
    label_frames, count = torch.zeros_like(labels), torch.zeros_like(t)
    evaluations, projections, visited = torch.zeros_like(t), torch.zeros_like(t), torch.zeros_like(t)

    for _ in range(frames * S):  # each step emits a label (at most S - 1 a frame) or moves on
        window, valid = encoded.window(t)
        hiddens = joint.hidden(window, beam.dec_proj.unsqueeze(1))  # (B, W, J)
        evaluations += valid.sum(1, keepdim=True)
        if joint.is_factorized:
            blank_logits = torch.addmv(bias[0], hiddens.view(-1, hiddens.size(-1)), weight[0]).view(batch, 1, width)
            run, _, blank = blank_certain_run(blank_logits, bound, valid)
            beam.scores += blank
        else:
            run = torch.zeros_like(t)
        f = t + run
        at_frame = (f < encoded.lens) & (run < width)
        logits = torch.addmm(bias, hiddens.view(batch * width, -1)[window_rows + run.clamp(max=width - 1).view(-1)],
                             weight_t)
        best, token = joint.log_probs_from_logits(logits).max(1, keepdim=True)  # ties go to blank (index 0)
        emit = (token != 0) & at_frame
        beam.scores += best.masked_fill_(~at_frame, 0.0)
        labels.scatter_(1, count, token * emit)
        label_frames.scatter_(1, count, f * emit)
        count += emit
        before = on_frame.masked_fill(run > 0, 0)
        projections += at_frame
        visited += at_frame & (before == 0)
        on_frame = before + emit
        leave = at_frame & (~emit | (on_frame >= S))
        on_frame.masked_fill_(leave | ~at_frame, 0)
        t = f + leave
        if not select:
            beam.advance(token, stepping=emit)
        elif bool(emit.any()):
            rows = emit.view(-1).nonzero().squeeze(1)
            beam.advance(token.view(-1)[rows], rows)
        if select and not (t < encoded.lens).any():
            break

    if counters is not None:
        counters.joint_evaluations += evaluations.view(-1).cpu()
        counters.label_projections += projections.view(-1).cpu()
        counters.frames_searched += visited.view(-1).cpu()
    return _hypotheses(beam.scores, labels, label_frames, count, frame_labels)


def _hypotheses(scores, labels, label_frames, count, frame_labels) -> List[Hypothesis]:
    """Copy the result to the host: scores ``(B, 1)``, labels and their frames ``(B, L)``, counts ``(B, 1)``;
    adds the labels per frame to ``frame_labels (B, T)`` if given."""
    counts, labels, label_frames = count.view(-1).tolist(), labels.tolist(), label_frames.tolist()
    if frame_labels is not None:
        frames = frame_labels.size(1)
        flat = [b * frames + f for b, n in enumerate(counts) for f in label_frames[b][:n]]
        added = torch.bincount(torch.tensor(flat, dtype=torch.long), minlength=frame_labels.numel())
        frame_labels += added.view_as(frame_labels).to(frame_labels.device, frame_labels.dtype)
    return [Hypothesis(labels[b][:n], score) for b, (n, score) in enumerate(zip(counts, scores.view(-1).tolist()))]
