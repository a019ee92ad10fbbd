"""The training worker of both tasks (the HAT task and ESPnet's baseline ASR task).

ESPnet's ``AbsTask.main_worker`` is what each training process runs, the ones ESPnet spawns for
``--multiprocessing_distributed`` and the ones a launcher starts per ``--dist_rank`` alike.
``TrainingWorker`` runs it with checkpoints written atomically (``tasks.atomic_save``) and, in a
distributed run, destroys the process group before the interpreter exits: ESPnet never does, and a
gloo rank that exits with its group alive can abort in the group's worker threads (SIGABRT,
"terminate called without an active exception") after its training has finished.
"""

import argparse

import torch

from espnet_hatiam.tasks.atomic_save import atomic_torch_save


class TrainingWorker:
    """Mixin for an ESPnet ``AbsTask`` (listed before it): atomic checkpoints, a clean distributed exit."""

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        try:
            with atomic_torch_save():
                super().main_worker(args)
        finally:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
