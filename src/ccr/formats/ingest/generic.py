"""Generic tables (jsonl, csv, parquet) with one caption per row, for sources no other reader knows.

Columns are our own names (media_id, caption_id, split, lang, text, path, modality, duration, origin,
parent_id, model, and the grounding fields); ``IngestOptions.columns`` maps them to differently
named source columns, so a user never has to rewrite a file to ingest it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.errors import CcrError
from ccr.formats.ingest.grounding import GROUNDING_KEYS, grounding_extra
from ccr.formats.ingest.records import BadRecord, Caption, Media, Record
from ccr.formats.ingest.textio import as_id, guess_split, iter_jsonl, iter_lines, not_utf8, open_bytes

if TYPE_CHECKING:
    from ccr.formats.ingest.records import IngestOptions

Row = tuple[str, dict[str, Any] | BadRecord]

_TEXT_COLUMNS = ("split", "lang", "path", "modality", "origin", "parent_id", "model")
_LIST_COLUMNS = {"relevant_windows", "relevant_clip_ids", "saliency_scores"}
COLUMNS = ("media_id", "caption_id", "text", *_TEXT_COLUMNS, *GROUNDING_KEYS)
_REQUIRED = ("media_id", "text")
_PARQUET_BATCH = 8192
_JSONL_PROBE = 1000  # jsonl has no header: the columns are the keys of its first rows
_SCAN_BYTES = 16 << 20  # read at a time looking for a mapped key past them
# characters in a csv field (the csv module's default, 131,072, is short of a long JSON list): far past any
# caption, and a bound on what a stray quote makes the csv module hold (past it, a failure row; it reads on)
FIELD_LIMIT = 1 << 26


def read_jsonl(src: Path, opts: IngestOptions) -> Iterator[Record]:
    rows = ((f"{src}:{lineno}", row) for lineno, row in iter_jsonl(src))
    yield from _records(rows, src, opts)


def read_csv(src: Path, opts: IngestOptions) -> Iterator[Record]:
    yield from _records(_csv_rows(src), src, opts)


def read_parquet(src: Path, opts: IngestOptions) -> Iterator[Record]:
    yield from _records(_parquet_rows(src, opts.columns), src, opts)


def parse_columns(specs: list[str]) -> dict[str, str]:
    """``--column OURS=THEIRS`` values as a mapping; a malformed one is an argument error, never ignored."""
    columns: dict[str, str] = {}
    for spec in specs:
        ours, sep, theirs = (part.strip() for part in spec.partition("="))
        if not sep or not ours or not theirs:
            raise CcrError(f"--column {spec!r}: expected OURS=THEIRS, e.g. --column text=caption")
        if columns.get(ours, theirs) != theirs:
            raise CcrError(f"--column {spec!r}: {ours!r} is already mapped to {columns[ours]!r}; map it once")
        columns[ours] = theirs
    return columns


def check_columns(fmt: str, src: Path, files: list[Path], columns: dict[str, str]) -> None:
    """Refuse, before any row is read, a mapping that names no column of the source's files, and a
    file without the columns every row needs: otherwise every row would become a failure. A column
    mapped for what rows may leave out need not be in every part: Spark's JSON writer leaves a
    field out of a row where it is null, so a part of such rows has no such key at all."""
    header = _HEADERS.get(fmt)
    if header is None:
        if columns:
            raise CcrError(f"--column maps the columns of jsonl, csv and parquet sources; {fmt} has its own layout")
        return
    for ours, theirs in columns.items():
        if ours not in COLUMNS:
            raise CcrError(f"--column {ours}={theirs}: {ours!r} is not a ccr column; use one of {', '.join(COLUMNS)}")
    headers = [(path, have) for path in files if (have := header(path)) is not None]  # None: empty, no row fails
    for path, have in headers:
        for name in _REQUIRED:
            theirs = columns.get(name, name)
            if theirs not in have:
                raise _no_column(path, have, name, theirs, name in columns)
    for ours, theirs in columns.items():
        if headers and not any(theirs in have for _, have in headers) and not _named_later(fmt, files, theirs):
            where = headers[0][0] if len(headers) == 1 else src
            raise _no_column(where, list(dict.fromkeys(c for _, have in headers for c in have)), ours, theirs, True)


def _named_later(fmt: str, files: list[Path], key: str) -> bool:
    """Whether a jsonl key missing from the rows ``_jsonl_keys`` probes is written anywhere in the
    files (a key that is sparse, or left out where null, may first appear past them): a typo never is."""
    if fmt != "jsonl":
        return False
    needle = json.dumps(key).encode("utf-8")
    for path in files:
        with open_bytes(path) as fh:
            tail = b""
            while piece := fh.read(_SCAN_BYTES):
                if needle in tail + piece:
                    return True
                tail = piece[-len(needle):]
    return False


def _no_column(where: Path, have: list[str], ours: str, theirs: str, mapped: bool) -> CcrError:
    listing = ", ".join(repr(c) for c in have[:20]) + (", ..." if len(have) > 20 else "") or "none"
    if mapped:
        return CcrError(f"--column {ours}={theirs}: {where} has no column {theirs!r} (it has {listing})")
    return CcrError(f"{where} has no {ours!r} column (it has {listing}); "
                    f"name the one that holds it with --column {ours}=THEIRS")


def _csv_header(src: Path) -> list[str] | None:
    for _, line in iter_lines(src):
        if isinstance(line, BadRecord):
            raise _header_not_utf8(src)
        try:
            return next(_csv_reader([line]), [])
        except csv.Error as err:
            raise _header_not_csv(src, err) from None
    return None


def _header_not_utf8(src: Path) -> CcrError:
    return CcrError(f"{src}: the header line is not UTF-8; expected a CSV header naming the columns")


def _header_not_csv(src: Path, err: csv.Error) -> CcrError:
    return CcrError(f"{src}: the header line is not a CSV record ({err}); lines must end with \\n or \\r\\n")


def _jsonl_keys(src: Path) -> list[str] | None:
    keys: dict[str, None] = {}
    for n, (_, row) in enumerate(iter_jsonl(src)):
        if n == _JSONL_PROBE:
            break
        if not isinstance(row, BadRecord):
            keys.update(dict.fromkeys(row))
    return list(keys) or None


def _parquet_header(src: Path) -> list[str] | None:
    return list(parquet_file(src).schema_arrow.names)


def _csv_rows(src: Path, start: int = 2) -> Iterator[Row]:
    """Rows as dicts of strings, from the record that starts on line ``start`` (the header is line
    1); an undecodable line is reported and skipped, the rest still parse."""
    bad: list[tuple[int, BadRecord]] = []
    position = {"line": 0}

    def lines() -> Iterator[str]:
        for lineno, line in iter_lines(src):
            position["line"] = lineno
            if 1 < lineno < start:
                continue
            if isinstance(line, BadRecord):
                bad.append((lineno, line))
            else:
                yield line + "\n"

    reader = _csv_reader(lines())
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise _header_not_csv(src, err) from None
    if bad and bad[0][0] == 1:
        raise _header_not_utf8(src)
    if header is None:
        return
    for values in _read_on(reader):
        while bad:
            record = bad.pop(0)[1]
            yield record.source, record
        if not values:
            continue
        where = f"{src}:{position['line']}"
        if isinstance(values, csv.Error):
            yield where, BadRecord(where, f"not a CSV record: {values}")
            continue
        if len(values) != len(header):
            yield where, BadRecord(where, f"has {len(values)} fields but the header has {len(header)}")
            continue
        yield where, dict(zip(header, values, strict=True))
    for _, record in bad:
        yield record.source, record


def _csv_reader(lines: Iterable[str]) -> Any:
    """A csv reader of fields up to ``FIELD_LIMIT`` characters, as the bulk path reads them (the limit
    is the csv module's, for the whole process: only ever raised, to one value)."""
    csv.field_size_limit(FIELD_LIMIT)
    return csv.reader(lines)


def _read_on(reader: Any) -> Iterator[list[str] | csv.Error]:
    """The reader's records, and in place of one it cannot read why not (a carriage return in an
    unquoted field): the csv module reads on from the next line, so one such line costs one row."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield err


def parquet_file(src: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not src.is_file():
        raise CcrError(f"{src}: no such file")
    try:
        return pq.ParquetFile(src)
    except (OSError, pa.ArrowException) as err:
        raise CcrError(f"{src}: not a readable Parquet file ({err})") from None


def _parquet_rows(src: Path, columns: dict[str, str]) -> Iterator[Row]:
    for first, batch in parquet_batches(src, columns, _PARQUET_BATCH):
        yield from parquet_rows(batch, first, src)


def parquet_batches(src: Path, columns: dict[str, str], size: int,
                    row_groups: list[int] | None = None) -> Iterator[tuple[int, Any]]:
    """Batches of the source columns our columns name (an img2dataset part also holds urls, exif,
    sizes: never read), each with its first row's number (from 1 at the first row group read)."""
    file = parquet_file(src)
    wanted = read_columns(file.schema_arrow.names, columns)
    first = 1
    for batch in file.iter_batches(batch_size=size, row_groups=row_groups, columns=wanted):
        yield first, batch
        first += batch.num_rows


def read_columns(have: Iterable[str], columns: dict[str, str]) -> list[str]:
    """The source's columns that ours name (through ``--column``): the only ones worth reading."""
    present = set(have)
    return [c for c in dict.fromkeys(columns.get(name, name) for name in COLUMNS) if c in present]


def parquet_rows(batch: Any, first: int, src: Path) -> Iterator[Row]:
    """The rows of a Parquet batch, numbered from ``first``. Parquet does not make its writers
    check that text is UTF-8: a row with a text cell that is not is unusable, and says which column."""
    try:
        rows: list[dict[str, Any] | str] = batch.to_pylist()
    except UnicodeDecodeError:
        rows = _decoded_rows(batch)
    for n, row in enumerate(rows, first):
        where = f"{src}:{n}"
        yield where, BadRecord(where, row) if isinstance(row, str) else row


def _decoded_rows(batch: Any) -> list[dict[str, Any] | str]:
    """The rows of a batch with text that is not UTF-8, a column read cell by cell where it holds
    such text (in a string of any layout, dictionary or list); a row with such a cell is why it fails."""
    columns: dict[str, list[Any]] = {}
    failed: dict[int, str] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            columns[name] = column.to_pylist()
        except UnicodeDecodeError:
            columns[name] = [_cell_or_none(column, n, name, failed) for n in range(len(column))]
    return [failed.get(n) or dict(zip(columns, row, strict=True)) for n, row in enumerate(zip(*columns.values()))]


def _cell_or_none(column: Any, n: int, name: str, failed: dict[int, str]) -> Any:
    """Row ``n``'s cell, or None where it is not UTF-8 (its row's first such column noted in ``failed``)."""
    try:
        return column[n].as_py()
    except UnicodeDecodeError as err:
        failed.setdefault(n, f"column {name!r}: {not_utf8(err.start)}")
        return None


_HEADERS: dict[str, Callable[[Path], list[str] | None]] = {"jsonl": _jsonl_keys, "csv": _csv_header,
                                                          "parquet": _parquet_header}


def _records(rows: Iterator[Row], src: Path, opts: IngestOptions) -> Iterator[Record]:
    file_split = guess_split(src.name)
    seen: set[str] = set()
    counts: dict[tuple[str, str], int] = {}
    for where, row in rows:
        if isinstance(row, BadRecord):
            yield row
            continue
        values = _values(row, opts.columns)
        if isinstance(values, str):
            yield BadRecord(where, values, row_id=as_id(row.get(opts.columns.get("caption_id", "caption_id"))))
            continue
        media_id = values["media_id"]
        lang = values.get("lang") or opts.lang or "en"
        split = opts.split or values.get("split") or file_split
        caption_id = values.get("caption_id")
        if caption_id is None:
            k = counts.get((media_id, lang), 0)
            counts[(media_id, lang)] = k + 1
            caption_id = f"{media_id}#{lang}#{k}"
        media = Media(  # a row without modality leaves it open (a new media row defaults to image)
            media_id=media_id,
            split=split,
            modality=values.get("modality") or opts.modality,
            path=values.get("path"),
            duration=values.get("duration"),
            source=where,
        )
        if media_id not in seen:
            seen.add(media_id)
            yield media
        yield Caption(
            caption_id=caption_id,
            media_id=media_id,
            split=split,
            lang=lang,
            text=values["text"],
            origin=values.get("origin") or "human",
            parent_id=values.get("parent_id"),
            model=values.get("model"),
            extra=values["extra"],
            source=where,
            media=media,
        )


def _values(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any] | str:
    """Our columns of one source row, type-checked; or the reason the row is unusable."""
    got = {name: _cell(row.get(columns.get(name, name)), name) for name in COLUMNS}
    out: dict[str, Any] = {}
    media_id = as_id(got["media_id"])
    if media_id is None:
        return "'media_id' missing or not an integer/string"
    out["media_id"] = media_id
    if got["caption_id"] is not None:
        out["caption_id"] = as_id(got["caption_id"])
        if out["caption_id"] is None:
            return "'caption_id' is not an integer/string"
    text = got["text"]
    if not isinstance(text, str):
        return "'text' missing or not a string"
    out["text"] = text
    for name in _TEXT_COLUMNS:
        value = got[name]
        if value is not None and not isinstance(value, str):
            return f"'{name}' is not a string"
        out[name] = value
    # duration is checked as grounding's is (a media row may carry it without any grounding field)
    grounding = {key: got[key] for key in GROUNDING_KEYS if got[key] is not None}
    extra = grounding_extra(grounding) if grounding else {}
    if isinstance(extra, str):
        return extra
    out["duration"] = extra.get("duration")
    if set(extra) == {"duration"}:
        extra = {}
    out["extra"] = extra
    return out


def _cell(value: Any, name: str) -> Any:
    """A source cell as the column's type: CSV cells are strings, so lists and durations are parsed."""
    if value == "" and name != "text":
        return None
    if isinstance(value, str) and name in _LIST_COLUMNS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, str) and name == "duration":
        try:
            return float(value)
        except ValueError:
            return value
    return value
