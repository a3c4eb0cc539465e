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
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.pipeline import atomic


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

    def info(self) -> dict[str, Any]:
        if not self.run_json.exists():
            raise CcrError(f"{self.root} is not a training run (no run.json); train one with ccr train")
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def write_info(self, info: dict[str, Any]) -> None:
        atomic.write_json(self.run_json, info)

    def write_history(self, history: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in history)
        atomic.write_bytes(self.metrics, text.encode("utf-8"))

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def save(path: Path, state: dict[str, Any]) -> None:
    atomic.write_with(path, lambda tmp: torch.save(state, tmp))


def load(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CcrError(f"no checkpoint at {path}; the run has not finished an epoch yet")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as e:
        raise CcrError(f"checkpoint {path} is unreadable ({e}); delete it to start over") from None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
