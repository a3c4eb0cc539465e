"""How ingest cuts a source into chunks: contiguous entry ranges keyed ``START-END``.

One cutter serves both ingest paths: the record path hands it entries one by one, the frame path
whole blocks of entries; both get the same ranges. A range done before, however it was cut
(another ``--limit`` or chunk size), is handed back as done (the frame path still reads it: its
checks depend on every entry before the block), and where one starts its key is given, so the
runner counts it as a shard already done. ``--limit N`` stops at entry N.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_RANGE = re.compile(r"(\d{10})-(\d{10})")
SHARD_ENTRIES = 65_536  # entries per chunk where a run does not set its own chunk_rows: 31 shards at 2M


@dataclass
class Span(Generic[T]):
    start: int
    end: int
    parts: list[T]
    done: bool  # a range an earlier run committed
    key: str | None = None  # set on the first span of a done range, and on every owed chunk


def key(start: int, end: int) -> str:
    return f"{start:010d}-{end:010d}"


def entry_range(chunk_key: str) -> tuple[int, int] | None:
    """The entry range of a chunk key; None for keys of earlier versions (chunks numbered by position)."""
    match = _RANGE.fullmatch(chunk_key)
    return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class Done:
    """The entry ranges of the chunks done before, in order, with their starts: parsed once per run,
    not once per file of a directory (tens of thousands of parts, as many done keys)."""

    ranges: list[tuple[int, int]]
    starts: list[int]


def done(done_keys: set[str]) -> Done:
    """The entry ranges of ``done_keys`` (keys of earlier versions aside), for ``spans``."""
    ranges = sorted(r for r in map(entry_range, done_keys) if r is not None)
    return Done(ranges, [start for start, _ in ranges])


def spans(blocks: Iterable[T], length: Callable[[T], int], part: Callable[[T, int, int], T], done_ranges: Done,
          limit: int | None, size: int, first: int = 0, unit: int | None = None) -> Iterator[Span[T]]:
    """Owed chunks of at most ``size`` entries, and the done ranges between them, in entry order;
    the blocks' entries are numbered from ``first`` (a file of a directory: the entries before it).
    With ``unit``, an owed chunk comes in spans of at most ``unit`` entries, the last of a chunk
    the rest, so chunks end where they would without it whether or not ``unit`` divides ``size``."""
    ranges, starts = done_ranges.ranges, done_ranges.starts
    owed: Span[T] | None = None
    filled = 0  # entries of the owed chunk being cut that spans before ``owed`` hold
    index = first
    for block in blocks:
        n, pos = length(block), 0
        while pos < n:
            i = index + pos
            if limit is not None and i >= limit:
                break
            at = bisect.bisect_right(starts, i) - 1
            if at >= 0 and i < ranges[at][1]:
                if owed is not None:
                    yield owed
                    owed = None
                filled = 0
                take = min(ranges[at][1] - i, n - pos)
                yield Span(i, i + take, [part(block, pos, take)], True,
                           key(*ranges[at]) if i == ranges[at][0] else None)
                pos += take
                continue
            if owed is None:
                owed = Span(i, i, [], False)
            full = min(size - filled, unit or size)
            upto = min(n - pos, full - (owed.end - owed.start),
                       (starts[at + 1] - i) if at + 1 < len(starts) else n,
                       (limit - i) if limit is not None else n)
            owed.parts.append(part(block, pos, upto))
            owed.end += upto
            pos += upto
            if owed.end - owed.start == full:
                filled = (filled + full) % size
                yield owed
                owed = None
        index += n
        if limit is not None and index >= limit:
            break
    if owed is not None:
        yield owed


def owed_key(span: Span[T]) -> str:
    return key(span.start, span.end)
