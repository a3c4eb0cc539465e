"""A growing, append-only frame found by a string key through sorted runs of 64-bit hashes.

Ingest checks each block of entries against everything before it (400k media references at 2M
captions). A polars join against that state builds a hash table over all of it at every block,
and one sorted index grown by insertion copies all of it at every block: time grows with the
square of the corpus. Here rows are appended once and found through ``runs``. Two keys with one
hash are told apart by comparing the keys themselves, so lookups are exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccr.formats.ingest.runs import Runs

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_MAX_CHUNKS = 64  # past this many appended chunks the frame is made contiguous again (gathers stay fast)


class Keyed:
    """``frame``'s rows, each found by its ``key`` column (unique within the frame)."""

    def __init__(self, frame: pl.DataFrame, key: str) -> None:
        self.key = key
        self.frame = frame.clear()
        self._index = Runs()  # key hash -> frame row
        self.append(frame)

    def append(self, rows: pl.DataFrame) -> None:
        """Add rows whose keys the frame does not hold yet."""
        import numpy as np

        start = self.frame.height
        self._index.add(_hash(rows[self.key]), np.arange(start, start + rows.height))
        self.frame = self.frame.vstack(_own(rows.select(self.frame.columns)))
        if self.frame.n_chunks() > _MAX_CHUNKS:
            self.frame = self.frame.rechunk()

    def find(self, keys: pl.Series) -> np.ndarray:
        """Each key's row in the frame; -1 where the frame does not hold it."""
        import numpy as np

        hashes = _hash(keys)
        found, values = self._index.first(hashes)
        rows = np.where(found, values[0], -1) if values else np.full(len(hashes), -1, np.int64)
        hit = np.flatnonzero(found)
        same = (self.frame[self.key].gather(rows[hit]) == keys.gather(hit)).to_numpy()
        column = self.frame[self.key]
        for i in hit[~same]:  # another key with this hash: look through every row that shares it
            key = keys[int(i)]
            rows[i] = next((r for (r,) in self._index.every(int(hashes[i])) if column[r] == key), -1)
        return rows

    def column(self, name: str, rows: np.ndarray) -> pl.Series:
        """Column ``name`` at ``rows``; null where a row is -1 (a left join's answer)."""
        import polars as pl

        index = pl.Series(rows)
        return self.frame[name].gather(index.set(index < 0, None))


def _own(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows with text of their own: a filtered polars string column still holds the buffers of
    every row it came from (a block's paths, kept for the few new media ids), and the state would
    keep them all. Building each string anew keeps only these rows' bytes."""
    import polars as pl

    return rows.with_columns(pl.concat_str(pl.col(c), pl.lit("")).alias(c)
                             for c, t in rows.schema.items() if t == pl.String)


def _hash(keys: pl.Series) -> np.ndarray:
    return keys.hash(seed=0).to_numpy()
