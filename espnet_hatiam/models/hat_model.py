"""ESPnet2 model: encoder + prediction network + HAT (or RNN-T) joint, trained with the IAM.

    loss = L_transducer + iam_weight * L_IAM_CTC + ilm_weight * L_ILM_CE     (docs/METHOD.md section 3)

With ``prune_range`` > 0, training replaces L_transducer by the pruned loss plus
``simple_loss_scale`` times the trivial joiner's simple loss (:mod:`espnet_hatiam.losses.pruned`).
"""

from typing import Dict, List, Optional, Tuple, Union

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_hatiam.losses import transducer_loss, iam_ctc_loss, ilm_loss
from espnet_hatiam.losses.pruned import PrunedTransducerLoss
from espnet_hatiam.models.padding import mask_encoder_padding, per_utterance_features
from espnet_hatiam.scoring.error_rate import error_rates
from espnet_hatiam.search import greedy_search


class ESPnetHATModel(AbsESPnetModel):
    """HAT/RNN-T transducer with joint IAM (CTC) and optional ILM training.

    Encoding is batch-invariant (:mod:`espnet_hatiam.models.padding`): an utterance gets the
    same encoder frames and lengths whatever it is batched with.

    Args:
        vocab_size: tokens including ``<blank>`` at 0.
        token_list: the tokens, for the validation error rates.
        frontend, specaug, normalize, encoder: ESPnet modules (frontend may be None).
        decoder: ESPnet ``TransducerDecoder`` (the prediction network).
        joint_network: :class:`HATJointNetwork` or :class:`RNNTJointNetwork`.
        iam_weight: weight of the IAM CTC loss; 0 trains a vanilla HAT.
        ilm_weight: weight of the ILM cross-entropy.
        prune_range: 0 trains with the full transducer loss; S >= 2 with the pruned loss,
            the joint evaluated on S label positions per frame (validation still reports the
            full loss, comparable across systems).
        simple_loss_scale: weight of the simple (trivial-joiner) loss when pruning.
        report_cer, report_wer: greedy HAT and IAM error rates on validation.
    """

    def __init__(
        self,
        vocab_size: int,
        token_list: Union[Tuple[str, ...], List[str]],
        frontend: Optional[AbsFrontend],
        specaug: Optional[AbsSpecAug],
        normalize: Optional[AbsNormalize],
        encoder: AbsEncoder,
        decoder: torch.nn.Module,
        joint_network: torch.nn.Module,
        iam_weight: float = 0.3,
        ilm_weight: float = 0.0,
        prune_range: int = 0,
        simple_loss_scale: float = 0.5,
        report_cer: bool = True,
        report_wer: bool = True,
        sym_space: str = "<space>",
        sym_blank: str = "<blank>",
        extract_feats_in_collect_stats: bool = True,
    ):
        super().__init__()
        if token_list[0] != sym_blank:
            raise ValueError(f"token_list must start with {sym_blank}, got '{token_list[0]}'")
        if iam_weight < 0 or ilm_weight < 0:
            raise ValueError(f"iam_weight and ilm_weight must be >= 0, got {iam_weight}, {ilm_weight}")
        self.blank_id = 0
        self.vocab_size = vocab_size
        self.token_list = list(token_list)
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.encoder = encoder
        self._padding_hooks = mask_encoder_padding(encoder)  # batch-invariant lengths and convolutions
        self.decoder = decoder
        self.joint_network = joint_network
        self.iam_weight, self.ilm_weight = iam_weight, ilm_weight
        self.pruned_loss = None
        if prune_range:
            self.pruned_loss = PrunedTransducerLoss(vocab_size, encoder.output_size(), decoder.dunits, prune_range)
        self.simple_loss_scale = simple_loss_scale
        self.report_cer, self.report_wer = report_cer, report_wer
        self.sym_space = sym_space
        self.extract_feats_in_collect_stats = extract_feats_in_collect_stats

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        """Losses of a batch: speech ``(B, L)``, text ``(B, U)`` padded with -1."""
        text = text[:, : int(text_lengths.max())]
        enc_out, enc_lens = self.encode(speech, speech_lengths)
        targets = text.masked_fill(text < 0, self.blank_id)

        decoder_in = torch.nn.functional.pad(targets, (1, 0), value=self.blank_id)
        dec_out = self.decoder(decoder_in)  # (B, U+1, Dd)
        stats = {}
        if self.pruned_loss is not None and self.training:
            loss_transducer, loss_simple = self.pruned_loss(
                self.joint_network, enc_out, dec_out, targets, enc_lens, text_lengths
            )
            stats["loss_simple"] = loss_simple.detach()
            loss = loss_transducer + self.simple_loss_scale * loss_simple
        else:
            log_probs = self.joint_network(enc_out.unsqueeze(2), dec_out.unsqueeze(1))
            loss_transducer = transducer_loss(log_probs, targets, enc_lens, text_lengths)
            del log_probs  # the (B, T, U+1, V+1) tensor: free it before the next terms
            loss = loss_transducer
        stats["loss_transducer"] = loss_transducer.detach()
        iam_log_probs = None
        if self.iam_weight > 0 or not self.training:
            iam_log_probs = self.joint_network.iam(enc_out)
            loss_iam = iam_ctc_loss(iam_log_probs, targets, enc_lens, text_lengths)
            stats["loss_iam"] = loss_iam.detach()
            loss = loss + self.iam_weight * loss_iam
        if self.ilm_weight > 0 or not self.training:
            loss_ilm = ilm_loss(self.joint_network.ilm(dec_out[:, :-1]), targets, text_lengths)
            stats["loss_ilm"] = loss_ilm.detach()
            loss = loss + self.ilm_weight * loss_ilm
        stats["loss"] = loss.detach()

        if not self.training and (self.report_cer or self.report_wer):
            stats.update(self._validation_error_rates(enc_out, enc_lens, iam_log_probs, text, text_lengths))

        loss, stats, weight = force_gatherable((loss, stats, speech.size(0)), loss.device)
        return loss, stats, weight

    def _validation_error_rates(self, enc_out, enc_lens, iam_log_probs, text, text_lengths):
        """Greedy HAT (labels per frame as in decoding) and IAM (CTC best path) CER/WER of a batch."""
        refs = [self._text(text[b, : text_lengths[b]].tolist()) for b in range(text.size(0))]
        hat_hyps = greedy_search(self.joint_network, self.decoder, enc_out, enc_lens)
        hat_texts = [self._text(h.token_ids) for h in hat_hyps]
        best_path = iam_log_probs.argmax(-1)
        iam_texts = []
        for b in range(best_path.size(0)):
            path = torch.unique_consecutive(best_path[b, : enc_lens[b]])
            iam_texts.append(self._text(path[path != self.blank_id].tolist()))
        stats = {}
        for suffix, hyps in (("", hat_texts), ("_iam", iam_texts)):
            cer, wer = error_rates(hyps, refs)
            if self.report_cer:
                stats["cer" + suffix] = cer
            if self.report_wer:
                stats["wer" + suffix] = wer
        return stats

    def _text(self, token_ids: List[int]) -> str:
        """Join tokens into text; ``sym_space`` and sentencepiece's "\u2581" mark word boundaries."""
        text = "".join(self.token_list[i] for i in token_ids)
        return " ".join(text.replace(self.sym_space, " ").replace("\u2581", " ").split())

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Frontend, SpecAugment (training only), normalisation, encoder: ``(B, T, De)``, ``(B,)``."""
        feats, feats_lengths = self._extract_feats(speech, speech_lengths)
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        enc_out, enc_lens, _ = self.encoder(feats, feats_lengths)
        return enc_out, enc_lens

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        """Features for ``--collect_stats`` (global mean/variance normalisation)."""
        feats, feats_lengths = self._extract_feats(speech, speech_lengths)
        return {"feats": feats, "feats_lengths": feats_lengths}

    def _extract_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor):
        """Frontend features ``(B, T, F)``, ``(B,)``, each utterance at its own length."""
        speech = speech[:, : int(speech_lengths.max())]
        if self.frontend is None:
            return speech, speech_lengths
        return per_utterance_features(self.frontend, speech, speech_lengths)
