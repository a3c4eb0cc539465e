"""The tasks a method can belong to: name -> where its ``Task`` lives (see ``tasks/base.py``).

Import paths, as in the method table, so that naming a task imports nothing it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccr.train.model.methods.base import Method
    from ccr.train.tasks.base import Task

TASKS: dict[str, str] = {
    "retrieval": "ccr.train.tasks.retrieval:Retrieval",
    "grounding": "ccr.train.tasks.grounding:Grounding",
}


def of(method_cls: type[Method]) -> Task:
    """The task that prepares, validates and evaluates ``method_cls``'s runs."""
    if method_cls.task not in TASKS:
        raise TypeError(f"{method_cls.__name__}.task = {method_cls.task!r}; tasks: {', '.join(TASKS)}")
    module, attr = TASKS[method_cls.task].split(":")
    return getattr(importlib.import_module(module), attr)()
