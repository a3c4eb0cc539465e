"""DDP without code changes: ``torchrun --nproc-per-node 2 $(which ccr) train ...`` (or ``accelerate launch``) on gloo.

Both processes see halves of the same global batches and gather embeddings for negatives, so the
first epoch's loss matches a one-process run closely (they differ only by the text encoder's own
dropout masks, drawn per process); rank 0 alone writes the run directory. The runs are pinned to
``--device cpu`` (gloo), which is what these tests are about, so they pass on a one-GPU machine too,
where device auto would put both processes on GPU 0 (or ask for a second one). CUDA AMP and NCCL
are not exercised here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import load_checkpoint, sets

from ccr.train.run.loop import train


def test_torchrun_two_gloo_processes_train_like_one(tmp_path, synth_corpus):
    args = sets(epochs=3, dropout=0.0, device="cpu")
    out = tmp_path / "ddp"
    ccr = Path(sys.executable).parent / "ccr"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(ccr), "train",
           str(synth_corpus), "--out", str(out), *(f"--set={s}" for s in args)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("train: 3 epochs") == 1  # one summary: rank 1 stays quiet
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["finished"]
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert len(load_checkpoint(out / "checkpoints" / "last.pt")["rng"]) == 2
    assert history[-1]["val"]["de"]["sumr"] > 250  # chance is about 80

    single = train(synth_corpus, tmp_path / "single", sets=args, log=lambda _: None)
    assert history[0]["train"]["loss"] == pytest.approx(single.history[0]["train"]["loss"], rel=0.05)


def test_accelerate_launch_runs_the_same_command_on_two_processes(tmp_path, synth_corpus):
    """``accelerate launch`` sets the same environment as torchrun (on CPU: ``--multi_gpu`` picks its torchrun
    launcher; the trainer then joins gloo), so no code knows which launcher started it."""
    out = tmp_path / "accelerate"
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(bin_dir / "ccr"), "train", str(synth_corpus),
           "--out", str(out), *(f"--set={s}" for s in sets(epochs=1, device="cpu"))]
    # no GPU in sight: accelerate then launches exactly as on a CPU machine, whatever this one has
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("train: 1 epochs") == 1
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["finished"]
