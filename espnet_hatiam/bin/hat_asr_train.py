#!/usr/bin/env python3
"""Train a HAT/IAM transducer with ESPnet's trainer (same options as ``espnet2.bin.asr_train``)."""

from espnet_hatiam.tasks.hat_asr import HATASRTask


def get_parser():
    return HATASRTask.get_parser()


def main(cmd=None):
    """Example: python -m espnet_hatiam.bin.hat_asr_train --config conf/train_hat_iam.yaml ..."""
    HATASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
