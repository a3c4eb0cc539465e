"""One code path for a single process and for DDP under torchrun or ``accelerate launch``.

Both launchers set ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; that is all the trainer reads, so the
same command runs on a laptop, with 2 CPU processes on gloo, or on 8 GPUs with NCCL. Contrastive
losses need negatives from every process: ``gather`` concatenates a tensor over processes with
a gradient-correct backward (each process's slice receives the gradient of the full loss).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ccr.errors import CcrError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    local_size: int = 1  # processes on this machine, which share its cores (torchrun's LOCAL_WORLD_SIZE)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def pick_device(choice: str, local_rank: int = 0) -> torch.device:
    """The stages' device rule (``ccr.stages.device``); a bare ``cuda`` is this process's own GPU."""
    from ccr.stages.device import torch_device

    device = torch.device(torch_device(choice))
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def check_device(choice: str, local_rank: int, local_world: int, count: int) -> None:
    """Refuse a CUDA device this machine does not have, in every process at once, before CUDA says
    "invalid device ordinal" in one of them while the others wait for it.

    ``choice`` is the ``device`` option, ``count`` the machine's CUDA devices, ``local_world`` the
    processes on this machine (torchrun's ``LOCAL_WORLD_SIZE``). With ``auto`` (on a GPU machine) or
    ``cuda`` each process takes the GPU of its local rank, so there must be a GPU per process.
    """
    try:
        device = torch.device("cuda" if choice == "auto" else choice)
    except RuntimeError:
        raise CcrError(f"device {choice!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type != "cuda" or (choice == "auto" and count == 0):
        return
    have = f"this machine has {count} CUDA device{'' if count == 1 else 's'}"
    if count == 0:
        raise CcrError(f"device {choice}: {have}; pass --device cpu")
    if device.index is not None:
        if device.index >= count:
            raise CcrError(f"device {choice}: {have} (cuda:0..cuda:{count - 1}); pick one or pass --device cpu")
        return
    processes = max(local_world, local_rank + 1)
    if processes > count:
        raise CcrError(f"{processes} processes on this machine need a GPU each, but {have}; start at most {count} "
                       f"(torchrun --nproc-per-node {count}), or pass --device cpu to run them all on the CPU (gloo)")


def setup(device: str = "auto") -> World:
    """Join the process group the launcher describes (if any) and pick this process's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    check_device(device, local_rank, local_size, torch.cuda.device_count())
    dev = pick_device(device, local_rank)
    if size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(rank, size, local_rank, dev, local_size)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _Gather(torch.autograd.Function):
    """All-gather whose backward hands each process the summed gradient of its own slice.

    Every process computes the same loss on the gathered batch, so the gradient of the sum of
    those losses w.r.t. a slice is the all-reduced gradient; after DDP averages parameter
    gradients, training equals one process with the whole global batch.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        n = grad.shape[0] // dist.get_world_size()
        return grad[dist.get_rank() * n:(dist.get_rank() + 1) * n]


def gather(x: torch.Tensor) -> torch.Tensor:
    """``x`` from every process (equal sizes), concatenated along dim 0 in rank order; identity in one."""
    if not active():
        return x
    return _Gather.apply(x)


def broadcast(obj: Any) -> Any:
    """Rank 0's value of a picklable object, on every process (decisions such as early stopping)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average gradients by hand, for parameters DDP does not manage (auxiliary objectives)."""
    if not active():
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads (0 keeps the current number), then restore it.

    Tiny towers on a shared 2-core machine run several times faster on one thread than on two.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def barrier() -> None:
    if active():
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
