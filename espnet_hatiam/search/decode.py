"""The search entry points: encoder output + :class:`SearchConfig` -> n-best lists, for whole utterances
(:func:`decode_encoded`) or for streams received chunk by chunk (:class:`StreamingDecoder`)."""

import functools
from typing import List, Optional

import torch

from espnet_hatiam.errors import InputError
from espnet_hatiam.search.beam import open_beam_search
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters, blank_agreement
from espnet_hatiam.search.frame_skip import iam_frame_skip
from espnet_hatiam.search.greedy import frame_label_counts, open_greedy_search
from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import Hypothesis, TransducerJoint

# ESPnet's per-algorithm settings: its defaults, with 2 expansion steps for nsc and maes.
ESPNET_SEARCH_OPTIONS = {"default": {}, "alsd": {"u_max": 50}, "tsd": {"max_sym_exp": 2},
                         "nsc": {"nstep": 2}, "maes": {"nstep": 2}}


@torch.no_grad()
def decode_encoded(
    joint: TransducerJoint,
    decoder: torch.nn.Module,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    config: SearchConfig,
    counters: Optional[SearchCounters] = None,
    fusion: Optional[RNNLMFusion] = None,
    blank_agreement_pass: bool = True,
) -> List[List[Hypothesis]]:
    """The search ``config.search_type`` names, with IAM frame skipping, on ``(B, T, De)``.

    Returns one n-best list per utterance, best first. ``counters.frames_kept`` loses the frames
    IAM frame skipping drops (the greedy and beam searches skip them as they receive the frames;
    ESPnet's search gets the kept frames); the searches add their joint and projection counts.
    Greedy search with both thresholds off also sets ``counters.blank_agreement`` (frames where the
    IAM and the greedy path agree on blank vs label, docs/METHOD.md section 6): the frames
    each label was emitted on come from the search, the IAM decisions from one batched pass
    after it (the pass frame skipping makes; its time is part of the search's), unless
    ``blank_agreement_pass`` is False (a benchmark that gives every search the same counters).
    """
    if config.search_type == "espnet":
        enc_out, enc_lens = iam_frame_skip(joint, enc_out, enc_lens, config.iam_blank_threshold, counters)
        return espnet_beam_search(joint, decoder, enc_out, enc_lens, config)
    batch, device = enc_out.size(0), enc_out.device
    if config.search_type == "greedy":
        search = open_greedy_search(joint, decoder, config, batch, device, counters)
    else:
        search = open_beam_search(joint, decoder, config, batch, device, counters, fusion)
    search.extend(enc_out, enc_lens)
    if (config.search_type == "greedy" and blank_agreement_pass and counters is not None
            and config.iam_blank_threshold >= 1.0 and config.hat_blank_threshold >= 1.0):
        frame_labels = frame_label_counts(search.label_frames, enc_out.shape[:2])
        counters.blank_agreement = blank_agreement(joint, enc_out, enc_lens, frame_labels)
    return search.nbest()


class StreamingDecoder:
    """:func:`decode_encoded` for B streams whose encoder frames arrive chunk by chunk.

    Each :meth:`extend` feeds the chunk to the resumable search, which skips its IAM-blank frames (a
    per-frame decision: the frames a whole utterance would keep)
    (:func:`~espnet_hatiam.search.beam.open_beam_search` or :func:`~espnet_hatiam.search.greedy.open_greedy_search`);
    :meth:`nbest` gives the partial (after the last chunk, final) n-best lists. ``counters``, if
    given, accumulates over the chunks: ``frames`` and ``frames_kept`` are added (start them at
    0: ``SearchCounters.for_lengths(torch.zeros(B, dtype=torch.long))``), and the search's counts;
    ``blank_agreement`` is not measured. search_type espnet does not stream (``InputError``).
    """

    def __init__(self, joint: TransducerJoint, decoder: torch.nn.Module, config: SearchConfig, batch: int,
                 device: torch.device, counters: Optional[SearchCounters] = None,
                 fusion: Optional[RNNLMFusion] = None):
        if config.search_type not in ("greedy", "beam"):
            raise InputError(f"search option 'search_type' must be greedy or beam to stream, got "
                             f"{config.search_type!r} (ESPnet's BeamSearchTransducer searches whole utterances)")
        self.joint, self.config, self.counters = joint, config.for_joint(joint), counters
        if config.search_type == "greedy":
            self.search = open_greedy_search(joint, decoder, config, batch, device, counters)
        else:
            self.search = open_beam_search(joint, decoder, config, batch, device, counters, fusion)

    @torch.no_grad()
    def extend(self, enc_out: torch.Tensor, enc_lens: torch.Tensor) -> None:
        """Decode each stream's next ``enc_lens[b]`` frames (0 allowed) of the chunk ``enc_out (B, C, De)``."""
        if self.counters is not None:
            self.counters.frames += enc_lens.cpu().long()
            self.counters.frames_kept += enc_lens.cpu().long()  # the search takes off the frames it drops
        self.search.extend(enc_out, enc_lens)

    def nbest(self, nbest: Optional[int] = None) -> List[List[Hypothesis]]:
        """Each stream's ``nbest`` (default ``config.nbest``) best hypotheses so far, best first; changes nothing."""
        return self.search.nbest(nbest)


def espnet_beam_search(joint, decoder, enc_out, enc_lens, config: SearchConfig) -> List[List[Hypothesis]]:
    """ESPnet's ``BeamSearchTransducer`` (``config.espnet_search_type``), one utterance at a time."""
    espnet_search = _espnet_search(decoder, joint, config)
    nbests = []
    for b in range(enc_out.size(0)):
        hyps = espnet_search(enc_out[b, : int(enc_lens[b])])
        nbests.append([Hypothesis([int(i) for i in h.yseq[1:] if i != 0], float(h.score)) for h in hyps])
    return nbests


@functools.lru_cache(maxsize=16)
def _espnet_search(decoder, joint, config: SearchConfig):
    """ESPnet's ``BeamSearchTransducer`` for a model and config, built once (not in each call's time)."""
    from espnet2.asr.transducer.beam_search_transducer import BeamSearchTransducer

    return BeamSearchTransducer(
        decoder=decoder, joint_network=joint, beam_size=config.beam_size, nbest=config.nbest,
        search_type=config.espnet_search_type, score_norm=False,
        **ESPNET_SEARCH_OPTIONS[config.espnet_search_type],
    )
