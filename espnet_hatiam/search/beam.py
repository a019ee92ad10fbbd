"""Batched time-synchronous transducer beam search ("modified beam search", as in icefall)."""

from typing import List, Optional

import torch

from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.greedy import _check_threshold
from espnet_hatiam.search.hypothesis import Hypothesis
from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.prediction import PredictionNetwork

_HASH_PRIME = 1_000_003  # rolling hash of label sequences; int64 wrap-around is intended


@torch.no_grad()
def modified_beam_search(
    joint: torch.nn.Module,
    decoder: torch.nn.Module,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    beam_size: int = 4,
    nbest: int = 1,
    hat_blank_threshold: float = 1.0,
    counters: Optional[SearchCounters] = None,
    fusion: Optional[RNNLMFusion] = None,
) -> List[List[Hypothesis]]:
    """Beam search with at most one label per frame, batched over utterances and beams.

    The beam of every utterance is a row of a ``(B, K)`` score tensor (``-inf`` marks an
    empty slot); prediction-network states and projected outputs are ``(B*K, ...)``.
    Per frame: one joint hidden for all live hypotheses, their blank scores, the label
    projection for those below ``hat_blank_threshold`` (one gathered matmul), top-K
    over the ``K*(V+1)`` extensions of each utterance, merging of extensions with equal
    label sequences (log-sum-exp of their scores), and one prediction-network step for
    the hypotheses that just emitted a label. Utterances are sorted by length so the live
    ones are a prefix of the batch.

    Args:
        joint, decoder: as in :func:`greedy_search`.
        enc_out: ``(B, T, De)``; enc_lens: ``(B,)``.
        beam_size: K.
        nbest: hypotheses returned per utterance (<= K).
        hat_blank_threshold: theta_HAT; >= 1 disables it.
        counters: if given, ``joint_evaluations``/``label_projections`` are added to it.
        fusion: external LM shallow fusion with ILM subtraction; its label bonuses are
            added to the label scores (and so to the hypothesis scores).

    Returns:
        For each utterance in input order, up to ``nbest`` hypotheses, best first.
    """
    thresholding = _check_threshold(joint, hat_blank_threshold)
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be in [1, beam_size={beam_size}], got {nbest}")
    device = enc_out.device
    batch, K, V1 = enc_out.size(0), beam_size, joint.vocab_size
    lens, order = enc_lens.sort(descending=True)
    enc_proj = joint.project_encoder(enc_out[order])
    prediction = PredictionNetwork(decoder)
    dec_out, state = prediction.initial(batch * K, device)
    dec_proj = joint.project_decoder(dec_out)
    if fusion is not None:
        lm_log_probs, lm_state = fusion.initial(batch * K, device)
        bonus = fusion.bonus(lm_log_probs, dec_proj)  # (B*K, V), follows each slot like dec_proj

    scores = torch.full((batch, K), float("-inf"), device=device)
    scores[:, 0] = 0.0
    seq_hash = torch.zeros(batch, K, dtype=torch.long, device=device)
    parents, emitted = [], []  # per frame (n_t, K): source slot and token (0 = blank)
    joint_evals = torch.zeros(batch, dtype=torch.long)
    label_projs = torch.zeros(batch, dtype=torch.long)

    for t in range(int(lens[0]) if batch else 0):
        n = int((lens > t).sum())
        live = (scores[:n] > float("-inf")).view(-1)
        rows = live.nonzero().squeeze(1)
        hidden = joint.hidden(enc_proj[rows // K, t], dec_proj[rows])
        log_probs = torch.full((n * K, V1), float("-inf"), device=device)
        if thresholding:
            blank_logit = joint.blank_logit(hidden)
            log_probs[rows, 0] = torch.nn.functional.logsigmoid(blank_logit)
            need = (torch.sigmoid(blank_logit) < hat_blank_threshold).nonzero().squeeze(1)
            log_probs[rows[need], 1:] = joint.label_log_probs(hidden[need], blank_logit[need])
            projected = rows[need]
        else:
            log_probs[rows] = joint.log_probs_from_hidden(hidden)
            projected = rows
        if fusion is not None:
            log_probs[rows, 1:] += bonus[rows]
        joint_evals[:n] += live.view(n, K).sum(1).cpu()
        label_projs[:n] += torch.bincount(projected // K, minlength=n).cpu()

        candidates = (scores[:n].view(-1, 1) + log_probs).view(n, K * V1)
        top_scores, top_index = candidates.topk(K, dim=1)
        parent, token = top_index // V1, top_index % V1
        parent_hash = seq_hash[:n].gather(1, parent)
        new_hash = torch.where(token == 0, parent_hash, parent_hash * _HASH_PRIME + token)
        top_scores, keep = _merge_equal_sequences(top_scores, new_hash)

        source = (torch.arange(n, device=device).unsqueeze(1) * K + parent).view(-1)
        dec_proj[: n * K] = dec_proj[source]
        state = _gather_prefix(state, source)
        if fusion is not None:
            bonus[: n * K] = bonus[source]
            lm_state = _gather_prefix(lm_state, source)
        step_rows = (keep & (token != 0)).view(-1).nonzero().squeeze(1)
        if step_rows.numel():
            step_tokens = token.view(-1)[step_rows]
            out, new_state = prediction.step(step_tokens, prediction.select(state, step_rows))
            prediction.assign(state, step_rows, new_state)
            dec_proj[step_rows] = joint.project_decoder(out)
            if fusion is not None:
                lm_log_probs, new_lm_state = fusion.step(step_tokens, prediction.select(lm_state, step_rows))
                prediction.assign(lm_state, step_rows, new_lm_state)
                bonus[step_rows] = fusion.bonus(lm_log_probs, dec_proj[step_rows])
        scores[:n], seq_hash[:n] = top_scores, new_hash
        parents.append(parent.cpu().numpy())
        emitted.append(token.cpu().numpy())

    if counters is not None:
        counters.joint_evaluations[order.cpu()] += joint_evals
        counters.label_projections[order.cpu()] += label_projs
    return _backtrack(scores.cpu(), parents, emitted, lens.cpu(), order.cpu(), nbest)


def _merge_equal_sequences(scores: torch.Tensor, seq_hash: torch.Tensor):
    """Merge slots of a row that hold the same label sequence.

    ``scores`` ``(n, K)`` sorted descending per row, ``seq_hash`` ``(n, K)``. The first
    (best) slot of each group gets the log-sum-exp of the group; the others become -inf.
    Returns ``(merged_scores, is_representative)``.
    """
    finite = scores > float("-inf")
    same = (seq_hash.unsqueeze(2) == seq_hash.unsqueeze(1)) & finite.unsqueeze(1) & finite.unsqueeze(2)
    if int(same.sum()) == int(finite.sum()):  # no duplicates: the common case
        return scores, finite
    slots = torch.arange(scores.size(1), device=scores.device)
    first = torch.where(finite, same.int().argmax(-1), -1)  # (n, K) group leader of each slot
    members = first.unsqueeze(1) == slots.view(1, -1, 1)  # (n, leader, member)
    merged = torch.logsumexp(scores.unsqueeze(1).masked_fill(~members, float("-inf")), dim=-1)
    return merged, first == slots


def _gather_prefix(state, source: torch.Tensor):
    """Rows ``source`` of the state moved to rows ``0..len(source)-1`` (others unchanged)."""
    h, c = state
    h = h.clone()
    h[:, : source.numel()] = h[:, source]
    if c is not None:
        c = c.clone()
        c[:, : source.numel()] = c[:, source]
    return h, c


def _backtrack(scores, parents, emitted, lens, order, nbest) -> List[List[Hypothesis]]:
    """Label sequences of the ``nbest`` best slots of each utterance from the per-frame tables."""
    result: List[List[Hypothesis]] = [[] for _ in range(scores.size(0))]
    for row, b in enumerate(order.tolist()):
        best = scores[row].topk(nbest)
        for score, slot in zip(best.values.tolist(), best.indices.tolist()):
            if score == float("-inf"):
                break
            labels = []
            for t in range(int(lens[row]) - 1, -1, -1):
                token = int(emitted[t][row, slot])
                if token:
                    labels.append(token)
                slot = int(parents[t][row, slot])
            result[b].append(Hypothesis(labels[::-1], score))
    return result
