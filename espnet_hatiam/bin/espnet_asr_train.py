#!/usr/bin/env python3
"""ESPnet's own ASR task (``espnet2.bin.asr_train``, the CTC/attention baseline), unchanged but for
checkpoints written atomically and a clean distributed exit (``tasks.training_worker``), as this
project's models have."""

from espnet2.tasks.asr import ASRTask

from espnet_hatiam.tasks.training_worker import TrainingWorker


class ESPnetASRTask(TrainingWorker, ASRTask):
    """ESPnet's ``ASRTask`` whose training writes ``checkpoint.pth`` and the epoch snapshots atomically."""


def get_parser():
    return ESPnetASRTask.get_parser()


def main(cmd=None):
    """Example: python -m espnet_hatiam.bin.espnet_asr_train --config conf/train_espnet_ctc_att.yaml ..."""
    ESPnetASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
