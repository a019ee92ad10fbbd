"""Checkpoints written whole or not at all.

ESPnet's trainer writes ``checkpoint.pth`` (model, optimisers, schedulers, reporter) in place with
``torch.save``: a training killed during that write leaves a truncated file that ``--resume true``
cannot load, and the run would have to start over. ``atomic_torch_save`` makes every ``torch.save``
to a path in the training process write ``<path>.tmp`` and rename it over ``<path>`` (``os.replace``,
atomic on POSIX), so a kill leaves the previous checkpoint intact and the run resumes from it.
``tasks.training_worker.TrainingWorker`` puts it around an ESPnet task's ``main_worker``.
"""

import contextlib
import os
from typing import Iterator

import torch


@contextlib.contextmanager
def atomic_torch_save() -> Iterator[None]:
    """Within the block, ``torch.save(obj, path)`` is write-then-rename; file objects are passed through."""
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return original(obj, f, *args, **kwargs)
        tmp = f"{os.fspath(f)}.tmp"
        try:
            original(obj, tmp, *args, **kwargs)
            os.replace(tmp, f)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    torch.save = save
    try:
        yield
    finally:
        torch.save = original

