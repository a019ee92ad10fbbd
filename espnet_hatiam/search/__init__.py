"""Transducer searches over a HAT (or RNN-T) joint with IAM frame skipping and HAT-blank thresholding.

:func:`decode_encoded` is the entry point (:class:`StreamingDecoder` for streams received chunk by chunk);
:class:`SearchConfig` owns every decoding option.
"""

from espnet_hatiam.search.beam import BeamSearch, modified_beam_search
from espnet_hatiam.search.beam_state import BeamState
from espnet_hatiam.search.config import SearchConfig
from espnet_hatiam.search.counters import SearchCounters
from espnet_hatiam.search.decode import StreamingDecoder, decode_encoded
from espnet_hatiam.search.frame_skip import iam_frame_skip
from espnet_hatiam.search.greedy import GreedySearch, greedy_search
from espnet_hatiam.search.lm_fusion import RNNLMFusion
from espnet_hatiam.search.state import Hypothesis

__all__ = [
    "BeamSearch", "BeamState", "GreedySearch", "Hypothesis", "RNNLMFusion", "SearchConfig", "SearchCounters",
    "StreamingDecoder", "decode_encoded", "greedy_search", "iam_frame_skip", "modified_beam_search",
]
