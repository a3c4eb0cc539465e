"""A growing, append-only frame found by a string key through a sorted array of 64-bit hashes.

Ingest checks each block of entries against everything before it (at 2M captions: 2M caption ids,
400k media references). A polars join against that state builds a hash table over all of it at
every block, and rebuilding the frame to grow it copies it each time: time and memory grow with the
corpus. Here rows are appended once (as chunks, never re-copied) and found by a binary search of
their key's hash, so a block costs a search per row and a linear merge of its new hashes. Two keys
with one hash are told apart by comparing the keys themselves, so lookups are exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


class Keyed:
    """``frame``'s rows, each found by its ``key`` column (unique within the frame)."""

    def __init__(self, frame: pl.DataFrame, key: str) -> None:
        import numpy as np

        self.key = key
        self.frame = frame.clear()
        self._hashes = np.empty(0, np.uint64)  # sorted
        self._rows = np.empty(0, np.int64)  # the frame's row of each hash
        self.append(frame)

    def append(self, rows: pl.DataFrame) -> None:
        """Add rows whose keys the frame does not hold yet."""
        import numpy as np

        hashes = _hash(rows[self.key])
        order = np.argsort(hashes)
        at = np.searchsorted(self._hashes, hashes[order])
        self._hashes = np.insert(self._hashes, at, hashes[order])
        self._rows = np.insert(self._rows, at, order + self.frame.height)
        self.frame = self.frame.vstack(_own(rows.select(self.frame.columns)))

    def find(self, keys: pl.Series) -> np.ndarray:
        """Each key's row in the frame; -1 where the frame does not hold it."""
        import numpy as np

        hashes = _hash(keys)
        if len(self._hashes) == 0:
            return np.full(len(hashes), -1, np.int64)
        order = np.argsort(hashes)  # sorted needles: each search starts where the last ended, 10x faster
        at = np.empty(len(hashes), np.int64)
        at[order] = np.searchsorted(self._hashes, hashes[order])
        near = np.minimum(at, len(self._hashes) - 1)
        rows = np.where(self._hashes[near] == hashes, self._rows[near], -1)
        hit = np.flatnonzero(rows >= 0)
        same = (self.frame[self.key].gather(rows[hit]) == keys.gather(hit)).to_numpy()
        for i in hit[~same]:  # another key with this hash: look through all that share it
            rows[i] = self._exact(keys[int(i)], hashes[i], int(at[i]))
        return rows

    def column(self, name: str, rows: np.ndarray) -> pl.Series:
        """Column ``name`` at ``rows``; null where a row is -1 (a left join's answer)."""
        import polars as pl

        index = pl.Series(rows)
        return self.frame[name].gather(index.set(index < 0, None))

    def _exact(self, key: str, hashed: int, start: int) -> int:
        import numpy as np

        end = int(np.searchsorted(self._hashes, hashed, side="right"))
        column = self.frame[self.key]
        return next((int(r) for r in self._rows[start:end] if column[int(r)] == key), -1)


def _own(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows with text of their own: a filtered polars string column still holds the buffers of
    every row it came from (a block's paths, kept for the few new media ids), and the state would
    keep them all. Building each string anew keeps only these rows' bytes."""
    import polars as pl

    return rows.with_columns(pl.concat_str(pl.col(c), pl.lit("")).alias(c)
                             for c, t in rows.schema.items() if t == pl.String)


def _hash(keys: pl.Series) -> np.ndarray:
    return keys.hash(seed=0).to_numpy()
