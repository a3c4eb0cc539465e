"""The DataLoader that keeps the device fed: worker processes collate ahead of the step, and batches
arrive in page-locked memory so that host-to-device copies overlap the GPU's work.

Collating a batch (slicing and padding token rows, reading features, decoding images for
``image_encoder``) is host work. On the CPU the training step already has every core, so loader
workers would only take cores from it: there the default is none. On CUDA the GPU idles through
whatever the host does between steps, so by default each training process gets worker processes
(its share of the cores less one for itself, at most ``MAX_AUTO_WORKERS``), each keeping
``prefetch`` batches ready, and the batches are pinned so that ``to_device``'s ``non_blocking``
copies are truly asynchronous.

Workers change neither the batches nor their order: the sampler runs in this process, each batch
draws from its own random stream (``EpochCollate``), and the loader's generator, from which the
workers take their seeds, is reseeded by (seed, epoch) as each epoch starts. Workers start afresh
every epoch rather than persist, because each holds the copy of the collate function (epoch
number included) taken when the epoch's iterator started.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

MAX_AUTO_WORKERS = 8  # collating is light; more processes only add start-up time and memory


def machine_cores() -> int:
    """Cores this process may run on (a container's or scheduler's limit, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(requested: int | None, device: torch.device, *, local_processes: int = 1,
                 cores: int | None = None) -> int:
    """``requested``, or when None the machine's default: 0 on the CPU, its share of cores less one on CUDA."""
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    share = (cores if cores is not None else machine_cores()) // max(local_processes, 1)
    return max(0, min(MAX_AUTO_WORKERS, share - 1))


def build_loader(n: int, sampler: torch.utils.data.Sampler[list[int]], collate: Callable[[list[int]], Any], *,
                 workers: int, prefetch: int, device: torch.device) -> torch.utils.data.DataLoader:
    """A loader over tuple positions ``0..n-1`` in the sampler's batches; its generator is the caller's to seed."""
    ahead = {"prefetch_factor": prefetch} if workers else {}  # torch refuses a prefetch factor without workers
    return torch.utils.data.DataLoader(range(n), batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                                       pin_memory=device.type == "cuda", generator=torch.Generator(), **ahead)
