"""The checks every ingested record goes through, whatever its format.

A media id has one description: the corpus's row, else the first source entry that gives it.
A later entry that describes it differently (another path, split, modality or duration) is a
failure naming both places, so a test caption never lands on a train image. A media item that is
refused (a split that is no split, an unreadable file) takes all its captions with it, wherever
they stand in the source: the verdict on each media item is decided once, before any caption needs
it, from the source's first description. A field that an entry leaves open (a split nothing
states, a modality) never conflicts; its default applies only to a media item seen for the first time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccr import languages
from ccr.corpus.schema import MODALITIES, ORIGINS, SPLIT_RULE, is_split
from ccr.formats.ingest.grounding import GROUNDING_KEYS
from ccr.formats.ingest.records import Caption, Media

MediaKey = tuple[Any, ...]  # (split, modality, path, duration)
_KEY_FIELDS = ("split", "modality", "path", "duration")
DEFAULT_SPLIT = "train"  # of a new media item whose source states no split


@dataclass
class Known:
    """What the checks need across batches and runs: the corpus, and the source's first descriptions."""

    media: dict[str, MediaKey]  # media rows of the corpus, and those this run added
    first: dict[str, Media]  # the source's first description of each media id the corpus lacked
    failed_before: dict[str, str]  # media an earlier ingest refused, found nowhere now
    captions: dict[str, str]  # caption id -> digest of its content, to tell a repeat from a clash
    root: Path | None
    max_chars: int
    verify_media: bool
    verdicts: dict[str, str | None] = field(default_factory=dict)


def media_key(m: Media) -> MediaKey:
    """The media row a description makes (a format that does not say image or video means image)."""
    return (m.split or DEFAULT_SPLIT, m.modality or "image", m.path, m.duration)


def caption_hash(media_id: str, lang: str, text: str, origin: str, parent_id: str | None) -> str:
    return hashlib.sha1("\0".join([media_id, lang, text, origin, parent_id or ""]).encode("utf-8", "replace")).hexdigest()


def check_media(m: Media, known: Known) -> tuple[dict[str, Any] | None, str | None]:
    """The media row to add (the first description of a new id, if it passes), or the problem."""
    if not m.media_id:
        return None, "empty media_id"
    if m.media_id not in known.media:
        known.first.setdefault(m.media_id, m)  # already there unless the source changed since setup read it
    first = known.first.get(m.media_id)
    if m.media_id in known.media or first is None or m.source != first.source:
        return None, _conflict(m.media_id, _claim(m), known)
    problem = _verdict(m.media_id, known)
    if problem:
        return None, problem
    known.media[m.media_id] = media_key(m)
    return dict(zip(("media_id", *_KEY_FIELDS), (m.media_id, *media_key(m)), strict=True)), None


def check_caption(c: Caption, known: Known) -> tuple[dict[str, Any] | None, str | None]:
    """The caption row to add, ``(None, None)`` for an exact repeat, or the problem."""
    if not c.caption_id:
        return None, EMPTY_CAPTION_ID
    if not isinstance(c.text, str):
        return None, f"caption text is {type(c.text).__name__}, not a string"
    text = c.text.strip()
    if not text:
        return None, EMPTY_CAPTION
    if len(text) > known.max_chars:
        return None, too_long(len(text), known.max_chars)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, NOT_UTF8
    if not languages.is_known(c.lang):
        return None, unknown_language(c.lang)
    if c.origin not in ORIGINS:
        return None, unknown_origin(c.origin)
    problem = _media_of(c, known)
    if problem:
        return None, problem
    digest = caption_hash(c.media_id, c.lang, text, c.origin, c.parent_id)
    seen = known.captions.get(c.caption_id)
    if seen is not None:
        return None, (None if seen == digest else duplicate(c.caption_id))
    known.captions[c.caption_id] = digest
    media = known.first.get(c.media_id)
    split = (media_key(media) if media is not None else known.media[c.media_id])[0]
    row = {"caption_id": c.caption_id, "media_id": c.media_id, "split": split, "lang": c.lang, "text": text,
           "origin": c.origin, "parent_id": c.parent_id, "model": c.model}
    for key in GROUNDING_KEYS:
        if c.extra.get(key) is not None:
            row[key] = str(c.extra[key]) if key == "qid" else c.extra[key]
    return row, None


