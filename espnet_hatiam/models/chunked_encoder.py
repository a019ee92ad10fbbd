"""A conformer that can run chunk by chunk: ESPnet2's ``ConformerEncoder`` with chunked attention.

Training (WeNet's and ESPnet ``asr_transducer``'s dynamic chunk training, its ``make_chunk_mask``):
each batch draws a chunk size C; frame i (after subsampling) attends to the frames of its own chunk
and of ``num_left_chunks`` chunks before it (-1: all of them), never to a later chunk. The conformer's
depthwise convolution is causal (it reads the k - 1 frames before a frame, none after). ESPnet2's
``ConformerEncoder`` is kept as it is (its layers, parameter names and checkpoints); the chunk mask
enters as the attention mask of its layers. :class:`EncoderStream` then encodes features as they
arrive, equal to :meth:`ChunkedConformerEncoder.forward` under the same chunk mask.

Why not ESPnet's ``asr_transducer`` encoder: it is a separate encoder family (its own blocks,
positional encoding and model class), and its ``chunk_forward`` trims frames at the chunk edges,
so a stream is not equal to the whole-utterance encoding; this project's models, checkpoints and
batch-invariance hooks are built on ESPnet2's conformer.
"""

import copy
import math
from typing import List, Optional

import torch
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr_transducer.utils import make_chunk_mask

from espnet_hatiam.errors import InputError
from espnet_hatiam.models import long_form
from espnet_hatiam.models.padding import subsampled_lengths


