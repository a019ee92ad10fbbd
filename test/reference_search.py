"""Test-only reference: the frame-by-frame searches as they were before issue 28 (commit fc66302).

The batched beam and greedy searches that visit every kept frame in up to ``max_sym_per_frame``
rounds, with HAT-blank thresholding decided per round. The new searches (windowed blank-certain
runs, label-looping greedy, one beam state) must return their hypotheses and scores.
"""

import math
from typing import List, Optional, Tuple

import torch

from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import Hypothesis, PredictionNetwork, State, TransducerJoint


def select(state: State, index: torch.Tensor) -> State:
    """States of rows ``index`` ``(M,)``."""
    h, c = state
    return h[:, index], None if c is None else c[:, index]


def assign(state: State, index: torch.Tensor, new: State) -> None:
    """Write ``new`` into rows ``index`` of ``state`` in place."""
    state[0][:, index] = new[0]
    if state[1] is not None:
        state[1][:, index] = new[1]


def assign_where(state: State, outputs: torch.Tensor, rows: torch.Tensor, new_state: State,
                 new_outputs: torch.Tensor, keep: torch.Tensor) -> None:
    """Write a step's state and ``(N, D)`` outputs into rows ``rows`` ``(N,)`` where ``keep`` ``(N,)``.

    The rows where ``keep`` is False keep their old values: the sync-free searches step every
    row and keep only the ones that emitted, without selecting them on the host.
    """
    mask = keep.view(1, -1, 1)
    assign(state, rows, tuple(None if new is None else torch.where(mask, new, old[:, rows])
                              for new, old in zip(new_state, state)))
    outputs[rows] = torch.where(keep.unsqueeze(1), new_outputs, outputs[rows])


def gather_prefix(state: State, source: torch.Tensor) -> State:
    """Rows ``source`` of the state moved to rows ``0..len(source)-1`` (others unchanged)."""
    h, c = state
    if source.numel() == h.size(1):
        return h[:, source], None if c is None else c[:, source]
    h = h.clone()
    h[:, : source.numel()] = h[:, source]
    if c is not None:
        c = c.clone()
        c[:, : source.numel()] = c[:, source]
    return h, c


def uses_hat_threshold(joint: TransducerJoint, hat_blank_threshold: float) -> bool:
    """True when HAT-blank thresholding is on; refuses it for a joint without a separate blank."""
    if hat_blank_threshold >= 1.0:
        return False
    if not joint.is_factorized:
        raise ValueError(
            f"hat_blank_threshold={hat_blank_threshold} needs the HAT joint (joint_type: hat); "
            "the RNN-T joint has no separate blank output"
        )
    return True


# A gathered label projection (index the rows that need it, project, scatter back) costs a few
# extra tensor operations; it is used only when the rows it skips save at least this many
# multiply-adds (J x V each), about the cost of those operations on a CPU core.
GATHER_MIN_SAVED_MACS = 1 << 20


def hat_thresholded_log_probs(
    joint: TransducerJoint, hidden: torch.Tensor, hat_blank_threshold: float, best_only: bool = False
) -> Tuple[torch.Tensor, torch.Tensor]:
    """HAT log-probs ``(N, V+1)`` of hidden rows ``(N, J)`` with HAT-blank thresholding.

    Rows with P(blank) >= ``hat_blank_threshold`` (blank logit s >= logit(theta)) keep only blank
    (labels -inf). The blank logits come first. On a CPU the label projection then runs on no
    row when every row is above the threshold, on the rows that need it (gathered) when the
    skipped rows save at least ``GATHER_MIN_SAVED_MACS``, else on every row with the skipped
    rows' labels masked: next to the plain log-probs, a comparison, a count and the mask, never
    a gather that saves less than it costs. On CUDA (where counting the rows would wait for the
    device) always the masked form. ``best_only``: the caller takes only each row's best output
    (greedy search); with a threshold >= 0.5 blank is already the best output of a row above
    it, so the mask is left out. Also returns the ``(N,)`` mask of rows that needed their labels.
    """
    rows, size = hidden.shape
    masked = not (best_only and hat_blank_threshold >= 0.5)
    blank_logit = joint.blank_logit(hidden)
    # P(blank) < theta <=> s < logit(theta); theta <= 0: no row needs its labels
    logit = math.log(hat_blank_threshold / (1 - hat_blank_threshold)) if hat_blank_threshold > 0 else -math.inf
    need = blank_logit < logit
    needed = rows if hidden.is_cuda else int(need.sum())  # CUDA: no count, the masked form
    skipped_macs = (rows - needed) * size * (joint.vocab_size - 1)
    if needed and skipped_macs < GATHER_MIN_SAVED_MACS:  # dense: the projection of every row
        log_probs = joint.log_probs_from_hidden(hidden, blank_logit)
        if masked and (hidden.is_cuda or needed < rows):
            log_probs[:, 1:].masked_fill_(~need.unsqueeze(1), float("-inf"))
        return log_probs, need
    log_probs = hidden.new_full((rows, joint.vocab_size), float("-inf"))
    log_probs[:, 0] = torch.nn.functional.logsigmoid(blank_logit)
    if needed:  # gathered: the projection of the rows below the threshold only
        rows_needed = need.nonzero().squeeze(1)
        log_probs[rows_needed, 1:] = joint.label_log_probs(hidden[rows_needed], blank_logit[rows_needed])
    return log_probs, need


