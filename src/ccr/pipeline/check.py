"""A recipe's ``check`` step: a threshold on a figure the run wrote, so a recipe states what it
expects (the demo: noise was planted and found, the metrics are in range) and a run that falls
short fails with one line instead of ending green.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccr import paths
from ccr.errors import CcrError


def figure(path: Path, dotted: str) -> float:
    """The number at ``dotted`` (``languages.de.noisy``) in the JSON file ``path``."""
    if not path.exists():
        raise CcrError(f"{path} does not exist; fix file in the check step, or add the step that writes it before it")
    value: Any = paths.read_json(path, "figure file", fix="run the step that writes it again")
    for i, key in enumerate(dotted.split(".")):
        if not isinstance(value, dict) or key not in value:
            where = ".".join(dotted.split(".")[:i]) or "the top level"
            keys = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
            raise CcrError(f"{path} has no {dotted}: {where} holds {keys}; fix figure in the check step")
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CcrError(f"{dotted} in {path} is {value!r}, not a number; point figure at a number")
    return float(value)


def check(path: Path, dotted: str, minimum: float | None, maximum: float | None) -> float:
    """The figure, or a one-line ``CcrError`` naming it, its value and the threshold it misses."""
    value = figure(path, dotted)
    if minimum is not None and value < minimum:
        raise CcrError(f"check failed: {dotted} in {path} is {value:g}, below the minimum {minimum:g}")
    if maximum is not None and value > maximum:
        raise CcrError(f"check failed: {dotted} in {path} is {value:g}, above the maximum {maximum:g}")
    return value
