"""Sorted runs of 64-bit hashes with values beside them, grown by appending and merged like a
binary counter (two runs of a size become one), so every hash is merged about log2(appends) times
and a lookup is one binary search per run, however large the index grows.

``keyed`` finds frame rows by a string key through them; ``digests`` keeps caption ids' digests.
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
    """Two sorted runs as one: a stable sort finds the two runs and merges them in linear time."""
    import numpy as np

    order = np.argsort(np.concatenate([a[0], b[0]]), kind="stable")
    return tuple(np.concatenate([x, y])[order] for x, y in zip(a, b, strict=True))
