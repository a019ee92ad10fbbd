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
) -> List[Hypothesis]:
    """Greedy search over a batch of utterances.

    At each frame every utterance takes the most probable output; after a label it may
    emit again on the same frame, at most ``max_sym_per_frame`` labels. Utterances are
    sorted by length so that the active ones form a prefix of the batch: the prediction
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
            recorded on the host as it is appended, so the search itself does no more work.

    Returns:
        One ``Hypothesis`` per utterance, in input order.
    """
    thresholding = uses_hat_threshold(joint, hat_blank_threshold)
    batch = enc_out.size(0)
    if frame_labels is not None and tuple(frame_labels.shape) != tuple(enc_out.shape[:2]):
        raise ValueError(f"frame_labels must be (B, T) = {tuple(enc_out.shape[:2])}, got {tuple(frame_labels.shape)}")
    lens, order = enc_lens.sort(descending=True)
    enc_proj = joint.project_encoder(enc_out[order])
    prediction = PredictionNetwork(decoder)
    dec_out, state = prediction.initial(batch, enc_out.device)
    dec_proj = joint.project_decoder(dec_out)
    scores = torch.zeros(batch, device=enc_out.device)
    tokens: List[List[int]] = [[] for _ in range(batch)]
    token_frames: List[List[int]] = [[] for _ in range(batch)]  # the frame of each label in tokens
    joint_evals = torch.zeros(batch, dtype=torch.long, device=enc_out.device)  # copied to the host once
    label_projs = torch.zeros(batch, dtype=torch.long, device=enc_out.device)
    live = lens.tolist()  # host copy: the utterances live at frame t are the first n
    all_rows = torch.arange(batch, device=enc_out.device)

    n = batch
    for t in range(live[0] if batch else 0):
        while live[n - 1] <= t:
            n -= 1
        rows = all_rows[:n]
        for _ in range(max_sym_per_frame):
            hidden = joint.hidden(enc_proj[rows, t], dec_proj[rows])
            joint_evals[rows] += 1
            if thresholding:
                log_probs, need = hat_thresholded_log_probs(joint, hidden, hat_blank_threshold, best_only=True)
                label_projs[rows] += need
            else:
                log_probs = joint.log_probs_from_hidden(hidden)
                label_projs[rows] += 1
            best, best_token = log_probs.max(-1)  # ties go to blank (index 0)
            scores[rows] += best
            emit = best_token != 0
            rows, new_tokens = rows[emit], best_token[emit]
            if rows.numel() == 0:
                break
            for row, token in zip(rows.tolist(), new_tokens.tolist()):
                tokens[row].append(token)
                token_frames[row].append(t)
            out, new_state = prediction.step(new_tokens, select(state, rows))
            assign(state, rows, new_state)
            dec_proj[rows] = joint.project_decoder(out)

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
