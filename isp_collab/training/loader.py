"""Training batches for the loop: drawn in the training process, or ahead of it by worker processes.

Drawing a batch (crop, blur, noise, all on the CPU) takes tens of milliseconds: a small share of a
CPU step, but more than a whole step on a GPU, where training waits for it. ``workers = K > 0`` draws
batches in K processes ahead of the loop (a ``torch.utils.data.DataLoader``).

The two ways draw different sequences, both seeded and reproducible:
- ``workers = 0``: one generator in the training process, carried from step to step (checkpointed);
  the shipped models were trained so;
- ``workers > 0``: the batch of step ``s`` comes from its own generator, seeded by (seed, rank, s), so
  it is the same for any number of workers and a resumed run draws exactly the batches it would have.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def step_seed(seed: int, rank: int, step: int) -> int:
    """The 63-bit seed of the batch of ``step`` (0-based) for process ``rank`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class StepBatches(Dataset):
    """Item ``s``: the ``(blurry, sharp)`` batch of step ``s``, each ``(stacks, N, 3, P, P)`` float32 linear RGB."""

    def __init__(self, task: Any, stacks: int, seed: int, rank: int = 0) -> None:
        self.task, self.stacks, self.seed, self.rank = task, stacks, seed, rank

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(step_seed(self.seed, self.rank, step))
        batch = self.task.sample(self.stacks, gen)
        return batch.blurry, batch.sharp


def _leave_signals_to_the_trainer(worker_id: int) -> None:  # noqa: ARG001 - DataLoader's signature
    """A worker ignores Ctrl-C and SIGTERM: sent to the whole process group (Slurm's scancel, systemd, a terminal's
    Ctrl-C), they killed the workers first, and the trainer's checkpoint on the way out failed on their deaths (the
    steps since the last periodic checkpoint lost). The trainer stops them when it has checkpointed; a worker whose
    trainer is gone exits by itself (PyTorch's watchdog)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def training_batches(
    task: Any,
    stacks: int,
    gen: torch.Generator,
    *,
    workers: int,
    seed: int,
    rank: int,
    start: int,
    end: int,
    pin_memory: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(blurry, sharp)`` batches of steps ``start`` .. ``end - 1``, in order.

    ``workers = 0``: drawn here from ``gen`` (advanced, so the caller checkpoints its state);
    ``workers > 0``: drawn by that many worker processes, by step (``gen`` is not used).
    """
    if workers == 0:
        for _ in range(start, end):
            batch = task.sample(stacks, gen)
            yield batch.blurry, batch.sharp
        return
    loader = DataLoader(
        StepBatches(task, stacks, seed, rank),
        sampler=range(start, end),
        batch_size=None,  # an item is already a batch
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4,
        # fork: workers share the images in memory (spawn / forkserver would pickle the task, images and
        # all, into every worker)
        multiprocessing_context="fork" if "fork" in mp.get_all_start_methods() else None,
        worker_init_fn=_leave_signals_to_the_trainer,
        generator=torch.Generator(),  # the workers' base seed (unused) is not taken from the global RNG
    )
    yield from loader
