"""ARCHITECTURE.md's method sketch, run as written: a doc example that no longer trains fails here."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from train_helpers import sets

from ccr.train.model.methods import METHODS
from ccr.train.run.loop import train

ARCHITECTURE = Path(__file__).parents[2] / "ARCHITECTURE.md"


def test_the_documented_method_trains(tmp_path, synth_corpus, monkeypatch):
    code = re.search(r"```python\n(# src/ccr/train/model/methods/mt_only\.py\n.*?)```", ARCHITECTURE.read_text(),
                     flags=re.DOTALL).group(1)
    module = types.ModuleType("mt_only_sketch")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up here
    exec(compile(code, str(ARCHITECTURE), "exec"), module.__dict__)
    monkeypatch.setitem(METHODS, "mt-only", f"{module.__name__}:MtOnly")  # the one table line
    result = train(synth_corpus, tmp_path / "run", method="mt-only", sets=sets(epochs=1), log=lambda _: None)
    assert result.epochs == 1 and (tmp_path / "run" / "checkpoints" / "best.pt").exists()
