"""Batched time-synchronous transducer beam search (icefall's "modified beam search",
extended to several labels per frame), with HAT-blank thresholding over blank-certain runs:
:class:`BeamSearch` over a stream's chunks of encoder frames, :func:`modified_beam_search` over whole utterances."""

import math
from typing import List, Optional

import torch

from espnet_hatiam.search.beam_state import NEG_INF, EncodedFrames, HostBeam, MaskedBeam
from espnet_hatiam.search.compiled import CompiledBeamSearch
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.frame_skip import WINDOW, WindowBackoff, blank_certain_run, blank_logit_bound, iam_frame_skip
from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import Hypothesis, PredictionNetwork, TransducerJoint, chunk_frames


@torch.inference_mode()
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
    hypothesis emitted, and not while :class:`~espnet_hatiam.search.frame_skip.WindowBackoff` waits
    after windows that settled nothing) the blank logits of the next W frames are computed for the utterance's K
    (unchanged) states at once: the leading frames where every hypothesis
    has P(blank) >= theta are passed with their blank log-probs added
    (:func:`~espnet_hatiam.search.frame_skip.blank_certain_run`), the frame-by-frame search's
    hypotheses and scores in one step; the round-0 joint hidden of the first uncertain frame
    comes from that window. ``row_plan`` (:attr:`SearchConfig.row_plan`) chooses the state: the
    selecting plan's :class:`~espnet_hatiam.search.beam_state.HostBeam` (the merge and the choice of
    rows on the host; a frame's rounds end when no row is on it) or the masked plan's
    :class:`~espnet_hatiam.search.beam_state.MaskedBeam` (no host synchronisation in the frame
    loop); same hypotheses; or the compiled plan
    (:class:`~espnet_hatiam.search.compiled.CompiledBeamSearch`: the selecting plan's algorithm
    as one compiled loop per stream, frame by frame, the hypotheses up to float rounding). One
    ``extend`` of :func:`open_beam_search`'s search over all the frames.

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
                          hat_blank_threshold=hat_blank_threshold, expansion_beam=expansion_beam, row_plan=row_plan)
    search = open_beam_search(joint, decoder, config, enc_out.size(0), enc_out.device, counters, fusion)
    search.extend(enc_out, enc_lens)
    return search.nbest(nbest)


def open_beam_search(joint: TransducerJoint, decoder: torch.nn.Module, config: SearchConfig, batch: int,
                     device: torch.device, counters: Optional[SearchCounters] = None,
                     fusion: Optional[RNNLMFusion] = None):
    """The resumable beam search of ``config.row_plan``: :class:`BeamSearch` (select or mask) or
    :class:`~espnet_hatiam.search.compiled.CompiledBeamSearch` (compiled); both have ``extend`` and ``nbest``."""
    config = config.for_joint(joint)
    if config.compiles(joint, decoder, device, fusion is not None):
        return CompiledBeamSearch(joint, decoder, config, batch, counters)
    return BeamSearch(joint, decoder, config, batch, device, counters, fusion)


