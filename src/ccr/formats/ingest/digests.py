"""The caption ids ingest has seen, each with the digest of its content, in 24 bytes an id on disk.

Ingest must tell a repeated caption (same id, same content: nothing to do) from a clash (same id,
other content: a failure) against every caption before it: 2M at CC3M scale. Keeping the ids as
text costs their bytes plus an index; here an id is kept as two independent 64-bit hashes, so
two ids are taken for one only when 128 bits agree (for 100M ids, a chance below 1e-20), and
found through sorted ``runs`` of the first hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ccr.formats.ingest.runs import Runs

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


class Digests:
    def __init__(self, spill_dir: Path) -> None:
        self._runs = Runs(spill_dir)  # first hash -> (second hash, digest), on disk

    def close(self) -> None:
        self._runs.close()

    def add(self, ids: pl.Series, digests: pl.Series) -> None:
        """Record ids not seen yet with their digests."""
        first, second = _hashes(ids)
        self._runs.add(first, second, digests.to_numpy())

    def find(self, ids: pl.Series) -> pl.Series:
        """Each id's digest; null where the id was not seen."""
        import numpy as np
        import polars as pl

        first, second = _hashes(ids)
        found, values = self._runs.first(first)
        if not values:
            return pl.Series(np.zeros(len(first), np.uint64)).set(pl.Series(~found), None)
        seconds, digests = values
        for i in np.flatnonzero(found & (seconds != second)):  # another id shares the first hash
            match = [d for s, d in self._runs.every(int(first[i])) if s == second[i]]
            found[i], digests[i] = bool(match), match[0] if match else 0
        return pl.Series(digests).set(pl.Series(~found), None)


def _hashes(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    return ids.hash(seed=0).to_numpy(), ids.hash(seed=1).to_numpy()
