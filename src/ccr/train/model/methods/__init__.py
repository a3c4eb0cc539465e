"""The method table: name -> where its ``Method`` class lives (see ``methods/base.py``).

Entries are import paths so that listing methods (``ccr train --help``) imports no torch. A new
method adds one line here and one module next to this file.
"""

from __future__ import annotations

import importlib
from typing import Any

from ccr.errors import CcrError

METHODS: dict[str, str] = {
    "baseline": "ccr.train.model.methods.baseline:Baseline",
    "nrccr": "ccr.train.model.methods.nrccr:Nrccr",
    "cl2cm": "ccr.train.model.methods.cl2cm:Cl2cm",
    "dcot": "ccr.train.model.methods.dcot:Dcot",
    "leccr": "ccr.train.model.methods.leccr:Leccr",
    "rivrl": "ccr.train.model.methods.rivrl:Rivrl",
    "rgtr": "ccr.train.model.methods.rgtr:Rgtr",
}


def names() -> list[str]:
    return list(METHODS)


def get(name: str) -> Any:
    """The method class registered under ``name``; its config must not shadow shared options."""
    from ccr.train.config import check_disjoint

    if name not in METHODS:
        raise CcrError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    module, attr = METHODS[name].split(":")
    cls = getattr(importlib.import_module(module), attr)
    check_disjoint(name, cls.Config)
    return cls
