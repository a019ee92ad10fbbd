"""ESPnet task for HAT/IAM transducers: ESPnet's ASR task with the HAT model and joint plugged in.

Data, preprocessing (tokenisation), frontends, SpecAugment, normalisation and encoders are
ESPnet's own registries (encoders: also ``chunked_conformer``, the streaming one); this task adds ``--joint_type {hat,rnnt}`` and builds
:class:`ESPnetHATModel` with ESPnet's ``TransducerDecoder`` as prediction network.
"""

import argparse
import logging
from pathlib import Path

from espnet2.asr.decoder.transducer_decoder import TransducerDecoder
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.tasks.asr import (
    ASRTask,
    encoder_choices as espnet_encoder_choices,
    frontend_choices,
    normalize_choices,
    preprocessor_choices,
    specaug_choices,
)
from espnet2.torch_utils.initialize import initialize
from espnet2.train.class_choices import ClassChoices

from espnet_hatiam.data.checks import count_unknown_tokens
from espnet_hatiam.tasks.training_worker import TrainingWorker
from espnet_hatiam.models import ESPnetHATModel
from espnet_hatiam.models.chunked_encoder import ChunkedConformerEncoder
from espnet_hatiam.nets import JOINT_TYPES

# ESPnet's encoders and the chunked (streaming) conformer; ESPnet's own registry is left unchanged.
encoder_choices = ClassChoices(
    name="encoder", classes=dict(espnet_encoder_choices.classes, chunked_conformer=ChunkedConformerEncoder),
    type_check=AbsEncoder, default="rnn",
)

model_choices = ClassChoices(
    name="model", classes=dict(hat=ESPnetHATModel), type_check=ESPnetHATModel, default="hat"
)
decoder_choices = ClassChoices(
    name="decoder", classes=dict(transducer=TransducerDecoder), default="transducer"
)


class HATASRTask(TrainingWorker, ASRTask):
    """``python -m espnet_hatiam.bin.hat_asr_train``: ESPnet's ASR training flow for HAT/IAM models."""

    class_choices_list = [
        frontend_choices,
        specaug_choices,
        normalize_choices,
        model_choices,
        encoder_choices,
        decoder_choices,
        preprocessor_choices,
    ]

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="HAT/IAM transducer")
        group.add_argument(
            "--joint_type",
            type=str,
            default="hat",
            choices=sorted(JOINT_TYPES),
            help="hat: factorised blank/label joint (HAT); rnnt: one softmax (baseline). "
            "Sizes come from --joint_net_conf (joint_space_size, joint_activation_type).",
        )

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool):
        """ESPnet's; for training, also a counted warning for transcripts with tokens outside the token list."""
        preprocess = super().build_preprocess_fn(args, train)
        tokenizer = getattr(preprocess, "tokenizer", None)
        if train and tokenizer is not None:
            for path, name, _ in args.train_data_path_and_name_and_type:
                if name == "text":
                    count_unknown_tokens(Path(path), preprocess.token_id_converter.token_list, tokenizer)
        return preprocess

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetHATModel:
        if isinstance(args.token_list, str):
            with open(args.token_list, encoding="utf-8") as f:
                token_list = [line.rstrip() for line in f]
            args.token_list = list(token_list)
        elif isinstance(args.token_list, (tuple, list)):
            token_list = list(args.token_list)
        else:
            raise RuntimeError("--token_list must be a file or a list of tokens")
        vocab_size = len(token_list)
        logging.info(f"Vocabulary size: {vocab_size}")

        if args.input_size is None:
            frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
            input_size = frontend.output_size()
        else:
            args.frontend, args.frontend_conf = None, {}
            frontend, input_size = None, args.input_size
        specaug = (
            specaug_choices.get_class(args.specaug)(**args.specaug_conf) if args.specaug else None
        )
        normalize = (
            normalize_choices.get_class(args.normalize)(**args.normalize_conf)
            if args.normalize
            else None
        )
        encoder = encoder_choices.get_class(args.encoder)(input_size=input_size, **args.encoder_conf)
        decoder = decoder_choices.get_class(args.decoder)(vocab_size, embed_pad=0, **args.decoder_conf)
        joint_type = getattr(args, "joint_type", "hat")
        joint_network = JOINT_TYPES[joint_type](
            vocab_size, encoder.output_size(), decoder.dunits, **args.joint_net_conf
        )
        model = model_choices.get_class(args.model)(
            vocab_size=vocab_size,
            token_list=token_list,
            frontend=frontend,
            specaug=specaug,
            normalize=normalize,
            encoder=encoder,
            decoder=decoder,
            joint_network=joint_network,
            **args.model_conf,
        )
        if args.init is not None:
            initialize(model, args.init)
        return model
