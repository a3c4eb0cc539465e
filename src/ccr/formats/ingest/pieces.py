"""A generic source cut into pieces that parse apart, so that several machines read it at once.

``ccr ingest --engine ray`` (``read``) parses the pieces on Ray and hands their entry frames to the
ingest checks on the driver in file order (a directory's files one after another), numbered as the
local reader numbers them: a piece parses into the frames the local reader gives for its lines,
numbered from 1 within it, and says how many lines it spans; the driver adds the lines of the
pieces of its file before it. A jsonl piece is a byte
range of whole lines (each cut falls just after a newline, found by reading a few bytes there); a
Parquet piece is a run of whole row groups. A gzip file cannot be cut without reading it from its
start, and a csv file cannot be cut at a newline (a quoted field may hold one, so no byte offset
tells where a row starts without reading every byte before it): each is one piece, so a directory
of such parts is parsed a part per actor, and a piece's frames, held at once, are a whole file's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ccr.errors import CcrError
from ccr.formats.ingest.blocks import blocks
from ccr.formats.ingest.entries import block_entries, csv_entries, parquet_entries
from ccr.formats.ingest.generic import parquet_file

if TYPE_CHECKING:
    import polars as pl

PIECE_BYTES = 16 << 20  # per piece: bytes of jsonl lines, or uncompressed bytes of Parquet row groups
_SCAN = 1 << 16  # bytes read at a time to find the newline after a cut


@dataclass(frozen=True)
class Piece:
    fmt: str
    src: str  # absolute: a piece is parsed on whichever node Ray places it
    start: int  # jsonl: its first byte; parquet: its first row group
    end: int | None  # past its last byte or row group; None: to the end of the file


def check(fmt: str) -> None:
    """Refuse, before a corpus is made, a format whose sources are not read in pieces."""
    if fmt not in _CUTTERS:
        raise CcrError(f"--engine ray reads jsonl, csv and parquet sources; ingest {fmt} without --engine ray")


def cut(fmt: str, src: Path, size: int | None = None) -> list[Piece]:
    """The pieces of ``src`` in file order, each about ``size`` bytes (default ``PIECE_BYTES``); a csv
    or gzip file is one piece, whatever its size."""
    return _CUTTERS[fmt](src.resolve(), size or PIECE_BYTES)


def parse(piece: Piece, columns: dict[str, str]) -> tuple[list[pl.DataFrame], int]:
    """The entry frames of a piece, its lines numbered from 1, and how many lines (Parquet: rows) it
    spans: where the next piece of its file numbers from (a csv piece is its whole file: 0, none follows)."""
    src = Path(piece.src)
    if piece.fmt == "csv":
        return list(csv_entries(src, columns)), 0
    if piece.fmt == "parquet":
        meta = parquet_file(src).metadata
        groups = list(range(piece.start, meta.num_row_groups if piece.end is None else piece.end))
        return list(parquet_entries(src, columns, groups)), sum(meta.row_group(g).num_rows for g in groups)
    frames, lines = [], 0
    for block in blocks(src, start=piece.start, end=piece.end):
        frames.append(block_entries(src, block, columns))
        lines += block.count
    return frames, lines


def read(fmt: str, files: list[Path], columns: dict[str, str],
         concurrency: int | None) -> Iterator[tuple[Path, Iterator[pl.DataFrame]]]:
    """Each file with its entry frames in file order, numbered as ``ENTRY_READERS[fmt]`` numbers
    them; the pieces of every file parsed by ``concurrency`` Ray actors (default: one per node),
    so the actors read on across file ends. Take each file's frames before the next file."""
    from ccr.stages.ray_engine import ordered_map

    owners = [(path, piece) for path in files for piece in cut(fmt, path)]
    parsed = zip((path for path, _ in owners), ordered_map(parse, [p for _, p in owners], concurrency, columns))
    for path, group in groupby(parsed, key=lambda pair: pair[0]):
        yield path, numbered(result for _, result in group)


def numbered(parsed: Iterable[tuple[list[pl.DataFrame], int]]) -> Iterator[pl.DataFrame]:
    """The frames of consecutive pieces (``parse``'s results, in file order), lines numbered from the file's first."""
    import polars as pl

    before = 0
    for frames, lines in parsed:
        for frame in frames:
            yield frame.with_columns(pl.col("line") + before)
        before += lines


def _jsonl(src: Path, size: int) -> list[Piece]:
    if src.suffix.lower() == ".gz":  # as a directory's parts are found (``PART_SUFFIXES``)
        return _whole("jsonl", src)
    total = src.stat().st_size
    pieces, start = [], 0
    with src.open("rb") as fh:
        while start + size < total:
            end = _after_newline(fh, start + size - 1)
            if end >= total:
                break
            pieces.append(Piece("jsonl", str(src), start, end))
            start = end
    return [*pieces, Piece("jsonl", str(src), start, None)]


def _after_newline(fh: IO[bytes], at: int) -> int:
    """Just past the first newline at or after byte ``at``; the end of the file where there is none."""
    fh.seek(at)
    while chunk := fh.read(_SCAN):
        found = chunk.find(b"\n")
        if found >= 0:
            return at + found + 1
        at += len(chunk)
    return at


def _parquet(src: Path, size: int) -> list[Piece]:
    meta = parquet_file(src).metadata
    pieces, start, held = [], 0, 0
    for group in range(meta.num_row_groups):
        held += meta.row_group(group).total_byte_size
        if held >= size or group == meta.num_row_groups - 1:
            pieces.append(Piece("parquet", str(src), start, group + 1))
            start, held = group + 1, 0
    return pieces or [Piece("parquet", str(src), 0, None)]


def _whole(fmt: str, src: Path) -> list[Piece]:
    return [Piece(fmt, str(src), 0, None)]


_CUTTERS: dict[str, Callable[[Path, int], list[Piece]]] = {"jsonl": _jsonl, "parquet": _parquet,
                                                          "csv": lambda src, size: _whole("csv", src)}
