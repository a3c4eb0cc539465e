"""Sorted runs of 64-bit hashes with values beside them, grown by appending and merged like a
binary counter (two runs of a size become one), so every hash is merged about log2(appends) times
and a lookup is one binary search per run, however large the index grows.

A run of ``Runs`` past ``SPILL_ENTRIES`` lives on disk, in an unlinked file beside the corpus (gone
when closed, or when the process dies), read a window at a time: a lookup reads the windows its
hashes fall in, a merge streams both runs into a third. Ingest's memory then does not grow with the
source (24 bytes a caption id and as many a media id stayed in RAM before: 74 MB at 2M captions);
the files sit in the page cache, so a window costs a copy, not a disk read. Smaller runs, merged
most often, stay in memory: a few MB whatever the source's size.

``refs`` finds media references by their id through them; ``digests`` keeps caption ids' digests;
``Tally`` counts the derived caption ids given per (media, language).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

Run = tuple["np.ndarray", ...]  # sorted hashes first, then one value array per column, in the same order
Hashed = tuple["np.ndarray", "np.ndarray"]  # two independent 64-bit hashes of each key
WINDOW = 32_768  # entries of a run on disk read at once (a merge holds a window of each run)
SPILL_ENTRIES = 65_536  # a run merged past this many entries goes to disk


@dataclass
class _Held:
    """A run in memory."""

    columns: Run

    @property
    def size(self) -> int:
        return len(self.columns[0])

    @property
    def dtypes(self) -> tuple[np.dtype, ...]:
        return tuple(c.dtype for c in self.columns)

    def read(self, column: int, start: int, stop: int) -> np.ndarray:
        return self.columns[column][start:stop]

    def windows(self, low: int, high: int) -> list[int]:
        """The windows that may hold hashes from ``low`` to ``high``."""
        import numpy as np

        return np.flatnonzero((self.fences <= high) & (self.lasts >= low)).tolist()

    @property
    def fences(self) -> np.ndarray:
        """The first hash of each window."""
        return self.columns[0][::WINDOW]

    @property
    def lasts(self) -> np.ndarray:
        """The last hash of each window."""
        import numpy as np

        ends = np.minimum(np.arange(WINDOW, self.size + WINDOW, WINDOW), self.size) - 1
        return self.columns[0][ends]

    def close(self) -> None:
        self.columns = ()


@dataclass
class _Stored:
    """A run in a file: its columns one after another, hashes first, each with room for ``capacity``
    entries (a tally's merge writes fewer: equal keys become one)."""

    file: IO[bytes]
    capacity: int
    dtypes: tuple[np.dtype, ...]
    size: int = 0  # entries written, once sealed
    fences: np.ndarray = field(init=False)  # the first hash of each window
    lasts: np.ndarray = field(init=False)  # the last hash of each window
    windows = _Held.windows

    def close(self) -> None:
        self.file.close()

    def read(self, column: int, start: int, stop: int) -> np.ndarray:
        import numpy as np

        dtype = self.dtypes[column]
        return np.frombuffer(os.pread(self.file.fileno(), (stop - start) * dtype.itemsize, self._at(column, start)),
                             dtype)

    def write(self, start: int, columns: Run) -> None:
        for column, values in enumerate(columns):
            data = values.astype(self.dtypes[column], copy=False).tobytes()
            os.pwrite(self.file.fileno(), data, self._at(column, start))

    def _at(self, column: int, entry: int) -> int:
        """Where ``entry`` of ``column`` lies in the file."""
        return sum(self.capacity * d.itemsize for d in self.dtypes[:column]) + entry * self.dtypes[column].itemsize

    def seal(self, size: int) -> None:
        """Note each window's first and last hash, once all ``size`` entries are written."""
        import numpy as np

        self.size = size
        starts = range(0, self.size, WINDOW)
        self.fences = np.array([self.read(0, s, s + 1)[0] for s in starts], np.uint64)
        self.lasts = np.array([self.read(0, min(s + WINDOW, self.size) - 1, min(s + WINDOW, self.size))[0]
                               for s in starts], np.uint64)


def hashes(keys: pl.Series) -> Hashed:
    """Two independent 64-bit hashes of each key: ``Runs`` takes two keys for one only when all 128
    bits agree (for 100M keys, a chance below 1e-20). Callers hash a block's keys once, to look
    them up and then to add the new ones."""
    return keys.hash(seed=0).to_numpy(), keys.hash(seed=1).to_numpy()


def pick(hashed: Hashed, which: np.ndarray) -> Hashed:
    """The hashes of some of the keys (a mask or positions)."""
    return hashed[0][which], hashed[1][which]


class _Stack:
    """Sorted runs, newest last, merged like a binary counter: two runs of a size become one."""

    def __init__(self, spill_dir: Path) -> None:
        self.spill_dir = spill_dir  # where runs past ``SPILL_ENTRIES`` go
        self.runs: list[_Held | _Stored] = []

    def close(self) -> None:
        for run in self.runs:
            run.close()
        self.runs = []

    def _push(self, run: Run, reduce: Callable[[Run], Run] | None = None) -> None:
        self.runs.append(_Held(run))
        while len(self.runs) > 1 and self.runs[-2].size <= self.runs[-1].size:
            later = self.runs.pop()
            self.runs.append(_merged(self.runs.pop(), later, self.spill_dir, reduce))


class Runs(_Stack):
    """Keys (as ``hashes``) and their values, found through sorted runs of the first hash; two keys
    sharing the first hash are told apart by the second."""

    def add(self, keys: Hashed, *values: np.ndarray) -> None:
        """Add keys not held yet, with their values."""
        import numpy as np

        first, second = keys
        if len(first) == 0:
            return
        order = np.argsort(first)
        self._push((first[order], second[order], *(v[order] for v in values)))

    def find(self, keys: Hashed) -> tuple[np.ndarray, list[np.ndarray]]:
        """For each key, whether it was added, and its values (zero where not)."""
        import numpy as np

        first, second = keys
        found, values = self._first(first)
        if not values:
            return found, []
        seconds, *rest = values
        for i in np.flatnonzero(found & (seconds != second)).tolist():  # another key shares the first hash
            match = next((v for s, *v in self._every(int(first[i])) if s == second[i]), None)
            found[i] = match is not None
            for out, value in zip(rest, match or [0] * len(rest), strict=True):
                out[i] = value
        return found, rest

    def _first(self, hashes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """For each first hash, whether a run holds it and the values of one entry that has it (a
        key sharing the hash may have another: ``_every`` lists them all)."""
        import numpy as np

        found = np.zeros(len(hashes), bool)
        values = [np.zeros(len(hashes), d) for d in self.runs[0].dtypes[1:]] if self.runs else []
        for into, run, start, stop, at in _hits(self.runs, hashes):
            found[into] = True
            for column, out in enumerate(values, start=1):
                out[into] = run.read(column, start, stop)[at]
        return found, values

    def _every(self, hashed: int) -> list[tuple[int, ...]]:
        """The values of every entry with this hash."""
        import numpy as np

        hashed = np.uint64(hashed)  # as a Python int, searchsorted compares it with uint64 as float64 past 2**53
        out = []
        for run in self.runs:
            for w in run.windows(hashed, hashed):
                start, stop = _window(run, w)
                window = run.read(0, start, stop)
                lo, hi = np.searchsorted(window, hashed), np.searchsorted(window, hashed, side="right")
                columns = [run.read(c, start + lo, start + hi).tolist() for c in range(1, len(run.dtypes))]
                out.extend(zip(*columns, strict=True))
        return out

def _hits(runs: list[_Held | _Stored], hashes: np.ndarray) -> Iterator[tuple[np.ndarray, _Held | _Stored, int, int,
                                                                          np.ndarray]]:
    """Where each run holds some of ``hashes``: (their positions in ``hashes``, the run, the window's
    entries, where in the window each one is), a window at a time."""
    import numpy as np

    order = np.argsort(hashes)  # sorted needles: each search starts where the last ended, 10x faster
    needles = hashes[order]
    for run in runs:
        lows = np.searchsorted(needles, run.fences)
        highs = np.searchsorted(needles, run.lasts, side="right")
        for w in np.flatnonzero(highs > lows).tolist():
            start, stop = _window(run, w)
            window = run.read(0, start, stop)
            wanted = needles[lows[w]:highs[w]]
            at = np.minimum(np.searchsorted(window, wanted), len(window) - 1)
            hit = window[at] == wanted
            if hit.any():
                yield order[lows[w]:highs[w]][hit], run, start, stop, at[hit]


def _merged(a: _Held | _Stored, b: _Held | _Stored, spill_dir: Path,
            reduce: Callable[[Run], Run] | None = None) -> _Held | _Stored:
    """``a`` and ``b`` as one run (``reduce`` applied to what is merged: a tally sums equal keys): in
    memory up to ``SPILL_ENTRIES``; past it on disk, a window of each in memory at a time, each step
    writing the entries of both windows up to the smaller of their last hashes (all that is left of a
    run whose window reaches its end), which no entry still unread can precede."""
    import numpy as np

    def merge(x: Run, y: Run) -> Run:
        return _merge(x, y) if reduce is None else reduce(_merge(x, y))

    if isinstance(a, _Held) and isinstance(b, _Held) and a.size + b.size <= SPILL_ENTRIES:
        return _Held(merge(a.columns, b.columns))
    out = _Stored(tempfile.TemporaryFile(dir=spill_dir), a.size + b.size, a.dtypes)
    ia = ib = written = 0
    while ia < a.size or ib < b.size:
        wa = [a.read(c, ia, min(ia + WINDOW, a.size)) for c in range(len(a.dtypes))]
        wb = [b.read(c, ib, min(ib + WINDOW, b.size)) for c in range(len(b.dtypes))]
        open_ends = [w[0][-1] for w, i, run in ((wa, ia, a), (wb, ib, b)) if i + WINDOW < run.size]
        na, nb = len(wa[0]), len(wb[0])
        if open_ends:
            cut = min(open_ends)
            na, nb = int(np.searchsorted(wa[0], cut, side="right")), int(np.searchsorted(wb[0], cut, side="right"))
        step = merge(tuple(c[:na] for c in wa), tuple(c[:nb] for c in wb))  # equal hashes meet in one step
        out.write(written, step)
        written, ia, ib = written + len(step[0]), ia + na, ib + nb
    a.close()
    b.close()
    out.seal(written)
    return out


def _window(run: _Held | _Stored, w: int) -> tuple[int, int]:
    """The entries of window ``w`` of ``run``."""
    return w * WINDOW, min(w * WINDOW + WINDOW, run.size)


def _merge(a: Run, b: Run) -> Run:
    """Two sorted runs as one, ``a``'s entries before ``b``'s where hashes are equal: a stable sort
    of both, which finds the two sorted runs and merges them in linear time. Runs on disk merge a
    window of each at a time (so no merge here passes ``SPILL_ENTRIES`` entries), and there equal
    hashes that straddle a window's end may interleave: nothing reads that order (``Runs`` tells keys
    apart by the second hash, a tally holds a key once a run)."""
    import numpy as np

    order = np.argsort(np.concatenate([a[0], b[0]]), kind="stable")
    return tuple(np.concatenate([x, y])[order] for x, y in zip(a, b, strict=True))


class Tally(_Stack):
    """A count per 64-bit key, grown by adding counts: runs merged like ``Runs``' (and like them on
    disk past ``SPILL_ENTRIES``), equal keys summed as they merge, so a key is found once per run
    and what is kept is a count per distinct key."""

    def get(self, keys: np.ndarray) -> np.ndarray:
        """Each key's count so far (0 where never added)."""
        import numpy as np

        total = np.zeros(len(keys), np.int64)
        for into, run, start, stop, at in _hits(self.runs, keys):
            total[into] += run.read(1, start, stop)[at]
        return total

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add ``counts`` to the keys' counts; a key appears once in ``keys``."""
        import numpy as np

        if len(keys) == 0:
            return
        order = np.argsort(keys)
        self._push((keys[order], counts[order].astype(np.int64)), _summed)


def _summed(run: Run) -> Run:
    """A sorted run of keys and counts with each key once, its counts summed."""
    import numpy as np

    keys, counts = run
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[starts], np.add.reduceat(counts, starts) if len(starts) else counts
