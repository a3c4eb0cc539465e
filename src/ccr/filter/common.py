"""What the filter stages share: the scores they compare, and seeded orders that depend only on ids.

Every random choice here (DCOT groups, which rows get noise, swap partners) is a function of the
row ids and a seed, never of row order, batch size or shard count: resuming, sharding and
rerunning a stage then give the same rows the same outcome.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

# Per-pair scores where higher means "more likely a correct pair" (DESIGN.md, "Column names").
SCORES = ("xl_sim", "xm_sim", "dcot_conf", "rt_sim")


def seeded_key(seed: int, row_id: str) -> bytes:
    """A 64-bit pseudo-random key of one id; stable across processes, platforms and versions."""
    return hashlib.blake2b(f"{seed}\0{row_id}".encode(), digest_size=8).digest()


def seeded_order(ids: Iterable[str], seed: int) -> list[str]:
    """The ids in a random order that depends only on the set of ids and the seed."""
    return sorted(ids, key=lambda i: (seeded_key(seed, i), i))
