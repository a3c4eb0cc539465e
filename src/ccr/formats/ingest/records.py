"""What an ingest reader yields.

Readers only parse: they never touch a corpus. The ingest stage validates what they yield (empty
text, duplicate ids, unknown languages, media conflicts, missing media) and turns problems into
failure rows, so every format gets the same checks. Every record names where it came from
(``source``: ``file:line``, or ``file:entry`` for formats without lines), and the failure rows
carry it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Media:
    media_id: str
    # None where neither the entry, its file's name nor --split says: a new media row is then
    # train (ingest.checks), and the entry does not conflict with a split the corpus already holds.
    split: str | None
    modality: str | None = "image"  # image | video; None only in a caption's claim that does not say
    path: str | None = None  # relative to the media root (the folder given with --media-root)
    duration: float | None = None  # seconds, videos only
    source: str = ""
    # False where the reader made the path up from the id (``{vid}.mp4``): the source never said
    # it, so it does not conflict with a path the corpus already holds.
    path_given: bool = True


@dataclass
class Caption:
    caption_id: str
    media_id: str
    split: str | None  # as Media.split
    lang: str
    text: str
    origin: str = "human"  # human | mt | bt
    parent_id: str | None = None
    model: str | None = None  # the MT system for origin mt/bt rows ("google" for the NRCCR files)
    extra: dict[str, Any] = field(default_factory=dict)  # grounding: qid, duration, relevant_windows, ...
    source: str = ""
    # The media as this caption's own source entry describes it (a jsonl row, a Karpathy image, a
    # grounding line), so that an entry contradicting an earlier one fails instead of attaching its
    # caption to the earlier media; None where captions name media by id only (COCO).
    media: Media | None = None


@dataclass
class BadRecord:
    """A line or entry that could not be parsed; becomes a failure row, never a crash."""

    source: str  # "file:line" or "file:entry"
    reason: str
    row_id: str | None = None


Record = Media | Caption | BadRecord


def entries(records: Iterable[Record]) -> Iterator[list[Record]]:
    """Records grouped by source entry (consecutive records with one ``source``: a jsonl row's media
    and caption), the unit that ``--limit`` counts and that chunks never split."""
    entry: list[Record] = []
    for record in records:
        if entry and (not record.source or record.source != entry[-1].source):
            yield entry
            entry = []
        entry.append(record)
    if entry:
        yield entry


@dataclass
class IngestOptions:
    # Split for every record, overriding what the source says; needed for formats without splits.
    split: str | None = None
    # Caption language where the format does not say (None means English).
    lang: str | None = "en"
    # Media modality (image | video) where the format does not say; None = the format's default.
    modality: str | None = None
    # Generic formats only: our column name -> the source's column name, for sources named otherwise.
    columns: dict[str, str] = field(default_factory=dict)
    # Model key given to derived (MT / back-translated) NRCCR rows when the file name names none.
    mt_model: str = "google"
