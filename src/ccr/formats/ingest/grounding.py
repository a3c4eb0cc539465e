"""Temporal grounding annotations: QVHighlights / Charades-STA / TACoS jsonl, and Charades-STA text.

One jsonl line is one query on one video; the query becomes a caption row that carries its moment
windows in ``extra`` (the corpus keeps them as caption columns), and each video becomes one media
row the first time it is seen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.formats.ingest.records import BadRecord, Caption, Media, Record
from ccr.formats.ingest.textio import (
    as_id,
    as_number,
    first_content_line,
    guess_split,
    iter_jsonl,
    iter_lines,
)

if TYPE_CHECKING:
    from ccr.formats.ingest.records import IngestOptions

_CHARADES_LINE = re.compile(r"^(?P<vid>\S+)\s+(?P<start>\S+)\s+(?P<end>\S+)##(?P<text>.*)$")


def read(src: Path, opts: IngestOptions) -> Iterator[Record]:
    split = opts.split or guess_split(src.name)
    modality = opts.modality or "video"
    lang = opts.lang or "en"
    seen: set[str] = set()
    for lineno, row in iter_jsonl(src):
        if isinstance(row, BadRecord):
            yield row
            continue
        parsed = _parse_row(row)
        if isinstance(parsed, str):
            yield BadRecord(f"{src}:{lineno}", parsed, row_id=as_id(row.get("qid")))
            continue
        vid, caption_id, text, extra = parsed
        where = f"{src}:{lineno}"
        media = Media(media_id=vid, split=split, modality=modality, path=f"{vid}.mp4", duration=extra.get("duration"),
                      source=where, path_given=False)
        if vid not in seen:
            seen.add(vid)
            yield media
        yield Caption(caption_id=caption_id, media_id=vid, split=split, lang=lang, text=text, extra=extra,
                      source=where, media=media)


def read_charades(src: Path, opts: IngestOptions) -> Iterator[Record]:
    """Charades-STA comes both as jsonl and as its original ``VID start end##sentence`` text."""
    first = first_content_line(src)
    if first is None or first.lstrip().startswith("{"):
        yield from read(src, opts)
    else:
        yield from _read_charades_text(src, opts)


def _read_charades_text(src: Path, opts: IngestOptions) -> Iterator[Record]:
    split = opts.split or guess_split(src.name)
    modality = opts.modality or "video"
    lang = opts.lang or "en"
    seen: set[str] = set()
    for lineno, line in iter_lines(src):
        if isinstance(line, BadRecord):
            yield line
            continue
        if not line.strip():
            continue
        match = _CHARADES_LINE.match(line)
        if match is None:
            yield BadRecord(f"{src}:{lineno}", "expected 'VID start end##sentence'")
            continue
        vid = match["vid"]
        caption_id = f"{vid}#{lineno}"
        where = f"{src}:{lineno}"
        try:
            window = [float(match["start"]), float(match["end"])]
        except ValueError:
            yield BadRecord(where, "start or end is not a number", row_id=caption_id)
            continue
        extra = grounding_extra({"qid": caption_id, "relevant_windows": [window]})
        if isinstance(extra, str):
            yield BadRecord(where, extra, row_id=caption_id)
            continue
        media = Media(media_id=vid, split=split, modality=modality, path=f"{vid}.mp4", source=where, path_given=False)
        if vid not in seen:
            seen.add(vid)
            yield media
        yield Caption(caption_id=caption_id, media_id=vid, split=split, lang=lang, text=match["text"], extra=extra,
                      source=where, media=media)


GROUNDING_KEYS = ("qid", "duration", "relevant_windows", "relevant_clip_ids", "saliency_scores")


def _parse_row(row: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]] | str:
    """The row's (vid, caption id, query, extra), or the reason it is unusable."""
    qid = as_id(row.get("qid"))
    if qid is None:
        return "'qid' missing or not an integer/string"
    vid = row.get("vid")
    if not isinstance(vid, str) or not vid:
        return "'vid' missing or not a string"
    query = row.get("query")
    if not isinstance(query, str):
        return "'query' missing or not a string"
    extra = grounding_extra({key: row[key] for key in GROUNDING_KEYS if key in row})
    if isinstance(extra, str):
        return extra
    return vid, qid, query, extra


def grounding_extra(values: dict[str, Any]) -> dict[str, Any] | str:
    """Checks the grounding fields that are present; returns them normalised, or the reason they are not."""
    extra: dict[str, Any] = {}
    if "qid" in values:
        if as_id(values["qid"]) is None:
            return "'qid' is not an integer/string"
        extra["qid"] = values["qid"]
    if "duration" in values:
        duration = _seconds(values["duration"])
        if duration is None:
            return f"'duration' {values['duration']!r} is not a finite number of seconds >= 0"
        extra["duration"] = duration
    if "relevant_windows" in values:
        windows = values["relevant_windows"]
        if not isinstance(windows, list):
            return "'relevant_windows' is not a list of [start, end] pairs"
        bad = next((w for w in windows if not _is_window(w)), None)
        if bad is not None:
            # the RGTR matcher cannot take NaN, infinite, negative or reversed windows: refused here
            return f"'relevant_windows' holds {bad!r}: each window must be [start, end] seconds, 0 <= start <= end"
        extra["relevant_windows"] = [[float(s), float(e)] for s, e in windows]
    if "relevant_clip_ids" in values:
        clip_ids = values["relevant_clip_ids"]
        if not _is_list_of(clip_ids, lambda c: isinstance(c, int) and not isinstance(c, bool) and c >= 0):
            return "'relevant_clip_ids' is not a list of integers >= 0"
        extra["relevant_clip_ids"] = clip_ids
    if "saliency_scores" in values:
        scores = values["saliency_scores"]
        if not _is_list_of(scores, lambda s: isinstance(s, list) and all(_finite(v) is not None for v in s)):
            return "'saliency_scores' is not a list of lists of finite numbers"
        extra["saliency_scores"] = scores
    return extra


def _is_list_of(value: Any, check: Callable[[Any], bool]) -> bool:
    return isinstance(value, list) and all(check(item) for item in value)


def _finite(value: Any) -> float | None:
    number = as_number(value)
    return number if number is not None and math.isfinite(number) else None


def _seconds(value: Any) -> float | None:
    number = _finite(value)
    return number if number is not None and number >= 0 else None


def _is_window(window: Any) -> bool:
    if not isinstance(window, list) or len(window) != 2:
        return False
    start, end = (_seconds(v) for v in window)
    return start is not None and end is not None and start <= end