NEG_INF = float("-inf")


@torch.no_grad()
def reference_beam_search(
    joint: TransducerJoint,
    decoder: torch.nn.Module,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    beam_size: int = 4,
    nbest: int = 1,
    max_sym_per_frame: int = 4,
    hat_blank_threshold: float = 1.0,
    counters: Optional[SearchCounters] = None,
    fusion: Optional[RNNLMFusion] = None,
    sync_free: Optional[bool] = None,
    expansion_beam: float = 4.0,
) -> List[List[Hypothesis]]:
    """Beam search with up to ``max_sym_per_frame`` labels per frame, batched over utterances and beams.

    The beam of every utterance is a row of a ``(B, K)`` score tensor (``-inf`` marks an
    empty slot) with its label sequences ``(B, K, L)`` (zero-padded) and lengths ``(B, K)``;
    prediction-network states and projected outputs are ``(B*K, ...)``. A frame is searched
    in up to S = ``max_sym_per_frame`` rounds. In each round the hypotheses still on the
    frame ("active") get one joint hidden, their blank scores and, for those below
    ``hat_blank_threshold``, the label projection (gathered or masked, whichever is cheaper:
    :func:`hat_thresholded_log_probs`). Candidates are
    blank (the hypothesis leaves the frame), a label (it stays for the next round, or
    leaves after the S-th label, as in icefall's greedy search) and the hypotheses that
    already left (carried over unchanged); top-K of each utterance's candidates is kept,
    candidates with equal label sequences and the same frame position are merged
    (log-sum-exp, exact comparison of the sequences), and the prediction network runs for
    the hypotheses that just emitted. With S = 1 this is icefall's modified beam search.
    Utterances are sorted by length so the live ones are a prefix of the batch.

    Args:
        joint: HAT or RNN-T joint; decoder: ESPnet ``TransducerDecoder``.
        enc_out: ``(B, T, De)``; enc_lens: ``(B,)``.
        beam_size: K; nbest: hypotheses returned per utterance (<= K).
        max_sym_per_frame: S >= 1.
        hat_blank_threshold: theta_HAT; >= 1 disables it.
        counters: if given, ``joint_evaluations``/``label_projections`` are added to it.
        expansion_beam: a hypothesis that has just emitted stays on the frame for another round
            only while its score is within this many nats of its utterance's best candidate;
            further below, it leaves the frame as after the S-th label (it stays in the beam).
            ``inf`` expands every emitting hypothesis up to S labels.
        fusion: external LM shallow fusion with ILM subtraction; its label bonuses are
            added to the label scores (and so to the hypothesis scores).
        sync_free: run every round on all ``n*K`` rows with masks instead of selecting the
            active and emitting rows, so that the frame loop never waits for the device (no
            ``nonzero``, no data-dependent branch; the label buffer bound follows the round
            number): the GPU path, and the default on CUDA. Same hypotheses as the selecting
            path, which does less work on a CPU.

    Returns:
        For each utterance in input order, up to ``nbest`` hypotheses, best first.
    """
    thresholding = uses_hat_threshold(joint, hat_blank_threshold)
    if not 1 <= nbest <= beam_size or max_sym_per_frame < 1:
        raise ValueError(f"need 1 <= nbest <= beam_size and max_sym_per_frame >= 1, got {nbest}, "
                         f"{beam_size}, {max_sym_per_frame}")
    device = enc_out.device
    batch, K, V1, S = enc_out.size(0), beam_size, joint.vocab_size, max_sym_per_frame
    lens, order = enc_lens.sort(descending=True)
    live = lens.tolist()  # host copy: how many utterances are still live at each frame
    frames = live[0] if batch else 0
    enc_proj = joint.project_encoder(enc_out[order])
    prediction = PredictionNetwork(decoder)
    dec_out, state = prediction.initial(batch * K, device)
    dec_proj = joint.project_decoder(dec_out)
    if fusion is not None:
        lm_log_probs, lm_state = fusion.initial(batch * K, device)
        bonus = fusion.bonus(lm_log_probs, dec_proj)  # (B*K, V), follows each slot like dec_proj

    scores = torch.full((batch, K), NEG_INF, device=device)
    scores[:, 0] = 0.0
    labels = torch.zeros(batch, K, frames * S + 1, dtype=torch.long, device=device)  # 0 beyond lengths
    lengths = torch.zeros(batch, K, dtype=torch.long, device=device)
    longest = 0  # the longest live sequence, kept on the host (selecting path)
    joint_evals = torch.zeros(batch, dtype=torch.long, device=device)  # counted on the device, copied once
    label_projs = torch.zeros(batch, dtype=torch.long, device=device)

    sync_free = enc_out.is_cuda if sync_free is None else sync_free
    all_rows = torch.arange(batch * K, device=device)
    n = batch
    for t in range(frames):
        while live[n - 1] <= t:
            n -= 1
        finite = scores[:n] > NEG_INF
        active = finite
        for s in range(S):
            if sync_free:
                rows = all_rows[: n * K]
            else:
                rows = active.view(-1).nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
            hidden = joint.hidden(enc_proj[rows // K, t], dec_proj[rows])
            if thresholding:
                row_log_probs, row_projected = hat_thresholded_log_probs(joint, hidden, hat_blank_threshold)
            else:
                row_log_probs = joint.log_probs_from_hidden(hidden)
                row_projected = hidden.new_ones(len(rows), dtype=torch.bool)
            if rows.numel() == n * K:  # every row (sync-free, or all hypotheses on the frame)
                log_probs, projected = row_log_probs, row_projected
            else:
                log_probs = torch.full((n * K, V1), NEG_INF, device=device)
                projected = torch.zeros(n * K, dtype=torch.bool, device=device)
                log_probs[rows], projected[rows] = row_log_probs, row_projected
            if fusion is not None:
                log_probs[rows, 1:] += bonus[rows]
            if sync_free:  # only the active rows' expansions count
                log_probs.masked_fill_(~active.view(-1, 1), NEG_INF)
                projected &= active.view(-1)
            if s:  # hypotheses that left the frame earlier compete unchanged
                log_probs[:, 0].masked_fill_((~active & finite).view(-1), 0.0)
            joint_evals[:n] += active.sum(1)
            label_projs[:n] += projected.view(n, K).sum(1)

            candidates = (scores[:n].view(-1, 1) + log_probs).view(n, K * V1)
            top_scores, top_index = candidates.topk(K, dim=1)
            parent, token = top_index // V1, top_index % V1
            emitted = token != 0
            # room for one more label on the longest sequence: the round number bounds the lengths
            # without a look at the device; the selecting path reads their true maximum each round
            width = (t * S + s if sync_free else longest) + 1
            new_labels = labels[:n, :, :width].gather(1, parent.unsqueeze(2).expand(-1, -1, width))
            new_lengths = lengths[:n].gather(1, parent)
            new_labels.scatter_(2, new_lengths.unsqueeze(2), token.unsqueeze(2))
            new_lengths += emitted
            still_active = emitted & (s + 1 < S)
            if expansion_beam != math.inf and s + 1 < S:  # far below the best: no more rounds on this frame
                still_active &= top_scores >= top_scores[:, :1] - expansion_beam
            top_scores, keep = _merge_equal_sequences(top_scores, new_labels, still_active, shortcut=not sync_free)

            source = (torch.arange(n, device=device).unsqueeze(1) * K + parent).view(-1)
            if n == batch:  # every utterance live: the reorder is the whole tensor
                dec_proj = dec_proj[source]
            else:
                dec_proj[: n * K] = dec_proj[source]
            state = gather_prefix(state, source)
            if fusion is not None:
                bonus[: n * K] = bonus[source]
                lm_state = gather_prefix(lm_state, source)
            stepping = (keep & emitted).view(-1)
            step_rows = rows if sync_free else stepping.nonzero().squeeze(1)
            step_mask = stepping if sync_free else None  # sync-free: all rows step, these keep it
            if sync_free or step_rows.numel():
                step_tokens = token.view(-1)[step_rows]
                out, new_state = prediction.step(step_tokens, select(state, step_rows))
                _assign_rows(state, dec_proj, step_rows, new_state, joint.project_decoder(out), step_mask)
                if fusion is not None:
                    lm_log_probs, new_lm_state = fusion.step(step_tokens, select(lm_state, step_rows))
                    new_bonus = fusion.bonus(lm_log_probs, dec_proj[step_rows])
                    _assign_rows(lm_state, bonus, step_rows, new_lm_state, new_bonus, step_mask)
            scores[:n], lengths[:n] = top_scores, new_lengths
            labels[:n, :, :width] = new_labels
            if not sync_free:
                longest = int(new_lengths.max())
            finite = top_scores > NEG_INF
            active = still_active & keep

    if counters is not None:
        counters.joint_evaluations[order.cpu()] += joint_evals.cpu()
        counters.label_projections[order.cpu()] += label_projs.cpu()
    return _nbest_lists(scores.cpu(), labels.cpu(), lengths.cpu(), order.cpu(), nbest)


def _assign_rows(state, outputs, rows, new_state, new_outputs, stepping) -> None:
    """Selecting path (``stepping`` None): ``rows`` are the rows that stepped; sync-free path: all rows,
    ``stepping`` masks the ones that keep their new values (:func:`assign_where`)."""
    if stepping is None:
        assign(state, rows, new_state)
        outputs[rows] = new_outputs
    else:
        assign_where(state, outputs, rows, new_state, new_outputs, stepping)


def _merge_equal_sequences(scores: torch.Tensor, labels: torch.Tensor, active: torch.Tensor, shortcut: bool = True):
    """Merge slots of a row that hold the same label sequence at the same frame position.

    ``scores`` ``(n, K)`` sorted descending per row, ``labels`` ``(n, K, L)`` zero-padded,
    ``active`` ``(n, K)`` (still on the current frame). The first (best) slot of each group
    gets the log-sum-exp of the group; the others become -inf. Sequences are compared
    exactly, element by element. With ``shortcut`` a row set without duplicates returns at
    once (one host synchronisation). Returns ``(merged_scores, is_representative)``.
    """
    finite = scores > NEG_INF
    same = (
        (labels.unsqueeze(2) == labels.unsqueeze(1)).all(-1)
        & (active.unsqueeze(2) == active.unsqueeze(1))
        & finite.unsqueeze(1)
        & finite.unsqueeze(2)
    )
    if shortcut and int(same.sum()) == int(finite.sum()):  # no duplicates: the common case
        return scores, finite
    slots = torch.arange(scores.size(1), device=scores.device)
    first = torch.where(finite, same.int().argmax(-1), -1)  # (n, K) group leader of each slot
    members = first.unsqueeze(1) == slots.view(1, -1, 1)  # (n, leader, member)
    merged = torch.logsumexp(scores.unsqueeze(1).masked_fill(~members, NEG_INF), dim=-1)
    return merged, first == slots


def _nbest_lists(scores, labels, lengths, order, nbest) -> List[List[Hypothesis]]:
    """The ``nbest`` best slots of each utterance, in input order."""
    result: List[List[Hypothesis]] = [[] for _ in range(scores.size(0))]
    for row, b in enumerate(order.tolist()):
        best = scores[row].topk(nbest)
        for score, slot in zip(best.values.tolist(), best.indices.tolist()):
            if score == NEG_INF:
                break
            result[b].append(Hypothesis(labels[row, slot, : int(lengths[row, slot])].tolist(), score))
    return result


@torch.no_grad()
def reference_greedy_search(
    joint: TransducerJoint,
    decoder: torch.nn.Module,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    max_sym_per_frame: int = 4,
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
