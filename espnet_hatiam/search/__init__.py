"""Transducer searches over a HAT (or RNN-T) joint with IAM frame skipping and HAT-blank thresholding."""

from espnet_hatiam.search.beam import modified_beam_search
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.frame_skip import iam_frame_skip
from espnet_hatiam.search.greedy import greedy_search
from espnet_hatiam.search.hypothesis import Hypothesis
from espnet_hatiam.search.lm_fusion import RNNLMFusion

__all__ = ["Hypothesis", "RNNLMFusion", "SearchCounters", "greedy_search", "iam_frame_skip", "modified_beam_search"]