class CausalConv1d(torch.nn.Conv1d):
    """A depthwise ``Conv1d`` that pads k - 1 zeros on the left only: frame t reads t - k + 1 .. t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, C, T)``."""
        return super().forward(torch.nn.functional.pad(x, (self.kernel_size[0] - 1, 0)))

    def with_context(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, k - 1 + T)`` whose first k - 1 frames are the left context -> ``(B, C, T)``."""
        return super().forward(x)


class ChunkedConformerEncoder(ConformerEncoder):
    """ESPnet2's conformer with chunked self-attention and causal convolutions.

    Args (besides ``ConformerEncoder``'s, e.g. ``output_size``, ``num_blocks``, ``input_layer``):
        chunk_size: C, frames after subsampling, when not dynamic (0: the whole utterance).
        dynamic_chunk_training: draw C per training batch, as ESPnet's ``asr_transducer``: a draw c in
            [1, T) above ``short_chunk_threshold`` x T means the whole utterance, else C = c mod
            ``short_chunk_size`` + 1. Evaluation (validation, offline decoding) uses ``chunk_size``.
        num_left_chunks: chunks before its own a frame attends to (0 or -1: all, as ``make_chunk_mask``).
        causal_conv: causal depthwise convolutions (needed to stream; False keeps ESPnet's centred one).
    """

    def __init__(self, input_size: int, chunk_size: int = 0, dynamic_chunk_training: bool = False,
                 short_chunk_size: int = 25, short_chunk_threshold: float = 0.75, num_left_chunks: int = -1,
                 causal_conv: bool = True, **conformer_conf):
        if conformer_conf.get("interctc_layer_idx"):
            raise InputError("encoder_conf interctc_layer_idx: not supported by the chunked conformer")
        conformer_conf.setdefault("rel_pos_type", "latest")  # ESPnet's default (legacy) depends on absolute positions
        conformer_conf.setdefault("pos_enc_layer_type", "rel_pos")
        conformer_conf.setdefault("selfattention_layer_type", "rel_selfattn")
        if conformer_conf["rel_pos_type"] != "latest" or conformer_conf["pos_enc_layer_type"] != "rel_pos":
            raise InputError("encoder_conf rel_pos_type / pos_enc_layer_type: the chunked conformer needs 'latest' "
                             "relative positions (rel_pos), which do not depend on where a chunk starts")
        if conformer_conf.get("concat_after"):
            raise InputError("encoder_conf concat_after: not supported by the chunked conformer")
        if conformer_conf.get("input_layer", "conv2d") not in ("conv2d", "conv2d1", "conv2d2", "conv2d6", "conv2d8"):
            raise InputError(f"encoder_conf input_layer {conformer_conf['input_layer']!r}: the chunked conformer needs "
                             "a convolutional subsampling (conv2d, conv2d1, conv2d2, conv2d6, conv2d8)")
        if chunk_size < 0 or short_chunk_size < 1:
            raise InputError(f"encoder_conf chunk_size {chunk_size} / short_chunk_size {short_chunk_size}: "
                             "need chunk_size >= 0 (0: whole utterance) and short_chunk_size >= 1")
        super().__init__(input_size, **conformer_conf)
        self.chunk_size, self.dynamic_chunk_training = chunk_size, dynamic_chunk_training
        self.short_chunk_size, self.short_chunk_threshold = short_chunk_size, short_chunk_threshold
        self.num_left_chunks, self.causal_conv = num_left_chunks, causal_conv
        if causal_conv:
            for layer in self.encoders:
                conv = getattr(layer, "conv_module", None)
                if conv is not None:
                    old = conv.depthwise_conv
                    new = CausalConv1d(old.in_channels, old.out_channels, old.kernel_size, stride=1, padding=0,
                                       groups=old.groups, bias=old.bias is not None)
                    conv.depthwise_conv = new
        self._chunk, self._left = 0, num_left_chunks  # the chunk size (0: whole utterance) and left chunks of a batch
        self._padding_mask: Optional[torch.Tensor] = None
        self.encoders[0].register_forward_pre_hook(self._chunk_mask_hook)
        self.encoders[-1].register_forward_hook(self._restore_padding_mask)

    def forward(self, xs_pad, ilens, prev_states=None, masks=None, ctc=None, return_all_hs=False,
                chunk_size: Optional[int] = None, num_left_chunks: Optional[int] = None):
        """``ConformerEncoder.forward`` under a chunk mask; ``chunk_size`` and ``num_left_chunks`` override the configured ones.

        ``(B, T, F)``, ``(B,)`` -> ``(B, T', D)``, ``(B,)``, None.
        """
        if chunk_size is None:
            chunk_size = self.chunk_size
            if self.training and self.dynamic_chunk_training:
                chunk_size = -1  # drawn in the hook, where the subsampled length is known
        self._chunk = chunk_size
        self._left = self.num_left_chunks if num_left_chunks is None else num_left_chunks
        try:
            return super().forward(xs_pad, ilens, prev_states, masks, ctc, return_all_hs)
        finally:
            self._chunk, self._padding_mask = 0, None

    def _chunk_mask_hook(self, first_layer, inputs):
        """The layers' attention mask ``(B, 1, T')`` becomes ``(B, T', T')``: padding and chunks
        (the layers pass their mask on; the last one's hook gives the encoder back the padding mask)."""
        if self._chunk == 0:
            return None
        x, masks = inputs
        frames = (x[0] if isinstance(x, tuple) else x).size(1)
        chunk = self._chunk if self._chunk > 0 else self.draw_chunk_size(frames)
        if chunk >= frames:
            return None
        allowed = ~make_chunk_mask(frames, chunk, self._left, device=masks.device)
        self._padding_mask = masks
        return x, masks & allowed.unsqueeze(0)

    def _restore_padding_mask(self, last_layer, inputs, output):
        """The layers return the mask they were given: give the encoder back its ``(B, 1, T')`` one."""
        if self._padding_mask is None:
            return None
        x, _ = output
        masks, self._padding_mask = self._padding_mask, None
        return x, masks

    def draw_chunk_size(self, frames: int) -> int:
        """A training batch's chunk size for ``frames`` subsampled frames (ESPnet ``asr_transducer``'s rule)."""
        if frames < 2:
            return frames
        drawn = int(torch.randint(1, frames, (1,)).item())
        if drawn > frames * self.short_chunk_threshold:
            return frames
        return drawn % self.short_chunk_size + 1

    def receptive_field(self) -> int:
        """Input frames one subsampled frame reads: 7 for ``conv2d`` (two 3 x 3 convolutions, stride 2)."""
        field, stride = 1, 1
        for layer in self.embed.conv:
            if isinstance(layer, torch.nn.Conv2d):
                field += (layer.kernel_size[0] - 1) * stride
                stride *= layer.stride[0]
        return field

    def subsampling_factor(self) -> int:
        """Input frames per subsampled frame (4 for ``conv2d``)."""
        return long_form.subsampling_factor(self)


class EncoderStream:
    """The encoder state of B streams fed in lock-step: features in as they arrive, encoder frames out, chunk by chunk.

    Equal to ``encoder(feats, chunk_size=C)`` with the encoder's ``num_left_chunks`` (or
    ``num_left_chunks`` here): features wait until a whole chunk of C subsampled frames can be
    computed (the subsampling's receptive field and stride: 7 and 4 for ``conv2d``); each layer keeps the inputs of its
    attention (the left chunks' frames) and of its depthwise convolution (k - 1 frames) between calls.
    Every stream of one :class:`EncoderStream` gets as many feature frames a push, so each chunk is one
    batched pass for all of them; a stream that ends apart from the others goes on alone from :meth:`select`.

    Args:
        encoder: a :class:`ChunkedConformerEncoder` in eval mode with causal convolutions.
        chunk_size: C, subsampled frames per chunk (>= 1).
        num_left_chunks: left chunks each frame attends to (None: the encoder's; 0 or -1: all).
    """

    def __init__(self, encoder: ChunkedConformerEncoder, chunk_size: int, num_left_chunks: Optional[int] = None):
        if not isinstance(encoder, ChunkedConformerEncoder) or not encoder.causal_conv:
            raise InputError("streaming needs encoder: chunked_conformer with causal_conv: true "
                             f"(this model's encoder is {type(encoder).__name__})")
        if chunk_size < 1:
            raise InputError(f"chunk_size {chunk_size}: a stream needs chunks of at least 1 encoder frame")
        self.encoder, self.chunk_size = encoder, chunk_size
        left = encoder.num_left_chunks if num_left_chunks is None else num_left_chunks
        self.left_frames = math.inf if left <= 0 else left * chunk_size
        self.field, self.factor = encoder.receptive_field(), encoder.subsampling_factor()
        self.feats: Optional[torch.Tensor] = None  # (B, N, F) features not yet consumed by the subsampling
        self.ready: List[torch.Tensor] = []  # subsampled frames (B, n, D) waiting for a whole chunk
        self.attention: List[Optional[torch.Tensor]] = [None] * len(encoder.encoders)  # (B, <= L, D)
        self.conv: List[Optional[torch.Tensor]] = [None] * len(encoder.encoders)  # (B, D, k - 1)
        self.frames_out = 0
        embed = encoder.embed  # conv2d8 keeps its positional encoding apart, the others at the end of ``out``
        self.positions = embed.pos_enc if hasattr(embed, "pos_enc") else embed.out[-1]

    @torch.no_grad()
    def push(self, feats: torch.Tensor, final: bool = False) -> torch.Tensor:
        """Normalised features ``(B, N, F)`` in (N may be 0) -> the encoder frames now complete ``(B, n, D)``.

        With ``final`` the last, shorter chunk is encoded too (the whole-utterance encoding's last chunk).
        """
        self.feats = feats if self.feats is None else torch.cat([self.feats, feats], dim=1)
        n = int(subsampled_lengths(self.encoder.embed, torch.tensor([self.feats.size(1)])))
        if n > 0:
            (sub, _), _ = self.encoder.embed(self.feats[:, : (n - 1) * self.factor + self.field], None)
            self.ready.append(sub)  # x * sqrt(D), as the whole-utterance embedding
            self.feats = self.feats[:, n * self.factor:]
        waiting = torch.cat(self.ready, dim=1) if self.ready else feats.new_zeros(feats.size(0), 0,
                                                                                  self.encoder._output_size)
        whole = waiting.size(1) // self.chunk_size * self.chunk_size
        take = waiting.size(1) if final else whole
        out = [self._chunk(waiting[:, i: i + self.chunk_size]) for i in range(0, take, self.chunk_size)]
        self.ready = [waiting[:, take:]] if take < waiting.size(1) else []
        self.frames_out += take
        return torch.cat(out, dim=1) if out else waiting[:, :0]

    def select(self, rows: List[int]) -> "EncoderStream":
        """The streams ``rows`` (indices into B) as a stream of their own, from where they are."""
        other = copy.copy(self)
        other.feats = None if self.feats is None else self.feats[rows]
        other.ready = [r[rows] for r in self.ready]
        other.attention = [None if a is None else a[rows] for a in self.attention]
        other.conv = [None if c is None else c[rows] for c in self.conv]
        return other

    def _chunk(self, x: torch.Tensor) -> torch.Tensor:
        """One chunk ``(B, C, D)`` of subsampled frames through every layer and the final norm."""
        cached = 0 if self.attention[0] is None else self.attention[0].size(1)  # every layer caches as many frames
        _, pos_emb = self.positions(x.new_zeros(1, cached + x.size(1), x.size(2)))  # (1, 2W - 1, D)
        for i, layer in enumerate(self.encoder.encoders):
            x = self._layer(i, layer, x, pos_emb)
        if self.encoder.normalize_before:
            x = self.encoder.after_norm(x)
        return x

    def _layer(self, i: int, layer, x: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        """ESPnet's conformer ``EncoderLayer.forward`` (eval mode) on a chunk, with its caches."""
        if layer.feed_forward_macaron is not None:
            residual = x
            h = layer.norm_ff_macaron(x) if layer.normalize_before else x
            x = residual + layer.ff_scale * layer.feed_forward_macaron(h)
            if not layer.normalize_before:
                x = layer.norm_ff_macaron(x)
        # attention over the cached left frames and the chunk (square, as the whole utterance's relative
        # positions are computed; the rows of the cached frames are discarded)
        window = x if self.attention[i] is None else torch.cat([self.attention[i], x], dim=1)
        keep = window.size(1) if math.isinf(self.left_frames) else int(self.left_frames)
        self.attention[i] = window[:, max(window.size(1) - keep, 0):]
        h = layer.norm_mha(window) if layer.normalize_before else window
        attended = layer.self_attn(h, h, h, pos_emb, None)[:, -x.size(1):]  # every cached frame is allowed
        x = x + attended
        if not layer.normalize_before:
            x = layer.norm_mha(x)
        if layer.conv_module is not None:
            residual = x
            h = layer.norm_conv(x) if layer.normalize_before else x
            x = residual + self._conv(i, layer.conv_module, h)
            if not layer.normalize_before:
                x = layer.norm_conv(x)
        residual = x
        h = layer.norm_ff(x) if layer.normalize_before else x
        x = residual + layer.ff_scale * layer.feed_forward(h)
        if not layer.normalize_before:
            x = layer.norm_ff(x)
        if layer.conv_module is not None:
            x = layer.norm_final(x)
        return x

    def _conv(self, i: int, conv, x: torch.Tensor) -> torch.Tensor:
        """ESPnet's ``ConvolutionModule.forward`` on a chunk ``(B, C, D)``, the causal depthwise input cached."""
        h = torch.nn.functional.glu(conv.pointwise_conv1(x.transpose(1, 2)), dim=1)  # (B, D, C)
        context = conv.depthwise_conv.kernel_size[0] - 1
        cache = self.conv[i] if self.conv[i] is not None else h.new_zeros(h.size(0), h.size(1), context)
        h = torch.cat([cache, h], dim=2)
        self.conv[i] = h[:, :, h.size(2) - context:]
        h = conv.activation(conv.norm(conv.depthwise_conv.with_context(h)))
        return conv.pointwise_conv2(h).transpose(1, 2)
