"""How many loader workers a run gets, and what its loader pins: sized to the machine, never a guess.

On the CPU the step owns the cores, so the default is no workers; on CUDA a process gets its share
of the cores less one (at most 8); an explicit ``workers`` always wins.
"""

import torch

from ccr.train.data.batching import EpochSampler
from ccr.train.run.feed import MAX_AUTO_WORKERS, build_loader, worker_count

CPU, CUDA = torch.device("cpu"), torch.device("cuda:0")


def test_the_default_is_no_workers_on_the_cpu_and_a_share_of_the_cores_on_cuda():
    assert worker_count(None, CPU, cores=64) == 0
    assert worker_count(None, CUDA, cores=16) == MAX_AUTO_WORKERS
    assert worker_count(None, CUDA, cores=16, local_processes=4) == 3
    assert worker_count(None, CUDA, cores=2) == 1
    assert worker_count(None, CUDA, cores=1) == 0
    assert worker_count(3, CPU, cores=1) == 3 and worker_count(0, CUDA, cores=16) == 0


def test_the_loader_pins_only_for_cuda_and_prefetches_only_with_workers():
    sampler = EpochSampler(8, 4)
    cpu = build_loader(8, sampler, list, workers=0, prefetch=4, device=CPU)
    assert not cpu.pin_memory and cpu.prefetch_factor is None and [len(b) for b in cpu] == [4, 4]
    cuda = build_loader(8, sampler, list, workers=2, prefetch=4, device=CUDA)
    assert cuda.pin_memory and cuda.prefetch_factor == 4 and cuda.num_workers == 2
