"""COCO caption JSON and the Karpathy split files (dataset_coco.json, dataset_flickr30k.json).

Both are single JSON documents, so they are loaded whole; a bad entry inside them still becomes a
BadRecord naming the entry, so one broken annotation does not lose the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ccr.errors import CcrError
from ccr.formats.ingest.records import BadRecord, Caption, Media, Record
from ccr.formats.ingest.textio import as_id, guess_split, load_json

if TYPE_CHECKING:
    from ccr.formats.ingest.records import IngestOptions

_COCO_SHAPE = 'a COCO caption file: {"images": [{id, file_name}], "annotations": [{id, image_id, caption}]}'
_KARPATHY_SHAPE = 'a Karpathy split file: {"images": [{filename, split, sentences: [{raw, sentid}]}]}'


def read(src: Path, opts: IngestOptions) -> Iterator[Record]:
    doc = load_json(src, _COCO_SHAPE)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(
        doc.get("annotations"), list
    ):
        raise CcrError(f"{src}: no 'images' and 'annotations' lists; expected {_COCO_SHAPE}")
    split = opts.split or guess_split(src.name)
    modality = opts.modality or "image"
    lang = opts.lang or "en"
    for i, image in enumerate(doc["images"]):
        where = f"{src}:images[{i}]"
        if not isinstance(image, dict):
            yield BadRecord(where, "image entry is not an object")
            continue
        media_id = as_id(image.get("id"))
        file_name = image.get("file_name")
        if media_id is None:
            yield BadRecord(where, "image 'id' missing or not an integer/string")
        elif not isinstance(file_name, str):
            yield BadRecord(where, "image 'file_name' missing or not a string", row_id=media_id)
        else:
            yield Media(media_id=media_id, split=split, modality=modality, path=file_name, source=where)
    for i, ann in enumerate(doc["annotations"]):
        where = f"{src}:annotations[{i}]"
        if not isinstance(ann, dict):
            yield BadRecord(where, "annotation entry is not an object")
            continue
        caption_id = as_id(ann.get("id"))
        media_id = as_id(ann.get("image_id"))
        text = ann.get("caption")
        if caption_id is None:
            yield BadRecord(where, "annotation 'id' missing or not an integer/string")
        elif media_id is None:
            yield BadRecord(where, "annotation 'image_id' missing or not an integer/string", row_id=caption_id)
        elif not isinstance(text, str):
            yield BadRecord(where, "annotation 'caption' missing or not a string", row_id=caption_id)
        else:
            yield Caption(caption_id=caption_id, media_id=media_id, split=split, lang=lang, text=text, source=where)


def read_karpathy(src: Path, opts: IngestOptions) -> Iterator[Record]:
    doc = load_json(src, _KARPATHY_SHAPE)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise CcrError(f"{src}: no 'images' list; expected {_KARPATHY_SHAPE}")
    modality = opts.modality or "image"
    lang = opts.lang or "en"
    for i, image in enumerate(doc["images"]):
        where = f"{src}:images[{i}]"
        media = _karpathy_media(image, where, opts.split, modality)
        yield media
        if isinstance(media, Media):
            yield from _karpathy_sentences(image["sentences"], media, where, lang)


def _karpathy_media(image: Any, where: str, split_override: str | None, modality: str) -> Media | BadRecord:
    if not isinstance(image, dict):
        return BadRecord(where, "image entry is not an object")
    filename = image.get("filename")
    if not isinstance(filename, str) or not filename:
        return BadRecord(where, "image 'filename' missing or not a string")
    media_id = as_id(image["cocoid"]) if "cocoid" in image else PurePosixPath(filename).stem
    if media_id is None:
        return BadRecord(where, "image 'cocoid' is not an integer/string", row_id=filename)
    split = image.get("split")
    if split_override is None and not isinstance(split, str):
        return BadRecord(where, "image 'split' missing or not a string", row_id=media_id)
    if not isinstance(image.get("sentences"), list):
        return BadRecord(where, "image 'sentences' missing or not a list", row_id=media_id)
    filepath = image.get("filepath")
    path = f"{filepath}/{filename}" if isinstance(filepath, str) and filepath else filename
    resolved = split_override or ("train" if split == "restval" else split)
    return Media(media_id=media_id, split=resolved, modality=modality, path=path, source=where)


def _karpathy_sentences(sentences: list[Any], media: Media, where: str, lang: str) -> Iterator[Record]:
    for j, sentence in enumerate(sentences):
        at = f"{where}.sentences[{j}]"
        if not isinstance(sentence, dict):
            yield BadRecord(at, "sentence is not an object", row_id=media.media_id)
            continue
        caption_id = as_id(sentence.get("sentid"))
        text = sentence.get("raw")
        if caption_id is None:
            yield BadRecord(at, "sentence 'sentid' missing or not an integer/string", row_id=media.media_id)
        elif not isinstance(text, str):
            yield BadRecord(at, "sentence 'raw' missing or not a string", row_id=caption_id)
        else:
            yield Caption(caption_id=caption_id, media_id=media.media_id, split=media.split, lang=lang, text=text,
                          source=at, media=media)
