"""Shared settings and a test-only method for the trainer tests (imported by name: no __init__)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ccr.train.model.methods.base import AuxObjective, LossPlugin, LossTerm
from ccr.train.model.methods.baseline import Baseline

# Tiny towers that still learn the synthetic corpus in a few epochs (~0.3 s per epoch on 2 cores);
# one thread, because two threads on tiny matrices slow down tenfold when other processes share the cores.
TINY = {"text_tower": "tiny/bert", "embed_dim": 64, "media_hidden": 64, "batch_size": 32, "lr": 1e-3,
        "progress": False, "threads": 1}


def sets(**extra: object) -> list[str]:
    return [f"{k}={v}" for k, v in (TINY | extra).items()]


def history(run: Path) -> list[dict]:
    """``metrics.jsonl`` without the one field that depends on the machine's speed."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("samples_per_second")
    return rows


def same_run(run: Path, reference: Path) -> set[str]:
    """Whether two run directories hold the same metric history and best/last weights; the weights' names."""
    assert history(run) == history(reference)
    for name in ("best.pt", "last.pt"):
        a = load_checkpoint(run / "checkpoints" / name)["model"]
        b = load_checkpoint(reference / "checkpoints" / name)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return set(a)


def sigkill_after_first_epoch(code: str, run: Path) -> dict:
    """Run ``code`` (a training call writing ``run``) in a subprocess, SIGKILL it once an epoch is
    logged, and return the counters of the checkpoint it left."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().strip()):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return load_checkpoint(run / "checkpoints" / "last.pt")["counters"]


_KILL_AT_STEP = """
import os, signal
from ccr.train.run import loop
step = loop._step
def killing(state, batch, info):
    if info.step == {step}:
        os.kill(os.getpid(), signal.SIGKILL)
    return step(state, batch, info)
loop._step = killing
"""


def sigkill_at_step(code: str, run: Path, step: int) -> dict:
    """Run ``code`` (a training call writing ``run``) in a subprocess that SIGKILLs itself once ``step``
    optimizer steps are done, an exact point mid-epoch; return the counters of the checkpoint it left."""
    proc = subprocess.run([sys.executable, "-c", _KILL_AT_STEP.format(step=step) + code], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    return load_checkpoint(run / "checkpoints" / "last.pt")["counters"]


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's tensors on the CPU, wherever the run trained (device-agnostic comparisons)."""
    return torch.load(path, map_location="cpu", weights_only=False)


class _Generator(LossPlugin):
    """NRCCR-style generator term: make MT embeddings look English to the discriminator."""

    def __init__(self, method: AuxBaseline):
        super().__init__()
        self.method = [method]  # a list, so the method is not registered as a sub-module twice

    def forward(self, outputs, batch, step):
        logits = self.method[0].discriminator(outputs["t"]).squeeze(-1)
        return {"gen": LossTerm(F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)), 0.001)}


class AuxBaseline(Baseline):
    """The baseline plus a language discriminator with its own optimizer, and a record of hook calls."""

    name = "aux-test"
    calls: list[str] = []

    def __init__(self, cfg, env):
        self.discriminator_dim = env.train.embed_dim
        super().__init__(cfg, env)

    def build_losses(self):
        self.discriminator = nn.Linear(self.discriminator_dim, 1)
        return [*super().build_losses(), _Generator(self)]

    def aux_objectives(self):
        def loss(outputs, batch, step):
            real = self.discriminator(outputs["e"]).squeeze(-1)
            fake = self.discriminator(outputs["t"]).squeeze(-1)
            return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

        return [AuxObjective("discriminator", self.discriminator, loss, lr=1e-2)]

    def on_train_start(self, data):
        self.calls.append(f"train_start:{len(data)}")

    def on_epoch_start(self, step):
        self.calls.append(f"epoch_start:{step.epoch}:{step.step}")

    def on_epoch_end(self, step, val_metrics):
        self.calls.append(f"epoch_end:{step.epoch}:{sorted(val_metrics)}")
