"""Export captions to the NRCCR / LECCR ``TextData`` layout, so existing research code can train on them.

NRCCR links a caption to its translation only through the caption id, by rewriting the tag
(``vid#enc#k`` -> ``vid#enc2de#k`` -> ``vid#enc2de2enc#k``). Our tables link them by ``parent_id``
instead, so the exporter walks each derived row back to its human root and gives it the root's id
with the derived tag. The ``nrccr`` ingest reader parses what this writes; the round trip is exact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.corpus.schema import BASE_COLUMNS
from ccr.errors import CcrError
from ccr.formats.ingest.nrccr import SUFFIX, split_capid, strip_media_suffix

if TYPE_CHECKING:
    import polars as pl

COLUMNS = BASE_COLUMNS["captions"]
_FILE_SAFE = re.compile(r"[^\s_/\\#]+")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def write_nrccr(captions: pl.DataFrame, out_dir: Path, collection: str) -> list[Path]:
    """Writes ``out_dir/TextData/*.caption.txt`` and returns the files written.

    A caption text holding a line break is written with spaces instead, since one line is one
    caption in this format.
    """
    missing = [c for c in COLUMNS if c not in captions.columns]
    if missing:
        raise CcrError(f"cannot export to NRCCR: the captions table lacks {', '.join(missing)}")
    rows: dict[str, dict[str, Any]] = {}
    for values in captions.select(COLUMNS).iter_rows():
        row = dict(zip(COLUMNS, values, strict=True))
        if row["caption_id"] in rows:
            raise CcrError(f"cannot export to NRCCR: caption id {row['caption_id']!r} appears twice")
        rows[row["caption_id"]] = row
    human_ids = _human_capids(rows)
    files: dict[str, list[tuple[tuple[Any, ...], str]]] = {}
    for row in rows.values():
        tag, root = _tag(row, rows)
        vid, k = human_ids[root["caption_id"]]
        capid = f"{vid}#{tag}#{k}"
        name = _file_name(collection, row, tag)
        text = _LINE_BREAKS.sub(" ", row["text"] or "")
        files.setdefault(name, []).append(((row["media_id"], _k_order(k), capid), f"{capid} {text}\n"))
    directory = out_dir / "TextData"
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(files):
        lines = sorted(files[name], key=lambda item: item[0])
        _check_unique(name, lines)
        written.append(_write_atomic(directory / name, "".join(line for _, line in lines)))
    return written


def _human_capids(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """(vid, k) of every human row: from its own id when that is already ``vid#tag#k`` for this
    media and language, else (media id, rank among the item's captions in that language)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows.values():
        if row["origin"] == "human":
            groups.setdefault((row["media_id"], row["lang"]), []).append(row["caption_id"])
    capids: dict[str, tuple[str, str]] = {}
    for (media_id, lang), ids in groups.items():
        tag = "enc" if lang == "en" else lang
        for rank, caption_id in enumerate(sorted(ids)):
            parts = split_capid(caption_id)
            if parts and parts[1] == tag and strip_media_suffix(parts[0])[0] == media_id:
                capids[caption_id] = (parts[0], parts[2])
            else:
                capids[caption_id] = (media_id, str(rank))
    return capids


def _tag(row: dict[str, Any], rows: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The NRCCR tag of a row and the human row its id is built from."""
    origin, lang = row["origin"], row["lang"]
    if origin not in ("human", "mt", "bt") or not lang or not row["media_id"]:
        raise CcrError(
            f"cannot export to NRCCR: caption {row['caption_id']!r} has origin {origin!r}, language {lang!r} "
            f"and media {row['media_id']!r}; only human, mt and bt rows with a language and a media id have tags"
        )
    if origin == "human":
        return ("enc" if lang == "en" else lang), row
    parent = rows.get(row["parent_id"]) if row["parent_id"] is not None else None
    if parent is None:
        raise CcrError(
            f"cannot export to NRCCR: {origin} caption {row['caption_id']!r} has parent "
            f"{row['parent_id']!r}, which is not in the table; export the rows it was translated from too"
        )
    if origin == "mt" and parent["origin"] == "human":
        if parent["lang"] == "en" and lang != "en":
            return f"enc2{lang}", parent
        if parent["lang"] != "en" and lang == "en":
            return f"{parent['lang']}2enc", parent
    if origin == "bt" and lang == "en" and parent["origin"] == "mt" and parent["lang"] != "en":
        root = rows.get(parent["parent_id"]) if parent["parent_id"] is not None else None
        if root is not None and root["origin"] == "human" and root["lang"] == "en":
            return f"enc2{parent['lang']}2enc", root
    raise CcrError(
        f"cannot export to NRCCR: caption {row['caption_id']!r} ({origin}, {lang}, from {parent['origin']} "
        f"{parent['lang']}) is none of en->xx MT, its back-translation, or xx->en MT of a human caption"
    )


def _file_name(collection: str, row: dict[str, Any], tag: str) -> str:
    split = row["split"]
    if not split:
        raise CcrError(f"cannot export to NRCCR: caption {row['caption_id']!r} has no split")
    if row["origin"] == "human":
        return f"{collection}{split}_{tag}{SUFFIX}"
    model = row["model"]
    if not model or not _FILE_SAFE.fullmatch(model):
        raise CcrError(
            f"cannot export to NRCCR: caption {row['caption_id']!r} has model key {model!r}; the file name "
            "needs a non-empty key without '_', '/', '#' or spaces"
        )
    return f"{collection}{split}_{model}_{tag}{SUFFIX}"


def _k_order(k: str) -> tuple[int, int, str]:
    """Numeric caption indices sort as numbers (2 before 10), anything else after them as text."""
    return (0, int(k), "") if k.isdigit() else (1, 0, k)


def _check_unique(name: str, lines: list[tuple[tuple[Any, ...], str]]) -> None:
    seen: set[str] = set()
    for (_, _, capid), _ in lines:
        if capid in seen:
            raise CcrError(f"cannot export to NRCCR: {name} would hold caption id {capid!r} twice")
        seen.add(capid)


def _write_atomic(path: Path, content: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
