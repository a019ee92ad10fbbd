"""Batched time-synchronous transducer beam search (icefall's "modified beam search",
extended to several labels per frame), with HAT-blank thresholding over blank-certain runs."""

import math
from typing import List, Optional

import torch

from espnet_hatiam.search.beam_state import NEG_INF, EncodedFrames, HostBeam, MaskedBeam
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

    The beam is a :class:`~espnet_hatiam.search.beam_state.BeamState` of B x K rows. Each utterance has its own frame pointer.
    A frame is searched in up to S rounds; a round reads as expand -> top-k -> merge -> advance:
    the hypotheses still on the frame ("active") get the joint's V+1 log-probs (one product),
    the others compete unchanged (blank at no cost); top-K of each utterance's K x (V+1)
    candidates (one flattened top-k: hypothesis and token by // and %); a label keeps a candidate
    on the frame for the next round (until its S-th label, or while it is within
    ``expansion_beam`` nats of its utterance's best), blank moves it on; candidates with equal
    label sequences and the same frame position are merged (log-sum-exp, exact comparison of
    the sequences); the prediction network (and LM) steps on the rows that emitted.

    With ``hat_blank_threshold`` theta < 1 (HAT joint), a label candidate exists only where
    P(blank) < theta; and before a frame (the selecting plan: only after a frame on which no kept
    hypothesis emitted) the blank logits of the next W frames are computed for the utterance's K
    (unchanged) states at once: the leading frames where every hypothesis
    has P(blank) >= theta are passed with their blank log-probs added
    (:func:`~espnet_hatiam.search.frame_skip.blank_certain_run`), the frame-by-frame search's
    hypotheses and scores in one step; the round-0 joint hidden of the first uncertain frame
    comes from that window. ``row_plan`` (:attr:`SearchConfig.row_plan`) chooses the state: the
    selecting plan's :class:`~espnet_hatiam.search.beam_state.HostBeam` (the merge and the choice of
    rows on the host; a frame's rounds end when no row is on it) or the masked plan's
    :class:`~espnet_hatiam.search.beam_state.MaskedBeam` (no host synchronisation in the frame
    loop); same hypotheses.

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
    masked, device = config.masks_rows(enc_out.device), enc_out.device
    (batch, frames), K, S, V1 = enc_out.shape[:2], beam_size, max_sym_per_frame, joint.vocab_size
    rows, bound = batch * K, blank_logit_bound(hat_blank_threshold)
    windowed = bound < math.inf
    weight, bias = joint.output_layer()
    weight_t = weight.t()
    carried = torch.full((1, V1), NEG_INF, device=device)
    carried[0, 0] = 0.0  # the log-probs of a hypothesis off the frame: it competes unchanged
    encoded = EncodedFrames(joint, enc_out, enc_lens, WINDOW if windowed else 1)
    prediction = PredictionNetwork(decoder)
    state_args = (joint, prediction, fusion, batch, K, device)
    beam = MaskedBeam(*state_args, max_labels=frames * S + 1) if masked else HostBeam(*state_args)
    t = torch.zeros(batch, 1, dtype=torch.long, device=device)  # each utterance's frame pointer
    window_rows = torch.arange(rows, device=device) * WINDOW
    rounds, window_evaluations, visited = [], [], []  # counted on the device, summed once

    for step in range(frames):  # each step moves every live pointer on by at least one frame
        # pass the blank-certain run, then search the first uncertain frame; the selecting plan looks ahead
        # only after a frame on which no hypothesis emitted (a run rarely follows a label; any frame
        # searched instead of passed gets the same result)
        if windowed and (masked or not beam.emitted):
            window, valid = encoded.window(t)
            hiddens = joint.hidden(window.unsqueeze(1), beam.dec_proj.view(batch, K, 1, -1))  # (B, K, W, J)
            blank_logits = torch.addmv(bias[0], hiddens.view(-1, hiddens.size(-1)), weight[0]).view(batch, K, -1)
            run, _, blank = blank_certain_run(blank_logits, bound, valid, beam.scores.view(batch, K, 1) == NEG_INF)
            window_evaluations.append(valid)
            beam.scores = beam.scores + blank.view(rows, 1)
            t = t + run
            at_frame = (t < encoded.lens) & (run < WINDOW)
            hidden = hiddens.view(rows * WINDOW, -1)[window_rows + run.clamp(max=WINDOW - 1).repeat_interleave(K)]
            from_window = True
        else:
            at_frame, hidden, from_window = t < encoded.lens, None, False
        visited.append(at_frame)
        on_frame = beam.start_frame(at_frame)
        if not masked and not any(on_frame):
            if windowed and bool((t < encoded.lens).any()):
                continue
            break
        enc_t = encoded.at(t, K)
        for s in range(S):
            hidden = joint.hidden(enc_t, beam.dec_proj) if hidden is None else hidden
            logits = torch.addmm(bias, hidden, weight_t)  # (R, V+1), blank logit first
            log_probs = joint.log_probs_from_logits(logits)
            if not beam.all_active:
                log_probs = torch.where(beam.active, log_probs, carried)
            certain = None
            if windowed:  # no label candidates where P(blank) >= theta
                certain = logits[:, :1] >= bound
                log_probs[:, 1:].masked_fill_(certain, NEG_INF)
            if fusion is not None:
                log_probs[:, 1:] += beam.bonus
            rounds.append((beam.active, certain, s == 0 and from_window))
            top, index = (beam.scores + log_probs).view(batch, K * V1).topk(K)
            if not beam.choose(top, index, s + 1 < S, expansion_beam):
                break
            hidden = None
        t = t + at_frame

    if counters is not None:
        _count(counters, rounds, window_evaluations, visited, batch, K)
    return [[Hypothesis(labels, score) for labels, score in nbest_list] for nbest_list in beam.nbest(nbest)]


def _count(counters: SearchCounters, rounds, window_evaluations, visited, batch: int, K: int) -> None:
    """Add the joint evaluations (window frames and rounds, but round 0 after a window, whose joint hidden
    came from it), label projections and frames searched to ``counters``, per utterance."""
    if not visited:
        return
    evaluations = torch.zeros(batch, 1, dtype=torch.long, device=visited[0].device)
    projections = torch.zeros_like(evaluations)
    for valid in window_evaluations:
        evaluations += K * valid.sum(1, keepdim=True)
    for active, certain, from_window in rounds:
        needed = active if certain is None else active & ~certain
        projections += needed.view(batch, K).sum(1, keepdim=True)
        if not from_window:
            evaluations += active.view(batch, K).sum(1, keepdim=True)
    counters.joint_evaluations += evaluations.view(-1).cpu()
    counters.label_projections += projections.view(-1).cpu()
    counters.frames_searched += torch.stack(visited).sum(0).view(-1).cpu()


