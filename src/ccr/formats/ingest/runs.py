"""Sorted runs of 64-bit hashes with values beside them, grown by appending and merged like a
binary counter (two runs of a size become one), so every hash is merged about log2(appends) times
and a lookup is one binary search per run, however large the index grows.

``refs`` finds media references by their id through them; ``digests`` keeps caption ids' digests;
``Tally`` counts the derived caption ids given per (media, language).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Run = tuple["np.ndarray", ...]  # sorted hashes first, then one value array per column, in the same order


class Runs:
    """Hashes and their values; a hash may repeat (two keys sharing one), its values then differ."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def add(self, hashes: np.ndarray, *values: np.ndarray) -> None:
        import numpy as np

        if len(hashes) == 0:
            return
        order = np.argsort(hashes)
        self.runs.append((hashes[order], *(v[order] for v in values)))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= len(self.runs[-1][0]):
            self.runs.append(_merge(self.runs.pop(-2), self.runs.pop()))

    def first(self, hashes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """For each hash, whether a run holds it and the values of one entry that has it (a key
        sharing the hash may have another: ``every`` lists them all)."""
        import numpy as np

        found = np.zeros(len(hashes), bool)
        values = [np.zeros(len(hashes), v.dtype) for v in self.runs[0][1:]] if self.runs else []
        order = np.argsort(hashes)  # sorted needles: each search starts where the last ended, 10x faster
        needles = hashes[order]
        for run in self.runs:
            at = np.minimum(np.searchsorted(run[0], needles), len(run[0]) - 1)
            hit = run[0][at] == needles
            found[order[hit]] = True
            for out, column in zip(values, run[1:], strict=True):
                out[order[hit]] = column[at[hit]]
        return found, values

    def every(self, hashed: int) -> list[tuple[int, ...]]:
        """The values of every entry with this hash."""
        import numpy as np

        out = []
        for run in self.runs:
            start, end = np.searchsorted(run[0], hashed), np.searchsorted(run[0], hashed, side="right")
            out.extend(zip(*(column[start:end].tolist() for column in run[1:]), strict=True))
        return out


def _merge(a: Run, b: Run) -> Run:
    """Two sorted runs as one, ``a``'s entries before ``b``'s where hashes are equal. Each entry's
    place is found by a binary search, so the merge allocates its output and one position per
    entry of ``b`` (a sort of the two runs concatenated held three copies of them at the last merge
    of a 2M-row index)."""
    import numpy as np

    size = len(a[0]) + len(b[0])
    into_b = np.searchsorted(a[0], b[0], side="right") + np.arange(len(b[0]))
    from_a = np.ones(size, bool)
    from_a[into_b] = False
    merged = []
    for x, y in zip(a, b, strict=True):
        out = np.empty(size, np.result_type(x, y))
        out[from_a], out[into_b] = x, y
        merged.append(out)
    return tuple(merged)


class Tally:
    """A count per 64-bit key, grown by adding counts: runs merged like ``Runs``', equal keys summed
    as they merge, so a key is found once per run and the memory is that of the distinct keys."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def get(self, keys: np.ndarray) -> np.ndarray:
        """Each key's count so far (0 where never added)."""
        import numpy as np

        total = np.zeros(len(keys), np.int64)
        for hashes, counts in self.runs:
            at = np.minimum(np.searchsorted(hashes, keys), len(hashes) - 1)
            total += np.where(hashes[at] == keys, counts[at], 0)
        return total

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add ``counts`` to the keys' counts; a key appears once in ``keys``."""
        import numpy as np

        if len(keys) == 0:
            return
        order = np.argsort(keys)
        self.runs.append((keys[order], counts[order].astype(np.int64)))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= len(self.runs[-1][0]):
            hashes, counts = _merge(self.runs.pop(-2), self.runs.pop())
            starts = np.flatnonzero(np.concatenate([[True], hashes[1:] != hashes[:-1]]))
            self.runs.append((hashes[starts], np.add.reduceat(counts, starts)))
