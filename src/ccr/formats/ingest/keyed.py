"""A growing, append-only frame found by a string key through sorted runs of 64-bit hashes.

Ingest checks each block of entries against everything before it (at 2M captions: 2M caption ids,
400k media references). A polars join against that state builds a hash table over all of it at
every block, and one sorted array grown by insertion copies all of it at every block: time grows
with the square of the corpus. Here rows are appended once and their hashes kept as a few sorted
runs, merged two of a size at a time (a binary counter), so every hash is merged about log2(blocks)
times and a lookup is one binary search per run. Two keys with one hash are told apart by comparing
the keys themselves, so lookups are exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_MAX_CHUNKS = 8  # the frame is made contiguous again past this many appended chunks: gathers stay fast


class Keyed:
    """``frame``'s rows, each found by its ``key`` column (unique within the frame)."""

    def __init__(self, frame: pl.DataFrame, key: str) -> None:
        self.key = key
        self.frame = frame.clear()
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, their frame rows), largest first
        self.append(frame)

    def append(self, rows: pl.DataFrame) -> None:
        """Add rows whose keys the frame does not hold yet."""
        import numpy as np

        if rows.height == 0:
            return
        hashes = _hash(rows[self.key])
        order = np.argsort(hashes)
        self._runs.append((hashes[order], order + self.frame.height))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= len(self._runs[-1][0]):
            self._runs.append(_merge(self._runs.pop(-2), self._runs.pop()))
        self.frame = self.frame.vstack(_own(rows.select(self.frame.columns)))
        if self.frame.n_chunks() > _MAX_CHUNKS:
            self.frame = self.frame.rechunk()

    def find(self, keys: pl.Series) -> np.ndarray:
        """Each key's row in the frame; -1 where the frame does not hold it."""
        import numpy as np

        hashes = _hash(keys)
        rows = np.full(len(hashes), -1, np.int64)
        order = np.argsort(hashes)  # sorted needles: each search starts where the last ended, 10x faster
        needles = hashes[order]
        for run, run_rows in self._runs:
            at = np.minimum(np.searchsorted(run, needles), len(run) - 1)
            hit = run[at] == needles
            rows[order[hit]] = run_rows[at[hit]]
        hit = np.flatnonzero(rows >= 0)
        same = (self.frame[self.key].gather(rows[hit]) == keys.gather(hit)).to_numpy()
        for i in hit[~same]:  # another key with this hash: look through every row that shares it
            rows[i] = self._exact(keys[int(i)], hashes[i])
        return rows

    def column(self, name: str, rows: np.ndarray) -> pl.Series:
        """Column ``name`` at ``rows``; null where a row is -1 (a left join's answer)."""
        import polars as pl

        index = pl.Series(rows)
        return self.frame[name].gather(index.set(index < 0, None))

    def _exact(self, key: str, hashed: int) -> int:
        import numpy as np

        column = self.frame[self.key]
        for run, run_rows in self._runs:
            start, end = np.searchsorted(run, hashed), np.searchsorted(run, hashed, side="right")
            found = next((int(r) for r in run_rows[start:end] if column[int(r)] == key), None)
            if found is not None:
                return found
        return -1


def _merge(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs as one: a stable sort finds the two runs and merges them in linear time."""
    import numpy as np

    hashes = np.concatenate([a[0], b[0]])
    order = np.argsort(hashes, kind="stable")
    return hashes[order], np.concatenate([a[1], b[1]])[order]


def _own(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows with text of their own: a filtered polars string column still holds the buffers of
    every row it came from (a block's paths, kept for the few new media ids), and the state would
    keep them all. Building each string anew keeps only these rows' bytes."""
    import polars as pl

    return rows.with_columns(pl.concat_str(pl.col(c), pl.lit("")).alias(c)
                             for c, t in rows.schema.items() if t == pl.String)


def _hash(keys: pl.Series) -> np.ndarray:
    return keys.hash(seed=0).to_numpy()