def _media_of(c: Caption, known: Known) -> str | None:
    """Why the caption's media cannot take it: nowhere, described otherwise, or refused."""
    mid = c.media_id
    if mid not in known.media and mid not in known.first:
        if mid in known.failed_before:
            return f"its media {mid!r} failed: {known.failed_before[mid]}"
        return f"caption points at media {mid!r}, which is in neither the corpus nor this source"
    conflict = _conflict(mid, _claim(c.media) if c.media else (c.split, None, None, None), known)
    if conflict:
        return conflict
    problem = _verdict(mid, known)
    return media_failed(mid, problem) if problem else None


def _claim(m: Media) -> MediaKey:
    """What a description states; None where it leaves a field open."""
    return (m.split, m.modality, m.path if m.path_given else None, m.duration)


def _reference(mid: str, known: Known) -> tuple[MediaKey, str] | None:
    """The description every other one must agree with, and where it stands."""
    first = known.first.get(mid)
    if first is not None:
        return media_key(first), f"at {first.source}"
    if mid in known.media:
        return known.media[mid], "in the corpus"
    return None


def _conflict(mid: str, claim: MediaKey, known: Known) -> str | None:
    """Where a description contradicts the reference; a field it leaves out (None) never does."""
    reference = _reference(mid, known)
    if reference is None:
        return None
    return conflict(mid, claim, *reference)


def conflict(mid: str, claim: MediaKey, key: MediaKey, where: str) -> str | None:
    """What a description states that its reference (``where``: "at FILE:LINE", "in the corpus") does not."""
    diffs = [(name, mine, theirs) for name, mine, theirs in zip(_KEY_FIELDS, claim, key, strict=True)
             if mine is not None and mine != theirs]
    if not diffs:
        return None
    here = ", ".join(f"{name} {mine!r}" for name, mine, _ in diffs)
    there = ", ".join(repr(theirs) for _, _, theirs in diffs)
    return f"media conflict: media_id {mid!r} has {here} here but {there} {where}"


def _verdict(mid: str, known: Known) -> str | None:
    """Why media ``mid`` is refused, or None; decided once per id, from its first description."""
    if mid in known.media:
        return None
    if mid not in known.verdicts:
        known.verdicts[mid] = _media_problem(known.first[mid], known)
    return known.verdicts[mid]


def _media_problem(m: Media, known: Known) -> str | None:
    return media_problem(media_key(m)[0], m.modality, m.path, known.root if known.verify_media else None,
                         verify=known.verify_media)


def media_problem(split: str, modality: str | None, path: str | None, root: Path | None, *, verify: bool) -> str | None:
    """Why a new media item is refused: its split, its modality, or (``verify``) its file."""
    if not is_split(split):  # the source named it (--split and split words in file names are valid)
        return f"split {split!r} is not one of {SPLIT_RULE}; the split comes from the source: rename it there"
    if modality is not None and modality not in MODALITIES:
        return f"modality {modality!r} is not image or video"
    if not verify:
        return None
    full = Path(path) if path and Path(path).is_absolute() else (root / path if root and path else None)
    return check_media_file(full, modality or "image")


NOT_UTF8 = "caption text is not valid UTF-8"
EMPTY_CAPTION = "empty caption"
EMPTY_CAPTION_ID = "empty caption_id"


def too_long(n: int, max_chars: int) -> str:
    return f"caption has {n} characters, over max_chars={max_chars} (raise it with --set max_chars=N)"


def unknown_language(lang: str) -> str:
    return f"unknown language code {lang!r}"


def unknown_origin(origin: str) -> str:
    return f"origin {origin!r} is not one of {', '.join(ORIGINS)}"


def duplicate(caption_id: str) -> str:
    return f"duplicate caption_id {caption_id!r} with a different text"


def media_failed(mid: str, problem: str) -> str:
    return f"its media {mid!r} failed: {problem}"


def check_media_file(path: Path | None, modality: str) -> str | None:
    if path is None:
        return "media row has no path to verify"
    if not path.exists():
        return f"file not found: {path}"
    if not path.is_file():
        return f"not a regular file: {path}"
    if path.stat().st_size == 0:
        return f"file is empty: {path}"
    try:
        if modality == "image":
            from PIL import Image

            with Image.open(path) as im:
                im.load()
        else:
            import av

            with av.open(str(path)) as container:
                if not container.streams.video:
                    return f"no video stream in {path}"
                next(container.decode(video=0))
    except Exception as e:  # noqa: BLE001 - any decoder error means the file is unusable
        return f"unreadable {modality} {path}: {type(e).__name__}: {e}"
    return None
