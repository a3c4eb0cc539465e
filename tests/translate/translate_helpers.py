"""Helpers the translation tests share (a module with a unique name, importable from any test file).

The tiny Marian models never emit an end token, so every output runs to ``max_length``; tests use
a short one to stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ccr.corpus.corpus import Corpus
from ccr.stages import table as stages
from ccr.stages.runner import RunOptions, RunSummary

TINY: dict[str, Any] = {"tiny": True, "max_length": 10}


def run(stage: str, corpus: Path, options: RunOptions | None = None, **overrides: Any) -> RunSummary:
    """A translation stage with the tiny models, as ``ccr translate|backtranslate`` runs it."""
    return stages.run(stage, corpus, overrides={**TINY, **overrides},
                      options=options or RunOptions(progress=False))


def tables(corpus: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Captions (side tables joined) and outstanding failures, sorted by id: "identical corpus" (DESIGN.md)."""
    c = Corpus.open(corpus)
    return c.table("captions").sort("caption_id"), c.failures().sort("failure_id")


def assert_same_tables(a: Path, b: Path) -> None:
    for left, right in zip(tables(a), tables(b)):
        assert left.columns == right.columns
        assert left.equals(right)
