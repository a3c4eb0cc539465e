"""The stage table: name -> where its ``Stage`` lives.

The CLI, the demo and ``ccr pipeline`` all read this, so a new stage is one entry. Entries are
import paths, not objects, so listing stages never imports a stage's heavy dependencies.
"""

from __future__ import annotations

import importlib

from ccr.errors import CcrError
from ccr.pipeline.runner import Stage

STAGES: dict[str, str] = {
    "ingest": "ccr.pipeline.ingest.stage:STAGE",
}


def names() -> list[str]:
    return list(STAGES)


def get(name: str) -> Stage:
    if name not in STAGES:
        raise CcrError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    module, attr = STAGES[name].split(":")
    return getattr(importlib.import_module(module), attr)
