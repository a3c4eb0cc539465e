"""Config checks a stage runs before it plans anything (``Stage.check``).

An impossible number (``beam_size=0``, ``max_length=-3``, a NaN) would otherwise reach every row
and turn the whole corpus into failure rows; refused here, it is one line naming the option.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ccr.errors import CcrError


def finite(cfg: Any) -> None:
    """No stage has a use for a NaN or infinite number: refuse one in any field of any stage's config."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise CcrError(f"option {f.name}={value} is invalid: give a finite number")


def at_least(cfg: Any, **lowest: float) -> None:
    """Each named option must be a number no smaller than its bound (None means unset and passes)."""
    for name, low in lowest.items():
        value = getattr(cfg, name)
        if value is not None and not value >= low:  # "not >=" also refuses NaN
            raise CcrError(f"option {name}={value} is invalid: it must be at least {low:g}")


def not_above(cfg: Any, small: str, large: str) -> None:
    """Option ``small`` must not exceed option ``large``."""
    if getattr(cfg, small) > getattr(cfg, large):
        raise CcrError(f"option {small}={getattr(cfg, small)} is invalid: it must not exceed {large}={getattr(cfg, large)}")
