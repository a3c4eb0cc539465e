"""Hash-partitioned spill files: how the report joins tables of any size in bounded memory.

Shard files are read in batches of ``BATCH_ROWS``; each batch is split by a hash of a key and
appended to one Arrow stream file per partition. A partition is later read whole, so its size,
not the corpus's, is what memory holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

BATCH_ROWS = 8192
HASH_SEED = 17


def part_of(column: str, parts: int) -> pl.Expr:
    """The partition of each row: the same value lands in the same partition in every table."""
    import polars as pl

    return (pl.col(column).hash(HASH_SEED) % parts).cast(pl.UInt32)


def shard_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def shard_batches(path: Path, schema: dict[str, Any]) -> Iterator[pl.DataFrame]:
    """A shard file in batches with exactly ``schema``'s columns and types (absent columns are null)."""
    import polars as pl
    import pyarrow.parquet as pq

    shard = pq.ParquetFile(path)
    present = [c for c in schema if c in shard.schema_arrow.names]
    for batch in shard.iter_batches(batch_size=BATCH_ROWS, columns=present):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        yield frame.select([pl.col(c).cast(t) if c in present else pl.lit(None, dtype=t).alias(c)  # type: ignore[arg-type]
                            for c, t in schema.items()])


class Spill:
    """One table's rows in ``parts`` partition files."""

    def __init__(self, directory: Path, parts: int, schema: dict[str, Any]):
        self.directory, self.parts, self.schema = directory, parts, schema
        self._writers: dict[int, tuple[Any, Any]] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, part: int) -> Path:
        return self.directory / f"{part:05d}.arrow"

    def add(self, frame: pl.DataFrame, part: pl.Expr) -> None:
        """Append rows; ``part`` says which partition each row goes to."""
        import pyarrow as pa

        if frame.height == 0:
            return
        split = frame.with_columns(part.alias("_part")).partition_by("_part", as_dict=True, include_key=False)
        for (index,), rows in split.items():
            table = (rows if rows.columns == list(self.schema) else rows.select(list(self.schema))).to_arrow()
            if index not in self._writers:
                sink = pa.OSFile(str(self._path(int(index))), "wb")
                self._writers[index] = (sink, pa.ipc.new_stream(sink, table.schema))
            self._writers[index][1].write_table(table)

    def close(self) -> None:
        for sink, writer in self._writers.values():
            writer.close()
            sink.close()
        self._writers = {}

    def read(self, part: int) -> pl.DataFrame:
        import polars as pl

        path = self._path(part)
        if not path.exists():
            return pl.DataFrame(schema=self.schema)
        return pl.read_ipc_stream(path)
