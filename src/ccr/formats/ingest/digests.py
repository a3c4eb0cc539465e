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

from ccr.formats.ingest.runs import Hashed, Runs

if TYPE_CHECKING:
    import polars as pl


class Digests:
    def __init__(self, spill_dir: Path) -> None:
        self._runs = Runs(spill_dir)  # caption id -> digest

    def close(self) -> None:
        self._runs.close()

    def add(self, ids: Hashed, digests: pl.Series) -> None:
        """Record ids (as ``runs.hashes``) not seen yet with their digests."""
        self._runs.add(ids, digests.to_numpy())

    def find(self, ids: Hashed) -> pl.Series:
        """Each id's digest; null where the id was not seen."""
        import numpy as np
        import polars as pl

        found, values = self._runs.find(ids)
        digests = values[0] if values else np.zeros(len(found), np.uint64)
        return pl.Series(digests).set(pl.Series(~found), None)
