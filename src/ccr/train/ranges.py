"""The range each numeric training option makes sense in, checked whenever a config is built.

A number outside its range used to reach torch as a traceback after the run directory was made
(``lr=-1``, ``dropout=1.5``), or to train silently on nonsense (``embed_dim=0``). So every config
class lists the range of each of its numeric fields in a ``ranges`` table, and ``check_ranges`` (called
from the configs' ``__post_init__``) refuses a value outside it with one line naming the key, the
value and the range: on the command line, in a TOML file, in a pipeline recipe's check and when a
run is loaded. A numeric field missing from its table is a programming error, so a new option
cannot skip its range. Rules that tie two options together are the configs' ``validate``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

from ccr.errors import CcrError


@dataclass(frozen=True)
class Range:
    """An interval of numbers from ``low``; a list option's every item must lie in it."""

    low: float
    high: float | None = None
    low_open: bool = False  # low itself excluded
    high_open: bool = False
    why: str = ""  # said after the range when it is not obvious

    def __contains__(self, x: float) -> bool:
        above = x > self.low if self.low_open else x >= self.low
        below = self.high is None or (x < self.high if self.high_open else x <= self.high)
        return above and below

    def describe(self, integer: bool) -> str:
        kind = "an integer" if integer else "a number"
        if self.high is None:
            text = f"{kind} {'>' if self.low_open else '>='} {_num(self.low)}"
        else:
            left, right = "([" [not self.low_open], ")]"[not self.high_open]
            text = f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        return f"{text} ({self.why})" if self.why else text


def at_least(low: float, why: str = "") -> Range:
    return Range(low, why=why)


NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
COUNT = at_least(1)
SHARE = Range(0, 1)  # a share of a whole: a fusion or mixing weight, a threshold on IoU
BELOW_ONE = Range(0, 1, high_open=True)  # dropout (1 drops everything), Adam's betas


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@functools.cache
def numeric_fields(cls: type) -> dict[str, bool]:
    """Field name -> whether it is an integer, for the int/float fields (also optional and list ones)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        if typing.get_origin(hint) is list:
            hint = typing.get_args(hint)[0]
        if hint in (int, float):
            out[f.name] = hint is int
    return out


def check_ranges(cfg: Any) -> None:
    """Refuse the first numeric field of ``cfg`` outside its class's ``ranges`` table."""
    table: dict[str, Range] = type(cfg).ranges
    for name, integer in numeric_fields(type(cfg)).items():
        if name not in table:
            raise TypeError(f"{type(cfg).__name__}.{name} has no entry in its ranges table")
        value = getattr(cfg, name)
        items = value if isinstance(value, list) else [value]
        if any(x is not None and x not in table[name] for x in items):
            shown = ",".join(_num(x) for x in items)
            each = "each item must be " if isinstance(value, list) else "expected "
            raise CcrError(f"{name}={shown} is out of range: {each}{table[name].describe(integer)}")
