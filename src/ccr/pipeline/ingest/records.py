"""What an ingest reader yields.

Readers only parse: they never touch a corpus. The ingest stage validates what they yield (empty
text, duplicate ids, unknown languages, missing media) and turns problems into failure rows, so
every format gets the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Media:
    media_id: str
    split: str
    modality: str = "image"  # image | video
    path: str | None = None  # relative to the media root (the folder given with --media-root)
    duration: float | None = None  # seconds, videos only


@dataclass
class Caption:
    caption_id: str
    media_id: str
    split: str
    lang: str
    text: str
    origin: str = "human"  # human | mt | bt
    parent_id: str | None = None
    model: str | None = None  # the MT system for origin mt/bt rows ("google" for the NRCCR files)
    extra: dict[str, Any] = field(default_factory=dict)  # grounding: qid, duration, relevant_windows, ...


@dataclass
class BadRecord:
    """A line or entry that could not be parsed; becomes a failure row, never a crash."""

    source: str  # "file:line" or "file:entry"
    reason: str
    row_id: str | None = None


Record = Media | Caption | BadRecord
