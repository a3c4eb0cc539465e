"""NRCCR / LECCR caption text files (``TextData/*.caption.txt``, lines ``<vid>#<tag>#<k> <text>``).

In these files the only link between an English caption, its translation and its back-translation
is the caption id with its tag rewritten (``enc`` -> ``enc2de`` -> ``enc2de2enc``). The reader turns
that implicit link into our explicit ``parent_id`` chain and derived ids, and
``ccr.formats.export_nrccr`` does the reverse with the helpers below, so both directions agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ccr.corpus.views import derived_id
from ccr.errors import CcrError
from ccr.formats.ingest.records import BadRecord, Caption, Media, Record
from ccr.formats.ingest.textio import guess_split, iter_lines
from ccr.paths import regular_files

if TYPE_CHECKING:
    from ccr.formats.ingest.records import IngestOptions

SUFFIX = ".caption.txt"
_LANG = r"[a-z]{2,3}(?:-[A-Za-z]+)*"
_HUMAN = re.compile(rf"^(?P<lang>{_LANG})$")
_MT = re.compile(rf"^enc2(?P<lang>{_LANG})$")
_BT = re.compile(rf"^enc2(?P<lang>{_LANG})2enc$")
_TO_EN = re.compile(rf"^(?P<lang>{_LANG})2enc$")
_MEDIA_SUFFIXES = {".jpg": "image", ".mp4": "video"}


def split_capid(capid: str) -> tuple[str, str, str] | None:
    """(visual id as written, tag, k) of ``<vid>#<tag>#<k>``, or None when the id has another shape."""
    parts = capid.split("#")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def strip_media_suffix(vid: str) -> tuple[str, str | None]:
    """The media id without a ``.jpg`` / ``.mp4`` suffix, and the modality that suffix implies."""
    for suffix, modality in _MEDIA_SUFFIXES.items():
        if vid.lower().endswith(suffix):
            return vid[: -len(suffix)], modality
    return vid, None


def is_derived_tag(tag: str) -> bool:
    return any(p.match(tag) for p in (_MT, _BT, _TO_EN))


def model_from_name(name: str) -> str | None:
    """The model key of ``<coll><split>_<model>_enc2de...``: the segment before the derived tag."""
    segments = name.removesuffix(SUFFIX).split("_")
    for i, segment in enumerate(segments):
        if is_derived_tag(segment):
            return segments[i - 1] if i >= 2 else None
    return None


def read(src: Path, opts: IngestOptions) -> Iterator[Record]:
    seen: set[str] = set()
    for path in _caption_files(src):
        yield from _read_file(path, opts, seen)


def _caption_files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise CcrError(f"{src}: no such file or directory")
    directory = src / "TextData" if (src / "TextData").is_dir() else src
    files = regular_files(sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX)), "NRCCR caption file")
    if not files:
        raise CcrError(f"{directory}: no *{SUFFIX} files (NRCCR TextData with lines '<vid>#<tag>#<k> <text>')")
    return files


def _read_file(path: Path, opts: IngestOptions, seen: set[str]) -> Iterator[Record]:
    stem = path.name.removesuffix(SUFFIX)
    split = opts.split or guess_split(stem.split("_")[0]) or guess_split(stem)
    key = model_from_name(path.name) or opts.mt_model
    for lineno, line in iter_lines(path):
        if isinstance(line, BadRecord):
            yield line
            continue
        if not line.strip():
            continue
        capid, _, text = line.partition(" ")
        parts = split_capid(capid)
        if parts is None:
            yield BadRecord(f"{path}:{lineno}", f"caption id {capid!r} is not '<vid>#<tag>#<k>'", row_id=capid)
            continue
        vid = parts[0]
        media_id, suffix_modality = strip_media_suffix(vid)
        fields = _derive(capid, parts, key)
        if fields is None:
            yield BadRecord(f"{path}:{lineno}", f"unknown tag {parts[1]!r} in caption id {capid!r}", row_id=capid)
            continue
        where = f"{path}:{lineno}"
        # Without a .jpg/.mp4 suffix the line does not say image or video: left open, so that these
        # captions can join videos already in the corpus; a new media row defaults to image.
        media = Media(media_id=media_id, split=split, modality=opts.modality or suffix_modality,
                      path=vid if suffix_modality else None, source=where)
        if media_id not in seen:
            seen.add(media_id)
            yield media
        caption_id, lang, origin, parent_id, model = fields
        yield Caption(
            caption_id=caption_id,
            media_id=media_id,
            split=split,
            lang=lang,
            text=text,
            origin=origin,
            parent_id=parent_id,
            model=model,
            source=where,
            media=media,
        )


def _derive(capid: str, parts: tuple[str, str, str], key: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(caption id, lang, origin, parent id, model) that the tag implies; None for an unknown tag."""
    vid, tag, k = parts
    if tag == "enc":
        return capid, "en", "human", None, None
    if match := _BT.match(tag):
        mt_id = derived_id(f"{vid}#enc#{k}", "mt", match["lang"], key)
        return derived_id(mt_id, "bt", "en", key), "en", "bt", mt_id, key
    if match := _MT.match(tag):
        parent = f"{vid}#enc#{k}"
        return derived_id(parent, "mt", match["lang"], key), match["lang"], "mt", parent, key
    if match := _TO_EN.match(tag):
        parent = f"{vid}#{match['lang']}#{k}"
        return derived_id(parent, "mt", "en", key), "en", "mt", parent, key
    if _HUMAN.match(tag):
        return capid, tag, "human", None, None
    return None