class BeamSearch:
    """:func:`modified_beam_search` of B streams, resumable over chunks of encoder frames.

    :meth:`extend` searches each stream's new frames from where the last chunk ended; a
    blank-certain run ends at the last frame received (the frames not received are not valid in
    the window) and the next chunk's window starts there, so an extend searches every frame it
    receives and nothing but the beam is carried between chunks: a chunk's projected frames
    (:class:`~espnet_hatiam.search.beam_state.EncodedFrames`) are dropped when its extend returns.
    The hypotheses over chunks are those of one extend over all the frames, the scores up to the
    order of the additions (a run cut at a chunk's end is summed in two parts); the cut windows
    change ``joint_evaluations`` (and, in the selecting plan, which blank-certain frames are
    searched instead of passed: ``frames_searched``). The masked plan reads the label lengths
    once before each later chunk (:meth:`~espnet_hatiam.search.beam_state.MaskedBeam.reserve`).
    :meth:`nbest` may be read after any extend; the last one's is the final result (nothing to finish).

    Args:
        config: ``beam_size``, ``nbest``, ``max_sym_per_frame``, ``hat_blank_threshold``,
            ``expansion_beam`` and ``row_plan`` (the other options are not the search's).
        batch: B streams; device: where the search runs (the chunks' device).
        counters: if given, each extend adds its ``joint_evaluations``, ``label_projections`` and
            ``frames_searched``. fusion: as in :func:`modified_beam_search`.
    """

    def __init__(self, joint: TransducerJoint, decoder: torch.nn.Module, config: SearchConfig, batch: int,
                 device: torch.device, counters: Optional[SearchCounters] = None,
                 fusion: Optional[RNNLMFusion] = None):
        self.config, self.joint, self.counters, self.fusion = config.for_joint(joint), joint, counters, fusion
        self.masked = config.masks_rows(device)
        self.bound = blank_logit_bound(config.hat_blank_threshold)
        self.windowed = self.bound < math.inf
        self.weight, self.bias = joint.output_layer()
        self.carried = torch.full((1, joint.vocab_size), NEG_INF, device=device)
        self.carried[0, 0] = 0.0  # the log-probs of a hypothesis off the frame: it competes unchanged
        state_args = (joint, PredictionNetwork(decoder), fusion, batch, config.beam_size, device)
        self.beam = MaskedBeam(*state_args) if self.masked else HostBeam(*state_args)
        self.window_rows = torch.arange(self.beam.rows, device=device) * WINDOW
        self.backoff = WindowBackoff()  # the selecting plan's windows, kept over a stream's chunks

    @torch.inference_mode()
    def extend(self, enc_out: torch.Tensor, enc_lens: torch.Tensor) -> None:
        """Search each stream's next ``enc_lens[b]`` frames (0 allowed) of the chunk ``enc_out (B, C, De)``."""
        if chunk_frames(enc_out, self.beam.batch) == 0:
            return
        enc_out, enc_lens = iam_frame_skip(self.joint, enc_out, enc_lens, self.config.iam_blank_threshold,
                                           self.counters)
        frames = enc_out.size(1)
        if frames == 0:
            return
        beam, joint, fusion, windowed, masked, bound = (self.beam, self.joint, self.fusion, self.windowed,
                                                        self.masked, self.bound)
        batch, K, S, rows = beam.batch, beam.beam, self.config.max_sym_per_frame, beam.rows
        expansion_beam, weight, bias, window_rows = self.config.expansion_beam, self.weight, self.bias, self.window_rows
        weight_t = weight.t()
        if masked:
            beam.reserve(frames * S)
        encoded = EncodedFrames(joint, enc_out, enc_lens, WINDOW if windowed else 1)
        t = torch.zeros(batch, 1, dtype=torch.long, device=enc_out.device)  # each stream's frame pointer
        rounds, window_evaluations, visited = [], [], []  # counted on the device, summed once

        for step in range(frames):  # each step moves every live pointer on by at least one frame
            # pass the blank-certain run, then search the first uncertain frame; the selecting plan looks ahead
            # only after a frame on which no hypothesis emitted (a run rarely follows a label), backing off after
            # windows that settled nothing (any frame searched instead of passed gets the same result)
            if windowed and (masked or (not beam.emitted and self.backoff.due())):
                window, valid = encoded.window(t)
                hiddens = joint.hidden(window.unsqueeze(1), beam.dec_proj.view(batch, K, 1, -1))  # (B, K, W, J)
                blank_logits = torch.addmv(bias[0], hiddens.view(-1, hiddens.size(-1)), weight[0]).view(batch, K, -1)
                run, _, blank = blank_certain_run(blank_logits, bound, valid, beam.scores.view(batch, K, 1) == NEG_INF)
                window_evaluations.append(valid)
                beam.scores = beam.scores + blank.view(rows, 1)
                t = t + run
                if not masked:
                    self.backoff.settled(run)
                at_frame = (t < encoded.lens) & (run < WINDOW)
                hidden = hiddens.view(rows * WINDOW, -1)[window_rows + run.clamp(max=WINDOW - 1).expand(batch, K).reshape(rows)]
                from_window = True
            else:
                at_frame, hidden, from_window = t < encoded.lens, None, False
            visited.append(at_frame)
            on_frame = beam.start_frame(at_frame)
            if not masked and not any(on_frame):
                if windowed and bool((t < encoded.lens).any()):
                    continue
                break
            enc_t = encoded.at(t)  # (B, 1, J)
            for s in range(S):
                if hidden is None:
                    hidden = joint.hidden(enc_t, beam.dec_proj.view(batch, K, -1)).view(rows, -1)
                logits = torch.addmm(bias, hidden, weight_t)  # (R, V+1), blank logit first
                if windowed:  # no label candidates where P(blank) >= theta
                    log_probs, certain = joint.thresholded_log_probs(logits, bound)
                else:
                    log_probs, certain = joint.log_probs_from_logits(logits), None
                if not beam.all_active:
                    log_probs = torch.where(beam.active, log_probs, self.carried)
                if fusion is not None:
                    log_probs[:, 1:] += beam.bonus
                rounds.append((beam.active, certain, s == 0 and from_window))
                top, index = (beam.scores + log_probs).view(batch, K * joint.vocab_size).topk(K)
                if not beam.choose(top, index, s + 1 < S, expansion_beam):
                    break
                hidden = None
            t = t + at_frame

        if self.counters is not None:
            _count(self.counters, rounds, window_evaluations, visited, batch, K)

    def nbest(self, nbest: Optional[int] = None) -> List[List[Hypothesis]]:
        """Each stream's ``nbest`` (default ``config.nbest``) best hypotheses so far, best first; changes nothing."""
        n = self.config.nbest if nbest is None else nbest
        return [[Hypothesis(labels, score) for labels, score in nbest_list] for nbest_list in self.beam.nbest(n)]


def _count(counters: SearchCounters, rounds, window_evaluations, visited, batch: int, K: int) -> None:
    """Add the joint evaluations (window frames and rounds, but round 0 after a window, whose joint hidden
    came from it), label projections and frames searched to ``counters``, per utterance: a few stacked
    reductions after the loop, not operations in each round."""
    if not visited:
        return
    evaluations = torch.zeros(batch, dtype=torch.long, device=visited[0].device)
    projections = torch.zeros_like(evaluations)
    if window_evaluations:
        evaluations += K * torch.stack(window_evaluations).sum((0, 2))
    if rounds:
        active = torch.stack([a for a, _, _ in rounds]).view(len(rounds), batch, K)  # (N, B, K)
        needed = active
        if rounds[0][1] is not None:  # thresholded: rows whose labels were allowed
            needed = active & ~torch.stack([c for _, c, _ in rounds]).view(len(rounds), batch, K)
        projections += needed.sum((0, 2))
        own_hidden = torch.tensor([not from_window for _, _, from_window in rounds], device=active.device)
        evaluations += (active.sum(2) * own_hidden.view(-1, 1)).sum(0)
    counters.joint_evaluations += evaluations.cpu()
    counters.label_projections += projections.cpu()
    counters.frames_searched += torch.stack(visited).sum(0).view(-1).cpu()
