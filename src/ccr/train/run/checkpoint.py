"""The run directory (DESIGN.md "Run directory") and crash-safe checkpoints.

```
RUN_DIR/
  run.json              method, resolved configs, corpus path + fingerprint, versions, status
  metrics.jsonl         one line per epoch: train losses, validation metrics per language, selection
  checkpoints/last.pt   everything needed to continue: weights, optimizers, schedule, RNG, history
  checkpoints/best.pt   weights of the best validation epoch (what evaluate and load use)
  text_tower/           the text encoder's config and tokenizer (weights live in the checkpoints)
  image_tower/          with image_encoder: the CLIP vision config and image processor
  eval/{split}.{lang}.json, eval/{split}.md   ccr evaluate's output
```

Checkpoints are written to a temporary name and renamed, so a SIGKILL leaves the previous one
intact. ``last.pt`` carries the metric history, and ``metrics.jsonl`` is rewritten from it on
resume, so the log never holds an epoch the weights do not.
"""

from __future__ import annotations

import json
import os
import pickle
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ccr import paths
from ccr.corpus import atomic
from ccr.errors import CcrError

if TYPE_CHECKING:
    import torch


class RunDir:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    @property
    def text_tower(self) -> Path:
        return self.root / "text_tower"

    @property
    def image_tower(self) -> Path:
        return self.root / "image_tower"

    def eval_file(self, split: str, lang: str) -> Path:
        return self.root / "eval" / f"{split}.{lang}.json"

    def create(self) -> Path | None:
        """Make the directory before anything slow runs, or say in one line why it cannot hold a run.

        Returns the topmost directory it made (None if the run directory existed), for ``paths.discard``.
        """
        return paths.output_dir(self.root, "--out")

    def info(self) -> dict[str, Any]:
        """``run.json``; one that is missing, damaged or names no method is one line saying what to do."""
        path = self.run_json
        if not path.exists():
            raise CcrError(f"{self.root} is not a training run (no run.json); train one with ccr train")
        info = paths.read_json(path, "run file", fix="restore it from a copy, or train again into a new --out")
        if not isinstance(info.get("method"), str):
            raise CcrError(f"run file {path} names no method; it was not written by ccr train: restore it from "
                           "a copy, or train again into a new --out")
        return info

    def write_info(self, info: dict[str, Any]) -> None:
        atomic.write_json(self.run_json, info)

    def write_history(self, history: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in history)
        atomic.write_bytes(self.metrics, text.encode("utf-8"))

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


VERSION = 2
"""``last.pt``'s layout. 2: the data loader draws from its own generator and the data path from
per-batch streams, so a checkpoint taken mid-epoch resumes to the numbers of an uninterrupted
run. 1 (no ``version``): the loader drew from the global generator, so such a resume differs."""


def save(path: Path, state: dict[str, Any]) -> None:
    import torch

    atomic.write_with(path, lambda tmp: torch.save(state, tmp))


def stamp(stat: os.stat_result) -> list[int]:
    """What tells one checkpoint file from the next: a checkpoint is replaced by rename, so a new inode."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def load(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CcrError(f"no checkpoint at {path}; the run has not finished an epoch yet")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:
        raise CcrError(f"checkpoint {path} is unreadable ({e}); delete it to start over") from None


def rng_state(device: torch.device) -> dict[str, Any]:
    """One process's global generators: torch (CPU), numpy, python, and its own CUDA device's.

    Only this process's device: a run resumed on a machine with fewer GPUs, or on the CPU, still loads.
    """
    import torch

    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if device.type != "cuda" or cuda is None:
        return
    if isinstance(cuda, list):  # checkpoints before VERSION 2 hold every device's state
        index = device.index or 0
        if index >= len(cuda):
            return
        cuda = cuda[index]
    torch.cuda.set_rng_state(cuda, device)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
