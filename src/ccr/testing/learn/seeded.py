"""The settings under which a toy model learns the same weights on every run of the same machine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """One thread and deterministic kernels (a thread count changes float sums, hence the weights), with
    the caller's thread count, kernel choice and random state restored afterwards."""
    import torch

    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(strict)
            torch.set_num_threads(threads)
