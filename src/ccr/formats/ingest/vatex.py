"""VATEX annotation JSON: a list of videos, each with ten English and ten Chinese human captions.

The two languages are independent annotations (not translations of each other), so both are origin
human with no parent. The public test file has no captions at all; it still yields the videos.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ccr.errors import CcrError
from ccr.formats.ingest.records import BadRecord, Caption, Media, Record
from ccr.formats.ingest.textio import guess_split, load_json

if TYPE_CHECKING:
    from ccr.formats.ingest.records import IngestOptions

_SHAPE = 'a VATEX file: [{"videoID": ..., "enCap": [...], "chCap": [...]}]'
_LANG_KEYS = (("enCap", "en"), ("chCap", "zh"))


def read(src: Path, opts: IngestOptions) -> Iterator[Record]:
    doc = load_json(src, _SHAPE)
    if not isinstance(doc, list):
        raise CcrError(f"{src}: the top level is not a list; expected {_SHAPE}")
    split = opts.split or guess_split(src.name)
    modality = opts.modality or "video"
    for i, entry in enumerate(doc):
        where = f"{src}:[{i}]"
        if not isinstance(entry, dict):
            yield BadRecord(where, "entry is not an object")
            continue
        vid = entry.get("videoID")
        if not isinstance(vid, str) or not vid:
            yield BadRecord(where, "'videoID' missing or not a string")
            continue
        media = Media(media_id=vid, split=split, modality=modality, path=f"{vid}.mp4", source=where, path_given=False)
        yield media
        for key, lang in _LANG_KEYS:
            captions = entry.get(key, [])
            if not isinstance(captions, list):
                yield BadRecord(f"{where}.{key}", f"'{key}' is not a list", row_id=vid)
                continue
            for k, text in enumerate(captions):
                caption_id = f"{vid}#{lang}#{k}"
                at = f"{where}.{key}[{k}]"
                if isinstance(text, str):
                    yield Caption(caption_id=caption_id, media_id=vid, split=split, lang=lang, text=text, source=at,
                                  media=media)
                else:
                    yield BadRecord(at, "caption is not a string", row_id=caption_id)
