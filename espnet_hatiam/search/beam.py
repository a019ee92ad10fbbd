"""Batched time-synchronous transducer beam search (icefall's "modified beam search",
extended to several labels per frame), with HAT-blank thresholding over blank-certain runs."""

import math
from typing import List, Optional

import torch

from espnet_hatiam.search.beam_state import NEG_INF, BeamState, EncodedFrames
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.frame_skip import WINDOW, blank_certain_run, blank_logit_bound
from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import Hypothesis, PredictionNetwork, TransducerJoint


@torch.no_grad()
def modified_beam_search(
    joint: TransducerJoint,
    decoder: torch.nn.Module,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    beam_size: int = SearchConfig.beam_size,
    nbest: int = 1,
    max_sym_per_frame: int = SearchConfig.max_sym_per_frame,
    hat_blank_threshold: float = 1.0,
    counters: Optional[SearchCounters] = None,
    fusion: Optional[RNNLMFusion] = None,
    row_plan: str = SearchConfig.row_plan,
    expansion_beam: float = SearchConfig.expansion_beam,
) -> List[List[Hypothesis]]:
    """Beam search with up to S = ``max_sym_per_frame`` labels per frame, batched over utterances and beams.

    The beam is a :class:`BeamState` of B x K rows. Each utterance has its own frame pointer.
    A frame is searched in up to S rounds; a round reads as expand -> top-k -> merge -> advance:
    the hypotheses still on the frame ("active") get the joint's V+1 log-probs (one product),
    the others compete unchanged (blank at no cost); top-K of each utterance's K x (V+1)
    candidates (one flattened top-k: hypothesis and token by // and %); a label keeps a candidate
    on the frame for the next round (until its S-th label, or while it is within
    ``expansion_beam`` nats of its utterance's best), blank moves it on; candidates with equal
    label sequences and the same frame position are merged (log-sum-exp, exact comparison of
    the sequences); the prediction network (and LM) steps on the rows that emitted.

    With ``hat_blank_threshold`` theta < 1 (HAT joint), a label candidate exists only where
    P(blank) < theta; and before each frame the blank logits of the next W frames are computed
    for the utterance's K (unchanged) states at once: the leading frames where every hypothesis
    has P(blank) >= theta are passed with their blank log-probs added
    (:func:`~espnet_hatiam.search.frame_skip.blank_certain_run`), the frame-by-frame search's
    hypotheses and scores in one step; the round-0 joint hidden of the first uncertain frame
    comes from that window. ``row_plan`` (:attr:`SearchConfig.row_plan`) chooses the selecting
    plan (host reads end a frame's rounds early and select the rows the prediction network steps)
    or the masked one (no host synchronisation in the frame loop); same hypotheses.

    Args:
        joint: HAT or RNN-T joint; decoder: ESPnet ``TransducerDecoder``.
        enc_out: ``(B, T, De)``; enc_lens: ``(B,)``.
        beam_size: K; nbest: hypotheses returned per utterance (<= K).
        counters: if given, ``joint_evaluations``, ``label_projections`` and ``frames_searched`` are added to it.
        fusion: external LM shallow fusion with ILM subtraction; its label bonuses are added to the label scores.

    Returns:
        For each utterance in input order, up to ``nbest`` hypotheses, best first.
    """
    config = SearchConfig(beam_size=beam_size, nbest=nbest, max_sym_per_frame=max_sym_per_frame,
                          hat_blank_threshold=hat_blank_threshold, expansion_beam=expansion_beam,
                          row_plan=row_plan).for_joint(joint)
    select, device = not config.masks_rows(enc_out.device), enc_out.device
    (batch, frames), K, S, V1 = enc_out.shape[:2], beam_size, max_sym_per_frame, joint.vocab_size
    rows, bound = batch * K, blank_logit_bound(hat_blank_threshold)
    windowed = bound < math.inf
    weight, bias = joint.output_layer()
    weight_t = weight.t()
    encoded = EncodedFrames(joint, enc_out, enc_lens, WINDOW if windowed else 1)
    prediction = PredictionNetwork(decoder)
    beam = BeamState.initial(joint, prediction, fusion, batch, K, frames * S + 1, device)
    slots = torch.arange(K, device=device)
    later_slot = slots.view(K, 1) > slots  # (K, K): slot i after slot j
    first_row = (torch.arange(batch, device=device) * K).view(batch, 1)
    t = torch.zeros(batch, 1, dtype=torch.long, device=device)  # each utterance's frame pointer
    evaluations = torch.zeros(rows, 1, dtype=torch.long, device=device)  # counted on the device, copied once
    projections, visited = torch.zeros_like(evaluations), torch.zeros(batch, 1, dtype=torch.long, device=device)

    for step in range(frames):  # each step moves every live pointer on by at least one frame
        if windowed:  # pass the blank-certain run, then search the first uncertain frame
            window, valid = encoded.window(t)
            hiddens = joint.hidden(window.unsqueeze(1), beam.dec_proj.view(batch, K, 1, -1))  # (B, K, W, J)
            blank_logits = torch.addmv(bias[0], hiddens.view(-1, hiddens.size(-1)), weight[0]).view(batch, K, -1)
            evaluations += valid.sum(1, keepdim=True).repeat_interleave(K, 0)
            run, _, blank = blank_certain_run(blank_logits, bound, valid, beam.scores.view(batch, K, 1) == NEG_INF)
            beam.scores = beam.scores + blank.view(rows, 1)
            t = t + run
            at_frame = (t < encoded.lens) & (run < WINDOW)
            hidden = hiddens.view(rows * WINDOW, -1)[torch.arange(rows, device=device) * WINDOW
                                                       + run.clamp(max=WINDOW - 1).repeat_interleave(K)]
        else:
            at_frame = t < encoded.lens
            hidden = None
        if select and not at_frame.any():
            if windowed and (t < encoded.lens).any():
                continue
            break
        visited += at_frame
        enc_t = encoded.at(t, K)
        active = at_frame.repeat_interleave(K, 0) & (beam.scores > NEG_INF)  # (R, 1)
        for s in range(S):
            width = min(beam.labels.size(1), step * S + s + 1)  # room for this round's label
            hidden = joint.hidden(enc_t, beam.dec_proj) if hidden is None else hidden
            logits = torch.addmm(bias, hidden, weight_t)  # (R, V+1), blank logit first
            log_probs = joint.log_probs_from_logits(logits)
            inactive = ~active
            no_labels = inactive | (logits[:, :1] >= bound) if windowed else inactive
            log_probs[:, 1:].masked_fill_(no_labels, NEG_INF)
            log_probs[:, :1].masked_fill_(inactive, 0.0)  # those off the frame compete unchanged
            if fusion is not None:
                log_probs[:, 1:] += beam.bonus
            if s or not windowed:  # round 0's joint hidden came from the window (counted there)
                evaluations += active
            projections += ~no_labels

            top, index = (beam.scores + log_probs).view(batch, K * V1).topk(K)
            parent, token = index // V1, (index % V1).view(rows, 1)
            emitted = token != 0
            stays = emitted if s + 1 < S else torch.zeros_like(emitted)
            if s + 1 < S and expansion_beam != math.inf:  # far below the best: no more rounds on this frame
                stays = stays & (top >= top[:, :1] - expansion_beam).view(rows, 1)
            labels = beam.reorder((parent + first_row).view(rows), token, width)
            beam.scores, keep = _merge_equal_sequences(top, labels.view(batch, K, width), stays.view(batch, K),
                                                       later_slot)
            beam.advance(joint, prediction, fusion, token, keep & emitted, select)
            active = stays & keep
            hidden = None
            if select and not active.any():
                break
        t = t + at_frame

    if counters is not None:
        counters.joint_evaluations += evaluations.view(batch, K).sum(1).cpu()
        counters.label_projections += projections.view(batch, K).sum(1).cpu()
        counters.frames_searched += visited.view(batch).cpu()
    return _nbest_lists(beam, batch, K, nbest)


def _merge_equal_sequences(scores: torch.Tensor, labels: torch.Tensor, active: torch.Tensor,
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


def _nbest_lists(beam: BeamState, batch: int, K: int, nbest: int) -> List[List[Hypothesis]]:
    """The ``nbest`` best slots of each utterance, in input order."""
    scores, labels, lengths = beam.scores.view(batch, K).cpu(), beam.labels.cpu(), beam.lengths.view(-1).tolist()
    result: List[List[Hypothesis]] = []
    for b in range(batch):
        best = scores[b].topk(nbest)
        result.append([Hypothesis(labels[b * K + k, : lengths[b * K + k]].tolist(), score)
                       for score, k in zip(best.values.tolist(), best.indices.tolist()) if score > NEG_INF])
    return result
