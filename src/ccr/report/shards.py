"""Report data as script files that a page opened from disk can load on demand.

Chromium refuses ``fetch()`` of ``file://`` URLs, but a ``<script src>`` next to the page loads;
so every data file is a script that hands its payload to ``CCR.put(name, value)``, and the page
injects the script of the shard it needs when it needs it. Files are written as rows stream in,
so a report of any size is built with the memory of one shard.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl

B64_CHUNK = 3 * (1 << 16)  # a multiple of 3 bytes encodes to base64 that concatenates cleanly


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def write_js(path: Path, name: str, value: Any) -> None:
    """One data file: the page's loader resolves ``name`` with ``value`` when the script runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"CCR.put({json.dumps(name)},\n{_dumps(value)}\n);\n", encoding="utf-8")


def read_js(path: Path) -> Any:
    """The value a file written by ``write_js`` carries (its JSON line)."""
    return json.loads(path.read_text(encoding="utf-8").split("\n")[1])


class ShardWriter:
    """Items of one kind in numbered files of ``size`` items: item ``i`` is in file ``i // size``."""

    def __init__(self, data_dir: Path, kind: str, size: int):
        self.data_dir, self.kind, self.size = data_dir, kind, size
        self._buffer: list[Any] = []
        self._count = 0
        self._cached: tuple[int, list[Any]] | None = None

    def _path(self, shard: int) -> Path:
        return self.data_dir / self.kind / f"{shard:05d}.js"

    def add(self, item: Any) -> int:
        """Queue one item; returns its index, by which the page finds it."""
        self._buffer.append(item)
        self._count += 1
        if len(self._buffer) == self.size:
            self._flush()
        return self._count - 1

    def _flush(self) -> None:
        if self._buffer:
            shard = (self._count - 1) // self.size
            write_js(self._path(shard), f"{self.kind}/{shard:05d}", self._buffer)
            self._buffer = []

    def close(self) -> int:
        self._flush()
        return self._count

    def get(self, index: int) -> Any:
        """An item already written (after ``close``), read back from its file."""
        shard = index // self.size
        if self._cached is None or self._cached[0] != shard:
            self._cached = (shard, read_js(self._path(shard)))
        return self._cached[1][index % self.size]

    def meta(self) -> dict[str, int]:
        return {"count": self._count, "size": self.size}


class Categories:
    """String values -> small integer codes, numbered in the order they are first seen."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, values: list[str]) -> np.ndarray:
        for v in values:
            if v not in self.codes:
                self.codes[v] = len(self.codes)
        return np.fromiter((self.codes[v] for v in values), dtype="<u2", count=len(values))

    @property
    def labels(self) -> list[str]:
        return list(self.codes)


class ColumnWriter:
    """One value per report row as a little-endian typed array: the page sorts and filters every
    row on these without loading any row's text.

    ``num`` columns are float32 with NaN for missing; ``cat`` columns are uint16 codes into labels.
    Values go to a binary file while rows stream in; ``values()`` maps it back for statistics and
    ``close()`` turns it into a base64 script.
    """

    def __init__(self, data_dir: Path, name: str, kind: str):
        self.data_dir, self.name, self.kind = data_dir, name, kind
        self.categories = Categories() if kind == "cat" else None
        self._bin = data_dir / "cols" / f"{name}.bin"
        self._bin.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._bin, "wb")  # noqa: SIM115 - closed in close()/finish()

    def append(self, values: pl.Series) -> None:
        """The next rows' values: strings for a ``cat`` column, numbers (null or not finite = missing) for ``num``."""
        import polars as pl

        if self.categories is not None:
            array = self.categories.encode(values.to_list())
        else:
            array = values.cast(pl.Float32).fill_null(float("nan")).to_numpy().astype("<f4")
            array[~np.isfinite(array)] = np.nan
        self._file.write(array.tobytes())

    def finish(self) -> None:
        self._file.close()

    def values(self) -> np.ndarray:
        """The whole column, memory-mapped from disk (call after ``finish``)."""
        dtype = "<u2" if self.categories is not None else "<f4"
        if self._bin.stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(self._bin, dtype=dtype, mode="r")

    def close(self) -> None:
        path = self.data_dir / "cols" / f"{self.name}.js"
        dtype, labels = ("u16", self.categories.labels) if self.categories is not None else ("f32", None)
        with open(path, "w", encoding="utf-8") as out, open(self._bin, "rb") as raw:
            out.write(f"CCR.put({json.dumps('cols/' + self.name)},\n"
                      f"{{\"dtype\":\"{dtype}\",\"labels\":{_dumps(labels)},\"b64\":\"")
            for block in iter(lambda: raw.read(B64_CHUNK), b""):
                out.write(base64.b64encode(block).decode("ascii"))
            out.write("\"}\n);\n")
        self._bin.unlink()
