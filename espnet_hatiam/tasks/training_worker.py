"""The training worker of both tasks (the HAT task and ESPnet's baseline ASR task).

ESPnet's ``AbsTask.main_worker`` is what each training process runs, the ones ESPnet spawns for
``--multiprocessing_distributed`` and the ones a launcher starts per ``--dist_rank`` alike.
``TrainingWorker`` runs it with checkpoints written atomically (``tasks.atomic_save``) and, in a
distributed run, destroys the process group it created once training has finished: ESPnet never
does, and a gloo rank that exits with its group alive can abort in the group's worker threads
(SIGABRT, "terminate called without an active exception") after a successful training.
"""

import argparse

import torch

from espnet_hatiam.tasks.atomic_save import atomic_torch_save


class TrainingWorker:
    """Mixin for an ESPnet ``AbsTask`` (listed before it): atomic checkpoints, a clean distributed exit."""

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        owned = torch.distributed.is_available() and not torch.distributed.is_initialized()  # not a caller's group
        with atomic_torch_save():
            super().main_worker(args)
        # after a failure the group is left as it is: a failing rank must not wait on its peers. After a finished
        # training every rank waits for the others (rank 0 still averages and writes models) before the group goes,
        # so that no rank tears its gloo connections down under a peer that still holds them open
        if owned and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
