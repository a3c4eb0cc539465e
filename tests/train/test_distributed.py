"""More training processes than GPUs: every process refuses at once, saying how many devices there
are and what to do, instead of one dying with "CUDA error: invalid device ordinal" (issue 15).

The check takes the device count as an argument, so every case runs on any machine; the launch
itself is exercised through the CLI in test_train_errors.py, and with torchrun where a GPU exists."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import sets

from ccr.errors import CcrError
from ccr.train.run.distributed import check_device

ONE_GPU_TWO_PROCESSES = ("2 processes on this machine need a GPU each, but this machine has 1 CUDA device; start at "
                         "most 1 (torchrun --nproc-per-node 1), or pass --device cpu to run them all on the CPU (gloo)")


@pytest.mark.parametrize(("choice", "local_rank", "local_world", "count", "message"), [
    ("auto", 1, 2, 1, ONE_GPU_TWO_PROCESSES),
    ("auto", 0, 2, 1, ONE_GPU_TWO_PROCESSES),  # rank 0 refuses too, rather than wait for rank 1 forever
    ("cuda", 2, 1, 2, "3 processes on this machine need a GPU each, but this machine has 2 CUDA devices"),
    ("cuda:2", 0, 1, 2, "device cuda:2: this machine has 2 CUDA devices (cuda:0..cuda:1); pick one or pass "
                        "--device cpu"),
    ("cuda", 0, 1, 0, "device cuda: this machine has 0 CUDA devices; pass --device cpu"),
    ("gpu", 0, 1, 1, "device 'gpu': use auto, cpu, cuda or cuda:N"),
])
def test_more_processes_than_gpus_are_refused_with_the_count_and_the_fix(choice, local_rank, local_world, count,
                                                                         message):
    with pytest.raises(CcrError) as e:
        check_device(choice, local_rank, local_world, count)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize(("choice", "local_rank", "local_world", "count"), [
    ("auto", 1, 2, 0),  # no GPU: auto means the CPU and gloo
    ("cpu", 1, 2, 1),  # --device cpu: any number of processes
    ("auto", 1, 2, 2),
    ("cuda", 0, 1, 1),
    ("cuda:1", 0, 1, 2),
])
def test_a_gpu_per_process_or_the_cpu_is_accepted(choice, local_rank, local_world, count):
    check_device(choice, local_rank, local_world, count)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the real launch needs a GPU machine")
def test_torchrun_with_one_process_more_than_gpus_stops_every_process_with_one_line(tmp_path, synth_corpus):
    count = torch.cuda.device_count()
    ccr = Path(sys.executable).parent / "ccr"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(count + 1), str(ccr),
           "train", str(synth_corpus), "--out", str(tmp_path / "run"), *(f"--set={s}" for s in sets(epochs=1))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "invalid device ordinal" not in done.stderr
    expected = f"{count + 1} processes on this machine need a GPU each, but this machine has {count} CUDA device"
    assert expected in done.stderr  # from each process that got that far before torchrun stopped the others
