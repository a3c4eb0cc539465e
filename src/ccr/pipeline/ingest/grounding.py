"""Temporal grounding annotations: QVHighlights / Charades-STA / TACoS jsonl, and Charades-STA text.

One jsonl line is one query on one video; the query becomes a caption row that carries its moment
windows in ``extra`` (the corpus keeps them as caption columns), and each video becomes one media
row the first time it is seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.pipeline.ingest.records import BadRecord, Caption, Media, Record
from ccr.pipeline.ingest.textio import as_id, as_number, first_content_line, guess_split, iter_jsonl, iter_lines

if TYPE_CHECKING:
    from ccr.pipeline.ingest import IngestOptions

_CHARADES_LINE = re.compile(r"^(?P<vid>\S+)\s+(?P<start>\S+)\s+(?P<end>\S+)##(?P<text>.*)$")


def read(src: Path, opts: IngestOptions) -> Iterator[Record]:
    split = opts.split or guess_split(src.name) or "train"
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
        if vid not in seen:
            seen.add(vid)
            yield Media(media_id=vid, split=split, modality=modality, path=f"{vid}.mp4", duration=extra.get("duration"))
        yield Caption(caption_id=caption_id, media_id=vid, split=split, lang=lang, text=text, extra=extra)


def read_charades(src: Path, opts: IngestOptions) -> Iterator[Record]:
    """Charades-STA comes both as jsonl and as its original ``VID start end##sentence`` text."""
    first = first_content_line(src)
    if first is None or first.lstrip().startswith("{"):
        yield from read(src, opts)
    else:
        yield from _read_charades_text(src, opts)


def _read_charades_text(src: Path, opts: IngestOptions) -> Iterator[Record]:
    split = opts.split or guess_split(src.name) or "train"
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
        try:
            window = [float(match["start"]), float(match["end"])]
        except ValueError:
            yield BadRecord(f"{src}:{lineno}", "start or end is not a number", row_id=caption_id)
            continue
        if vid not in seen:
            seen.add(vid)
            yield Media(media_id=vid, split=split, modality=modality, path=f"{vid}.mp4")
        extra = {"qid": caption_id, "duration": None, "relevant_windows": [window]}
        yield Caption(caption_id=caption_id, media_id=vid, split=split, lang=lang, text=match["text"], extra=extra)


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
        duration = as_number(values["duration"])
        if duration is None:
            return "'duration' is not a number"
        extra["duration"] = duration
    if "relevant_windows" in values:
        windows = values["relevant_windows"]
        if not _is_list_of(windows, lambda w: isinstance(w, list) and len(w) == 2 and _all_numbers(w)):
            return "'relevant_windows' is not a list of [start, end] pairs"
        extra["relevant_windows"] = [[float(s), float(e)] for s, e in windows]
    if "relevant_clip_ids" in values:
        clip_ids = values["relevant_clip_ids"]
        if not _is_list_of(clip_ids, lambda c: isinstance(c, int) and not isinstance(c, bool)):
            return "'relevant_clip_ids' is not a list of integers"
        extra["relevant_clip_ids"] = clip_ids
    if "saliency_scores" in values:
        scores = values["saliency_scores"]
        if not _is_list_of(scores, lambda s: isinstance(s, list) and _all_numbers(s)):
            return "'saliency_scores' is not a list of score lists"
        extra["saliency_scores"] = scores
    return extra


def _is_list_of(value: Any, check: Callable[[Any], bool]) -> bool:
    return isinstance(value, list) and all(check(item) for item in value)


def _all_numbers(values: list[Any]) -> bool:
    return all(as_number(v) is not None for v in values)
