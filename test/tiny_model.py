"""A small randomly initialised HAT/RNN-T model built through the ESPnet task, as a user's config would."""

import torch

from espnet_hatiam.tasks.hat_asr import HATASRTask

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "d", "\u2581", "<sos/eos>"]


def build_tiny_model(joint_type: str = "hat", iam_weight: float = 0.3, rnn_type: str = "lstm") -> torch.nn.Module:
    args = HATASRTask.get_parser().parse_args(
        [
            "--token_list", "unused",
            "--joint_type", joint_type,
            "--encoder", "conformer",
            "--encoder_conf", "{output_size: 32, num_blocks: 1, linear_units: 32, attention_heads: 2, rel_pos_type: latest}",
            "--decoder", "transducer",
            "--decoder_conf", f"{{hidden_size: 16, rnn_type: {rnn_type}}}",
            "--joint_net_conf", "{joint_space_size: 24}",
            "--frontend_conf", "{n_mels: 20}",
            "--model_conf", f"{{iam_weight: {iam_weight}}}",
        ]
    )
    args.token_list = list(TOKENS)
    return HATASRTask.build_model(args).eval()
