"""The reference description of every media id ingest has met, kept on disk.

Every caption row restates its media (split, modality, path, duration), and each restatement is
checked against the first (or the corpus's row). A source with one caption per image (CC3M) has as
many references as captions: kept as text in a frame they cost about 150 bytes each, 300 MB at 2M
and growing with the corpus. Here a media id is two independent 64-bit hashes (two ids are taken
for one only when 128 bits agree), found through sorted ``runs``; split, modality and verdict are
codes into the few texts they take; a path is compared by its 64-bit hash. A reference is then a
fixed-width record, appended to an unlinked file beside the corpus and read back by row (a block's
media ids are mostly the rows just appended, or the corpus's in its order: a few contiguous reads);
a path's text waits in a second file until a conflict must quote it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ccr.formats.ingest.runs import Hashed, Runs

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

CODED = ("split", "modality", "verdict")  # few distinct texts: kept as codes into ``MediaRefs.words``
_NULLABLE = (*CODED, "path", "duration", "file", "line")  # bit i of a record's ``nulls``: that column is null
_READ_ROWS = 65_536  # records read at once at most


class MediaRefs:
    """Media references in the order they were appended; a row number names one."""

    def __init__(self, spill_dir: Path) -> None:
        self._index = Runs(spill_dir)  # media id -> row
        self.height = 0
        self.words: list[str] = []  # the texts of the coded columns
        self._codes: dict[str, int] = {}
        self._records = tempfile.TemporaryFile(dir=spill_dir)  # one ``_record()`` a row; gone when closed
        self._paths = tempfile.TemporaryFile(dir=spill_dir)  # the path texts, end to end
        self._spilled = 0

    def close(self) -> None:
        self._records.close()
        self._paths.close()
        self._index.close()

    def append(self, rows: pl.DataFrame, ids: Hashed) -> None:
        """Add the references of media ids not held yet (``ids``: theirs, as ``runs.hashes``):
        columns split, modality, path, duration, file, line, verdict."""
        import numpy as np
        import polars as pl

        start = self.height
        self._index.add(ids, np.arange(start, start + rows.height, dtype=np.int64))
        record = _record()
        out = np.zeros(rows.height, record)
        out["path_at"] = self._spill(rows["path"])
        new = rows.select(*[self._encode(rows[c]).alias(c) for c in CODED], path_hash(pl.col("path")).alias("path"),
                          "duration", "file", "line")
        for bit, name in enumerate(_NULLABLE):
            column = new[name]
            out[name] = column.fill_null(0).to_numpy()
            out["nulls"] |= column.is_null().to_numpy().astype(np.uint8) << bit
        os.pwrite(self._records.fileno(), out.tobytes(), start * record.itemsize)
        self.height += rows.height

    def find(self, ids: Hashed) -> np.ndarray:
        """Each media id's row (``ids``: as ``runs.hashes``); -1 where none is held."""
        import numpy as np

        found, values = self._index.find(ids)
        return np.where(found, values[0], -1) if values else np.full(len(found), -1, np.int64)

    def columns(self, rows: np.ndarray) -> pl.DataFrame:
        """The references at ``rows`` (null where a row is -1), as ``ref_split``, ``ref_modality``,
        ``ref_path`` (the path's hash), ``ref_duration``, ``ref_file``, ``ref_line``, ``verdict``
        and ``ref_row``."""
        import numpy as np
        import polars as pl

        got = np.zeros(len(rows), _record())
        got["nulls"] = 0xFF  # every column null where no row is held
        held = rows >= 0
        if held.any():
            order = np.argsort(rows[held])  # already sorted, most often: the rows just appended
            found = np.empty(len(order), got.dtype)
            found[order] = self._read(rows[held][order])
            got[held] = found
        words = pl.Series(self.words, dtype=pl.String)
        out = {}
        for bit, name in enumerate(_NULLABLE):
            values = pl.Series(got[name]).set(pl.Series(((got["nulls"] >> bit) & 1).astype(bool)), None)
            out["verdict" if name == "verdict" else f"ref_{name}"] = words.gather(values) if name in CODED else values
        index = pl.Series("ref_row", rows)
        return pl.DataFrame(out).select(*[c for c in out if c != "verdict"], "verdict", index.set(index < 0, None))

    def path(self, row: int) -> str | None:
        """The text of the path at ``row`` (a conflict quotes it)."""
        import numpy as np

        got = self._read(np.array([row, row + 1] if row + 1 < self.height else [row]))
        if got["nulls"][0] >> _NULLABLE.index("path") & 1:
            return None
        start = int(got["path_at"][0])
        end = int(got["path_at"][1]) if len(got) > 1 else self._spilled
        return os.pread(self._paths.fileno(), end - start, start).decode("utf-8")

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """The records at ``rows`` (sorted): each stretch of them that spans at most ``_READ_ROWS``
        records is read at once."""
        import numpy as np

        record = _record()
        parts = []
        start = 0
        while start < len(rows):
            stop = int(np.searchsorted(rows, rows[start] + _READ_ROWS))
            first, last = int(rows[start]), int(rows[stop - 1])
            data = os.pread(self._records.fileno(), (last - first + 1) * record.itemsize, first * record.itemsize)
            parts.append(np.frombuffer(data, record)[rows[start:stop] - first])
            start = stop
        return np.concatenate(parts) if parts else np.zeros(0, record)

    def _spill(self, paths: pl.Series) -> pl.Series:
        """Write the paths' text to the file; each one's offset there."""
        import numpy as np
        import pyarrow as pa

        text = paths.to_arrow().cast(pa.large_string())
        offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset:text.offset + len(text) + 1]
        data = text.buffers()[2]
        if data is not None and offsets[-1] > offsets[0]:
            os.pwrite(self._paths.fileno(), memoryview(data)[offsets[0]:offsets[-1]], self._spilled)
        at = self._spilled + offsets[:-1] - offsets[0]
        self._spilled += int(offsets[-1] - offsets[0])
        return at.astype(np.uint64)

    def _encode(self, texts: pl.Series) -> pl.Series:
        import polars as pl

        for word in texts.drop_nulls().unique().to_list():
            if word not in self._codes:
                self._codes[word] = len(self.words)
                self.words.append(word)
        return texts.replace_strict(self._codes, default=None, return_dtype=pl.UInt32)


def path_hash(path: pl.Expr) -> pl.Expr:
    """A path as its 64-bit hash, null where there is none: references compare paths this way."""
    import polars as pl

    return pl.when(path.is_not_null()).then(path.hash(seed=2))


def _record() -> np.dtype:
    """A reference on disk: codes and hashes, with a bit per column that is null."""
    import numpy as np

    return np.dtype([("split", "<u4"), ("modality", "<u4"), ("verdict", "<u4"), ("file", "<u4"), ("path", "<u8"),
                     ("path_at", "<u8"), ("duration", "<f8"), ("line", "<i8"), ("nulls", "u1")])
