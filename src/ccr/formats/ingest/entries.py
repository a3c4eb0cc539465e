"""Generic sources (jsonl, csv, parquet) as frames of entries: one row per source line, typed.

This is the vectorised twin of ``generic._records``' parsing half, and it leans on the same rules:
a line that pyarrow's JSON parser takes, in a block whose columns have the types ``generic._values``
accepts, is parsed in bulk; any other line (malformed, not an object, a lone surrogate, a column
of another type, grounding fields) goes through ``textio.json_line`` and ``generic._values``, the
record-by-record path itself, so both paths give the same entries. Bulk parsing of a block that
fails is retried on its halves, so one bad line costs a few re-parses, not a Python loop.

Columns: ``line`` (its number; the row index for parquet), ``bad``/``bad_id`` (why an entry is
unusable, and its caption id as the source gave it), our columns as ``_values`` leaves them, and
``text_ok`` (False where the text cannot be encoded as UTF-8: a lone surrogate from a JSON escape).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.formats.ingest.blocks import Block, blocks
from ccr.formats.ingest.generic import (
    _TEXT_COLUMNS,
    COLUMNS,
    FIELD_LIMIT,
    Row,
    _csv_header,
    _csv_rows,
    _values,
    parquet_batches,
    parquet_rows,
    read_columns,
)
from ccr.formats.ingest.grounding import GROUNDING_KEYS
from ccr.formats.ingest.records import BadRecord
from ccr.formats.ingest.textio import as_id, json_line

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

ROWS_PER_FRAME = 65_536  # rows of a csv or parquet source parsed into one frame
_SMALLEST_BULK = 64  # a failing bulk parse below this many lines goes line by line
_EXTRA = tuple(k for k in GROUNDING_KEYS if k != "duration")
# Python's str.strip() whitespace, so that a line blank to the record path is blank here too
# (written out: finding them among all code points cost every ``ccr`` start 50 ms; a test rederives them)
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def schema() -> dict[str, Any]:
    import polars as pl

    from ccr.corpus.schema import column_types

    types = column_types()["captions"]
    s = pl.String
    return {"line": pl.Int64, "bad": s, "bad_id": s, "media_id": s, "caption_id": s, "text": s,
            **{c: s for c in _TEXT_COLUMNS}, "duration": pl.Float64, "text_ok": pl.Boolean,
            **{k: types[k] for k in _EXTRA}}


def jsonl_entries(src: Path, columns: dict[str, str]) -> Iterator[pl.DataFrame]:
    """Entry frames of a jsonl file, one per block of lines, in file order; blank lines are no entries."""
    for block in blocks(src):
        yield block_entries(src, block, columns)


def block_entries(src: Path, block: Block, columns: dict[str, str]) -> pl.DataFrame:
    """The entry frame of one block of lines of ``src``."""
    import polars as pl

    lines = pl.int_range(block.first, block.first + block.count, eager=True).alias("line")
    whole = _at_once(block, lines, columns)
    if whole is not None:
        return whole
    frame = pl.DataFrame({"line": lines, "text": block.text()})
    blank = pl.col("text").str.strip_chars(PY_WHITESPACE) == ""
    bad = pl.col("line").is_in(list(block.bad))
    candidates = frame.filter(~blank & ~bad)
    parts = [_bad_lines(block)] if block.bad else []
    parts.extend(_parse(src, candidates, columns))
    return _concat(parts).sort("line")


def csv_entries(src: Path, columns: dict[str, str]) -> Iterator[pl.DataFrame]:
    """Entry frames of a csv file: a block of lines at a time in bulk (Arrow's csv parser, which
    reads quotes as Python's csv module does) while every record is one line, which tells each row
    its line; from the first block where that fails (a quoted field across lines, a line that is not
    UTF-8, a row with the wrong number of fields, types the bulk path does not take) row by row
    with the csv module to the end of the file."""
    header = _csv_header(src)
    if not header or len(set(header)) < len(header):
        yield from _row_frames(_csv_rows(src), columns)
        return
    for block in blocks(src):
        frame = _csv_block(block, header, columns)
        if frame is None:
            yield from _row_frames(_csv_rows(src, max(block.first, 2)), columns)
            return
        if frame.height:
            yield frame


def parquet_entries(src: Path, columns: dict[str, str], row_groups: list[int] | None = None) -> Iterator[pl.DataFrame]:
    """Entry frames of a Parquet file (of some of its row groups: rows numbered from their first).

    A batch is read in bulk where its types are those ``_bulk`` takes once Parquet's own ways of
    writing them (dictionary columns, integers of any width, float32) are read as JSON's; a batch
    with any other type (or text that is not UTF-8) goes row by row."""
    import polars as pl
    import pyarrow as pa

    for first, batch in parquet_batches(src, columns, ROWS_PER_FRAME, row_groups):
        lines = pl.int_range(first, first + batch.num_rows, eager=True).alias("line")
        table = _as_json_types(pa.Table.from_batches([batch]))
        frame = None if table is None else _bulk(table, lines, columns)
        if frame is not None:
            yield frame
        else:
            yield from _row_frames(parquet_rows(batch, first, src), columns)


ENTRY_READERS: dict[str, Callable[[Path, dict[str, str]], Iterator[pl.DataFrame]]] = {
    "jsonl": jsonl_entries, "csv": csv_entries, "parquet": parquet_entries}


def _row_frames(rows: Iterator[Row], columns: dict[str, str]) -> Iterator[pl.DataFrame]:
    batch: list[dict[str, Any]] = []
    for where, row in rows:
        batch.append(_entry(int(where.rsplit(":", 1)[1]), row, columns))
        if len(batch) == ROWS_PER_FRAME:
            yield _frame(batch)
            batch = []
    if batch:
        yield _frame(batch)


def _csv_block(block: Block, header: list[str], columns: dict[str, str]) -> pl.DataFrame | None:
    """The entry frame of a block of csv lines (line 1, the header, left out), or None where the
    record path must judge it. Each record is one line exactly when Arrow reads as many records as
    the block has non-blank lines (a record across lines has at least two non-blank ones) and the
    block does not end inside a quoted field (Arrow closes one at the end of its input, where the
    csv module reads on into the next block: a row of empty fields after the block is a record of
    its own only if it does not)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    skip = 1 if block.first == 1 else 0
    lines = _nonblank_lines(block, skip)
    if lines is None:
        return None
    wanted = read_columns(header, columns)
    # a newline first: Arrow drops a byte-order mark that starts its input; past line 1 the csv module keeps one
    closed = b"\n" + block.body[int(block.offsets[skip]):] + b'\n""' + b"," * (len(header) - 1) + b"\n"
    try:
        table = pcsv.read_csv(pa.BufferReader(closed), read_options=pcsv.ReadOptions(column_names=header),
                              parse_options=pcsv.ParseOptions(newlines_in_values=True),
                              convert_options=pcsv.ConvertOptions(
                                  include_columns=wanted, column_types=dict.fromkeys(wanted, pa.string()),
                                  strings_can_be_null=False, quoted_strings_can_be_null=False))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != len(lines) + 1:
        return None
    table = table.slice(0, len(lines))
    duration = columns.get("duration", "duration")
    if duration in wanted:  # as ``generic._cell`` reads it: empty is none, the rest a number (else the record path)
        cells = table.column(duration)
        try:
            seconds = pc.cast(pc.if_else(pc.equal(cells, ""), pa.scalar(None, pa.string()), cells), pa.float64())
        except pa.ArrowInvalid:
            return None
        table = table.set_column(table.column_names.index(duration), duration, seconds)
    return _bulk(table, lines, columns)


def _nonblank_lines(block: Block, skip: int) -> pl.Series | None:
    """The numbers of the block's non-blank lines past its first ``skip``: the lines of its records
    where each is one line; None where the block is not for the bulk path (a line that is not UTF-8,
    a quote in the header, a line past ``FIELD_LIMIT`` that may hold a field past it, or a carriage
    return that does not end a line: the csv module sees a lone one in the text)."""
    import numpy as np
    import polars as pl

    raw = np.frombuffer(block.body, dtype=np.uint8)[int(block.offsets[skip]):]
    if block.bad or (skip and b'"' in block.body[:int(block.offsets[1])]) or np.diff(block.offsets).max() > FIELD_LIMIT:
        return None
    returns = np.flatnonzero(raw == 13)
    if len(returns) and (returns[-1] + 1 >= len(raw) or np.any(raw[returns + 1] != 10)):
        return None
    ends = block.offsets[skip + 1:] - block.offsets[skip]
    content = np.diff(block.offsets[skip:]) - (raw[ends - 1] == 10) - np.isin(ends - 2, returns)
    return pl.Series("line", block.first + skip + np.flatnonzero(content > 0))


def _as_json_types(table: pa.Table) -> pa.Table | None:
    """The table with each column cast to the JSON type a row would hold the same values as (a
    Python ``str``, ``int`` or ``float``); None where its bytes are not valid UTF-8 or a name is
    repeated (the row path judges: a row keeps the last column of a name)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(set(table.column_names)) < table.num_columns:
        return None
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        return None
    out = []
    for col in table.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        t = col.type
        if pa.types.is_integer(t) and t != pa.int64():
            try:
                col = pc.cast(col, pa.int64())  # safe: a uint64 past int64's range stays, and goes row by row
            except pa.ArrowInvalid:
                pass
        elif pa.types.is_floating(t) and t != pa.float64():
            col = col.cast(pa.float64())
        out.append(col)
    return pa.table(out, names=table.column_names)


def _bad_lines(block: Block) -> pl.DataFrame:
    return _frame([{"line": n, "bad": r.reason, "bad_id": r.row_id} for n, r in block.bad.items()])


def _at_once(block: Block, lines: pl.Series, columns: dict[str, str]) -> pl.DataFrame | None:
    """The common case, a block of JSON objects only, parsed from its bytes in one go without its
    lines as text; None where a line needs a closer look (blank, undecodable, refused, odd types)."""
    if block.bad or not block.opens_objects():
        return None
    table = _read_json(block.body, block.count)
    return None if table is None else _bulk(table, lines, columns)


def _parse(src: Path, lines: pl.DataFrame, columns: dict[str, str]) -> list[pl.DataFrame]:
    """Bulk-parse the lines; where pyarrow refuses one, parse the halves, and line by line below a
    few lines; where the columns' types need the record path's judgement, line by line at once."""
    if lines.height == 0:
        return []
    if lines.height < _SMALLEST_BULK:
        return [_by_line(src, lines, columns)]
    table = _read_json(lines["text"].str.join("\n").item().encode("utf-8"), lines.height)
    if table is None:
        half = lines.height // 2
        return _parse(src, lines.slice(0, half), columns) + _parse(src, lines.slice(half), columns)
    frame = _bulk(table, lines["line"], columns)
    return [frame if frame is not None else _by_line(src, lines, columns)]


def _read_json(data: bytes, rows: int) -> pa.Table | None:
    """``rows`` lines of JSON as one table, or None where pyarrow refuses one of them (or reads
    another number of rows from them)."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        table = pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(block_size=max(1 << 20, len(data) // 4 + 1)))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    return table if table.num_rows == rows else None


def _bulk(table: pa.Table, line: pl.Series, columns: dict[str, str]) -> pl.DataFrame | None:
    """``_values`` over a whole table, or None where a column's type needs the record path's judgement."""
    import polars as pl
    import pyarrow as pa

    got: dict[str, pa.ChunkedArray | None] = {}
    for name in COLUMNS:
        theirs = columns.get(name, name)
        got[name] = table.column(theirs) if theirs in table.column_names else None
    text = (pa.string(), pa.large_string(), pa.string_view(), pa.null())  # polars reads each as its own String
    ids = (*text, pa.int64())
    allowed = {"media_id": ids, "caption_id": ids, "text": text, "duration": (pa.float64(), pa.int64(), pa.null()),
               **{c: text for c in _TEXT_COLUMNS}, **{k: (pa.null(),) for k in _EXTRA}}
    if any(col is not None and col.type not in allowed[name] for name, col in got.items()):
        return None
    given = {name: col for name, col in got.items() if col is not None and col.type != pa.null()}
    frame = pl.DataFrame({"line": line, **{name: _series(col, name) for name, col in given.items()}}).with_columns(
        pl.lit(None, _dtype(name)).alias(name) for name in got if name not in given)  # a constant: never materialised
    duration = pl.col("duration")
    if frame.select((duration.is_not_null() & (duration.is_nan() | duration.is_infinite() | (duration < 0))).any()).item():
        return None  # the record path words these failures with the value as the source wrote it
    media_missing = pl.col("media_id").is_null() | (pl.col("media_id") == "")
    bad = (pl.when(media_missing).then(pl.lit("'media_id' missing or not an integer/string"))
           .when(pl.col("text").is_null()).then(pl.lit("'text' missing or not a string")))
    frame = frame.with_columns(bad.alias("bad"))
    return _typed(frame.with_columns(  # each expression reads the columns as the source gave them
        pl.when(pl.col("bad").is_not_null()).then(pl.col("caption_id")).alias("bad_id"),
        *[pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in ("media_id", "caption_id", *_TEXT_COLUMNS)],
        pl.lit(True).alias("text_ok")))


def _series(col: pa.ChunkedArray, name: str) -> pl.Series:
    import polars as pl

    return pl.Series(name, pl.from_arrow(col)).cast(_dtype(name))


def _dtype(name: str) -> pl.DataType:
    import polars as pl

    return pl.Float64() if name == "duration" else pl.String()


def _by_line(src: Path, lines: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    rows = []
    for n, text in lines.iter_rows():
        parsed = json_line(src, n, text)
        if parsed is not None:
            rows.append(_entry(n, parsed, columns))
    return _frame(rows)


def _entry(line: int, row: dict[str, Any] | BadRecord, columns: dict[str, str]) -> dict[str, Any]:
    """One parsed row as ``_records`` reads it: its values, or why it is unusable."""
    if isinstance(row, BadRecord):
        return {"line": line, "bad": row.reason, "bad_id": row.row_id}
    values = _values(row, columns)
    if isinstance(values, str):
        return {"line": line, "bad": values, "bad_id": as_id(row.get(columns.get("caption_id", "caption_id")))}
    out = {name: _encodable(values.get(name)) for name in ("media_id", "caption_id", *_TEXT_COLUMNS)}
    out |= {"line": line, "text": _encodable(values["text"]), "duration": values.get("duration"),
            "text_ok": _encodable(values["text"]) == values["text"]}
    extra = values["extra"]
    out |= {key: (str(extra[key]) if key == "qid" else extra[key]) for key in _EXTRA if extra.get(key) is not None}
    return out


def _encodable(value: Any) -> Any:
    """Text a Parquet column can hold: a lone surrogate becomes '?' (one character for one)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    import polars as pl

    types = schema()
    return pl.DataFrame({name: [r.get(name) for r in rows] for name in types}, schema=types, strict=False)


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    types = schema()
    missing = [pl.lit(None, dtype=t).alias(n) for n, t in types.items() if n not in frame.columns]
    return frame.with_columns(missing).select([pl.col(n).cast(t) for n, t in types.items()])


def _concat(parts: list[pl.DataFrame]) -> pl.DataFrame:
    import polars as pl

    return pl.concat([_typed(p) for p in parts]) if parts else _frame([])
