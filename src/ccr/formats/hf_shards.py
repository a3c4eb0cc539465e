"""Sharded Parquet the way the Hub lays out a dataset: ``{split}-00000-of-00003.parquet`` per split.

The Hub's viewer and ``datasets``' streaming readers want files of at most a few hundred MB whose
row groups are small enough to fetch one at a time, and a corpus may be larger than memory. So
rows are written as they arrive: each split buffers at most one row group, and a file is closed
once it holds ``file_bytes``. Sizes are counted in Arrow (in-memory) bytes, which Parquet's
compression only shrinks, so no file exceeds the bound. Files get their final ``-of-N`` names once
a split's count is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

FILE_BYTES = 500 * 2**20  # per Parquet file: the Hub's advice is files of a few hundred MB
ROW_GROUP_BYTES = 32 * 2**20  # per row group, and what one split keeps in memory at most


@dataclass
class SplitFiles:
    """What one split's files hold: their paths, rows, and Arrow bytes (``datasets``' ``num_bytes``)."""

    files: list[Path] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0


@dataclass
class ConfigFiles:
    """One config of an export: the directory its files are in, its schema and its splits."""

    out_dir: Path
    schema: pa.Schema
    splits: dict[str, SplitFiles]


@dataclass
class _Open:
    """A split being written: its buffered tables and the file they go to."""

    done: SplitFiles
    buffer: list[Any] = field(default_factory=list)
    buffered: int = 0
    in_file: int = 0
    writer: Any = None


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """Large and view types as their plain forms: polars hands out ``large_string`` and
    ``large_list``, which ``datasets`` would show as such instead of ``string`` and ``list``."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _plain(f.type), f.nullable) for f in schema])


def _plain(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if any(is_list(t) for is_list in (pa.types.is_list, pa.types.is_large_list, pa.types.is_list_view,
                                      pa.types.is_large_list_view)):
        return pa.list_(_plain(t.value_type))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_plain(t.value_type), t.list_size)
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain(f.type), f.nullable) for f in t])
    return t


def write_splits(parts: Iterable[tuple[str, pa.Table]], out_dir: Path, schema: pa.Schema, *,
                 file_bytes: int = FILE_BYTES, row_group_bytes: int = ROW_GROUP_BYTES) -> ConfigFiles:
    """Write ``(split, table)`` parts, in the order they come, as ``out_dir/{split}-*.parquet``.

    Every table is cast to ``schema``, so all files of a config agree (``datasets`` requires it).
    A split without rows gets no file.
    """
    splits: dict[str, _Open] = {}
    for split, table in parts:
        if table.num_rows == 0:
            continue
        state = splits.setdefault(split, _Open(SplitFiles()))
        table = table.select(schema.names).cast(schema)
        state.buffer.append(table)
        state.buffered += table.nbytes
        state.done.rows += table.num_rows
        state.done.nbytes += table.nbytes
        if state.buffered >= row_group_bytes:
            _flush(state, out_dir, split, schema, file_bytes)
    for split, state in splits.items():
        _flush(state, out_dir, split, schema, 0)
        _name_files(state.done, split)
    return ConfigFiles(out_dir, schema, {split: state.done for split, state in splits.items()})


def _flush(state: _Open, out_dir: Path, split: str, schema: pa.Schema, file_bytes: int) -> None:
    """The buffer as one row group; the file closes once it holds ``file_bytes`` (0: now)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if state.buffer:
        if state.writer is None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{split}-{len(state.done.files):05d}.parquet.partial"
            state.done.files.append(path)
            state.writer = pq.ParquetWriter(path, schema)
        table = pa.concat_tables(state.buffer)
        state.writer.write_table(table, row_group_size=max(table.num_rows, 1))
        state.in_file += state.buffered
        state.buffer, state.buffered = [], 0
    if state.writer is not None and state.in_file >= file_bytes:
        state.writer.close()
        state.writer, state.in_file = None, 0


def _name_files(done: SplitFiles, split: str) -> None:
    """``{split}-00000.parquet.partial`` -> ``{split}-00000-of-00002.parquet``, the Hub's names."""
    n = len(done.files)
    named = []
    for i, path in enumerate(done.files):
        final = path.with_name(f"{split}-{i:05d}-of-{n:05d}.parquet")
        path.rename(final)
        named.append(final)
    done.files = named
