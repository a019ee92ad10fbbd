"""Batched greedy transducer search with optional HAT-blank thresholding."""

from typing import List, Optional

import torch

from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.state import (
    Hypothesis,
    PredictionNetwork,
    TransducerJoint,
    assign,
    assign_where,
    hat_thresholded_log_probs,
    select,
    uses_hat_threshold,
)


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
    sync_free: Optional[bool] = None,
) -> List[Hypothesis]:
    """Greedy search over a batch of utterances.

    At each frame every utterance takes the most probable output; after a label it may
    emit again on the same frame, at most ``max_sym_per_frame`` labels. Utterances are
    sorted by length so that the live ones form a prefix of the batch: the prediction
    network and joint only ever run on live rows.

    With ``hat_blank_threshold`` < 1 (HAT joint only) the blank logit is computed first
    and rows with P(blank) >= threshold take blank without their labels
    (:func:`~espnet_hatiam.search.state.hat_thresholded_log_probs`).

    Args:
        joint: HAT or RNN-T joint network.
        decoder: ESPnet ``TransducerDecoder``.
        enc_out: ``(B, T, De)``; enc_lens: ``(B,)``.
        counters: if given, ``joint_evaluations``/``label_projections`` are added to it.
        frame_labels: if given, a ``(B, T)`` integer tensor (any device), in input order, to
            which the number of labels the path emitted on each frame is added (0 on a frame
            the path left by blank at once, and on padding). The frame of each label is
            recorded as it is appended, so the search itself does no more work.
        sync_free: run every round on all live rows with masks, the labels in a ``(B, T*S)``
            device buffer, so that the frame loop never waits for the device (the beam
            search's GPU path; the default on CUDA). Same hypotheses as the selecting path,
            which runs each round only on the rows still emitting and is faster on a CPU.

    Returns:
        One ``Hypothesis`` per utterance, in input order.
    """
    thresholding = uses_hat_threshold(joint, hat_blank_threshold)
    batch, device = enc_out.size(0), enc_out.device
    if frame_labels is not None and tuple(frame_labels.shape) != tuple(enc_out.shape[:2]):
        raise ValueError(f"frame_labels must be (B, T) = {tuple(enc_out.shape[:2])}, got {tuple(frame_labels.shape)}")
    sync_free = enc_out.is_cuda if sync_free is None else sync_free
    lens, order = enc_lens.sort(descending=True)
    enc_proj = joint.project_encoder(enc_out[order])
    prediction = PredictionNetwork(decoder)
    dec_out, state = prediction.initial(batch, device)
    dec_proj = joint.project_decoder(dec_out)
    scores = torch.zeros(batch, device=device)
    joint_evals = torch.zeros(batch, dtype=torch.long, device=device)  # copied to the host once
    label_projs = torch.zeros(batch, dtype=torch.long, device=device)
    live = lens.tolist()  # host copy: the utterances live at frame t are the first n
    frames = live[0] if batch else 0
    all_rows = torch.arange(batch, device=device)
    # selecting path: labels and their frames appended on the host; sync-free path: written
    # into device buffers at each row's label count (zero beyond it), copied once at the end
    tokens: List[List[int]] = [[] for _ in range(batch)]
    token_frames: List[List[int]] = [[] for _ in range(batch)]
    if sync_free:
        label_buffer = torch.zeros(batch, max(frames * max_sym_per_frame, 1), dtype=torch.long, device=device)
        frame_buffer = torch.zeros_like(label_buffer)
        label_count = torch.zeros(batch, 1, dtype=torch.long, device=device)

    n = batch
    for t in range(frames):
        while live[n - 1] <= t:
            n -= 1
        rows = all_rows[:n]
        active = torch.ones(n, dtype=torch.bool, device=device) if sync_free else None
        for _ in range(max_sym_per_frame):
            hidden = joint.hidden(enc_proj[rows, t], dec_proj[rows])
            if thresholding:
                log_probs, need = hat_thresholded_log_probs(joint, hidden, hat_blank_threshold, best_only=True)
            else:
                log_probs, need = joint.log_probs_from_hidden(hidden), True
            best, best_token = log_probs.max(-1)  # ties go to blank (index 0)
            emit = best_token != 0
            if sync_free:  # only the active rows count, score and emit
                joint_evals[:n] += active
                label_projs[:n] += active & need
                scores[:n] += best.masked_fill(~active, 0.0)
                emit &= active
                label_buffer[:n].scatter_(1, label_count[:n], best_token.masked_fill(~emit, 0).unsqueeze(1))
                frame_buffer[:n].scatter_(1, label_count[:n], emit.unsqueeze(1) * t)
                label_count[:n] += emit.unsqueeze(1)
                out, new_state = prediction.step(best_token, select(state, rows))
                assign_where(state, dec_proj, rows, new_state, joint.project_decoder(out), emit)
                active = emit
            else:  # the rows that just emitted go on
                joint_evals[rows] += 1
                label_projs[rows] += need
                scores[rows] += best
                rows, new_tokens = rows[emit], best_token[emit]
                if rows.numel() == 0:
                    break
                for row, token in zip(rows.tolist(), new_tokens.tolist()):
                    tokens[row].append(token)
                    token_frames[row].append(t)
                out, new_state = prediction.step(new_tokens, select(state, rows))
                assign(state, rows, new_state)
                dec_proj[rows] = joint.project_decoder(out)

    if sync_free:
        counts = label_count.squeeze(1).tolist()
        labels, label_frames = label_buffer.tolist(), frame_buffer.tolist()
        tokens = [labels[row][: counts[row]] for row in range(batch)]
        token_frames = [label_frames[row][: counts[row]] for row in range(batch)]
    if counters is not None:
        counters.joint_evaluations[order.cpu()] += joint_evals.cpu()
        counters.label_projections[order.cpu()] += label_projs.cpu()
    if frame_labels is not None:
        _add_frame_labels(frame_labels, token_frames, order.tolist())
    result = [None] * batch
    for row, b in enumerate(order.tolist()):
        result[b] = Hypothesis(tokens[row], float(scores[row]))
    return result


def _add_frame_labels(frame_labels: torch.Tensor, token_frames: List[List[int]], order: List[int]) -> None:
    """Add one to ``frame_labels[b, t]`` per label at frame t of sorted row ``row`` (``b = order[row]``)."""
    width = frame_labels.size(1)
    flat = [order[row] * width + t for row, frames in enumerate(token_frames) for t in frames]
    counts = torch.bincount(torch.tensor(flat, dtype=torch.long), minlength=frame_labels.numel())
    frame_labels += counts.view_as(frame_labels).to(frame_labels.device, frame_labels.dtype)
