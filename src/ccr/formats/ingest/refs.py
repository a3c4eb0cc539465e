"""The reference description of every media id ingest has met, in about 60 bytes an id.

Every caption row restates its media (split, modality, path, duration), and each restatement is
checked against the first (or the corpus's row). A source with one caption per image (CC3M) has as
many references as captions: kept as text in a frame they cost about 150 bytes each, 300 MB at 2M
and growing with the corpus. Here a media id is two independent 64-bit hashes (two ids are taken
for one only when 128 bits agree), found through sorted ``runs``; split, modality and verdict are
codes into the few texts they take; a path is compared by its 64-bit hash and its text waits in a
file beside the corpus until a conflict must quote it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ccr.formats.ingest.runs import Runs

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

CODED = ("split", "modality", "verdict")  # few distinct texts: kept as codes into ``MediaRefs.words``
_MAX_CHUNKS = 64  # past this many appended chunks the frame is made contiguous again (gathers stay fast)


class MediaRefs:
    """Media references in the order they were appended; a row number names one."""

    def __init__(self, spill_dir: Path) -> None:
        import polars as pl

        self._index = Runs(spill_dir)  # first hash of the media id -> (second hash, row), on disk
        self.frame = pl.DataFrame(schema=_schema())
        self.words: list[str] = []  # the texts of the coded columns
        self._codes: dict[str, int] = {}
        self._paths = tempfile.TemporaryFile(dir=spill_dir)  # the path texts, end to end; gone when closed
        self._spilled = 0

    @property
    def height(self) -> int:
        return self.frame.height

    def close(self) -> None:
        self._paths.close()
        self._index.close()

    def append(self, rows: pl.DataFrame) -> None:
        """Add the references of media ids not held yet: columns ``media_id``, split, modality, path,
        duration, file, line, verdict."""
        import numpy as np
        import polars as pl

        start = self.height
        first, second = hashes(rows["media_id"])
        self._index.add(first, second, np.arange(start, start + rows.height, dtype=np.int64))
        at = self._spill(rows["path"])
        coded = [self._encode(rows[c]).alias(c) for c in CODED]
        new = rows.select(path_hash(pl.col("path")).alias("path"), pl.Series("path_at", at), "duration",
                          "file", "line").with_columns(coded).select(self.frame.columns).cast(_schema())
        self.frame = self.frame.vstack(new)
        if self.frame.n_chunks() > _MAX_CHUNKS:
            self.frame = self.frame.rechunk()

    def find(self, media_ids: pl.Series) -> np.ndarray:
        """Each media id's row; -1 where none is held."""
        import numpy as np

        first, second = hashes(media_ids)
        found, values = self._index.first(first)
        if not values:
            return np.full(len(first), -1, np.int64)
        seconds, rows = values
        rows = np.where(found, rows, -1)
        for i in np.flatnonzero(found & (seconds != second)):  # another id shares the first hash
            rows[i] = next((r for s, r in self._index.every(int(first[i])) if s == second[i]), -1)
        return rows

    def columns(self, rows: np.ndarray) -> pl.DataFrame:
        """The references at ``rows`` (null where a row is -1), as ``ref_split``, ``ref_modality``,
        ``ref_path`` (the path's hash), ``ref_duration``, ``ref_file``, ``ref_line``, ``verdict``
        and ``ref_row``."""
        import polars as pl

        index = pl.Series(rows)
        index = index.set(index < 0, None)
        words = pl.Series(self.words, dtype=pl.String)
        got = self.frame.select(pl.all().gather(index))
        return got.select(*[words.gather(got[c]).alias("verdict" if c == "verdict" else f"ref_{c}") for c in CODED],
                          *[pl.col(c).alias(f"ref_{c}") for c in ("path", "duration", "file", "line")],
                          index.alias("ref_row"))

    def path(self, row: int) -> str | None:
        """The text of the path at ``row`` (a conflict quotes it)."""
        if self.frame["path"][row] is None:
            return None
        at = self.frame["path_at"]
        start = at[row]
        end = at[row + 1] if row + 1 < self.height else self._spilled
        return os.pread(self._paths.fileno(), end - start, start).decode("utf-8")

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


def hashes(keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each key."""
    return keys.hash(seed=0).to_numpy(), keys.hash(seed=1).to_numpy()


def path_hash(path: pl.Expr) -> pl.Expr:
    """A path as its 64-bit hash, null where there is none: references compare paths this way."""
    import polars as pl

    return pl.when(path.is_not_null()).then(path.hash(seed=2))


def _schema() -> dict[str, pl.DataType]:
    import polars as pl

    return {"split": pl.UInt32, "modality": pl.UInt32, "path": pl.UInt64, "path_at": pl.UInt64,
            "duration": pl.Float64, "file": pl.UInt32, "line": pl.Int64, "verdict": pl.UInt32}
