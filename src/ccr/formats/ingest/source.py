"""The ingest source on disk: the kind of path a format reads, its files, and the fingerprint of its text.

The path is checked before a byte is read or hashed: a FIFO would block and ``/dev/zero`` never
ends, so anything but a regular file (or a directory, for the formats that read one) is refused
with one line naming it. A generic source (jsonl, csv, parquet) may be a directory of parts, as
img2dataset and Spark write a dataset of millions of rows: its files of that format, in path order.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ccr.corpus.corpus import MANIFEST
from ccr.errors import CcrError
from ccr.paths import regular_file, regular_files

# Media files next to the annotations are not part of what ingest reads.
HASH_PIECE = 64 << 20  # bytes of a large source hashed apart, on a thread each
_MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".mp4", ".avi", ".webm", ".mkv", ".npy", ".bin", ".npz"}
PART_SUFFIXES = {"jsonl": (".jsonl", ".jsonl.gz", ".ndjson"), "csv": (".csv", ".csv.gz"), "parquet": (".parquet",)}


def check_source(src: Path, fmt: str, *, takes_directory: bool) -> None:
    if src.is_dir() and not takes_directory:
        raise CcrError(f"source {src} is a directory; the {fmt} format reads one file: give that file")
    regular_file(src, "source", directory_ok=takes_directory)


def source_files(src: Path, fmt: str) -> list[Path]:
    """The files a generic source reads: the file itself, or the directory's files of the format
    (hidden ones aside, and those under a name starting with ``_``, as Arrow's dataset reader skips
    them: Spark's unfinished ``_temporary/`` parts), in path order, so its entries are numbered the
    same way on every run.

    A ccr corpus under the directory (the one being written, put next to the parts) is no part of
    it: its Parquet shards would be read as parts on the next run, and change the fingerprint."""
    if not src.is_dir():
        return [src]
    suffixes = PART_SUFFIXES[fmt]
    entries = list(src.rglob("*"))
    corpora = [p.parent for p in entries if p.name == MANIFEST and p.parent != src and _is_corpus(p)]
    found = (p for p in entries if p.name.lower().endswith(suffixes)
             and not any(part.startswith((".", "_")) for part in p.relative_to(src).parts)
             and not any(corpus in p.parents for corpus in corpora))
    files = sorted(regular_files(found, "source file"))
    if not files:
        raise CcrError(f"source {src} holds no {fmt} files ({', '.join('*' + s for s in suffixes)}); "
                       f"give a {fmt} file, or a directory of them")
    return files


def _is_corpus(manifest: Path) -> bool:
    """Whether ``manifest`` is a ccr corpus's (a dataset may hold a ``manifest.json`` of its own)."""
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8")).get("created_with", "")).startswith("ccr ")
    except (OSError, ValueError, AttributeError):
        return False


def fingerprint(src: Path, files: list[Path] | None = None) -> str:
    """Content hash of the source's text files, so re-ingesting an unchanged source is a no-op.

    A file larger than ``HASH_PIECE`` is hashed as pieces of that size on threads (sha256 releases
    the GIL), its digests hashed in order: the source's hash no longer holds every other part of an
    ingest back for a third of a second per 400 MB. Pieces are of a fixed size, so the fingerprint
    is the same on every machine. ``files``: the ones of a directory that are read (default: all)."""
    h = hashlib.sha256()
    if files is None:
        files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    for path in files:
        if path.suffix.lower() in _MEDIA_SUFFIXES:
            continue
        h.update(str(path.relative_to(src) if src.is_dir() else path.name).encode())
        try:
            size = path.stat().st_size
            if size <= HASH_PIECE:
                _hash_range(path, 0, size, h)
            else:
                h.update(b"pieces:" + b"".join(_piece_digests(path, size)))
        except OSError as err:
            raise CcrError(f"{path} cannot be read ({err.strerror}); check its permissions") from None
    return h.hexdigest()[:16]


def _piece_digests(path: Path, size: int) -> list[bytes]:
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, size, HASH_PIECE)
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1, 8)) as pool:
        return list(pool.map(lambda start: _hash_range(path, start, min(HASH_PIECE, size - start),
                                                       hashlib.sha256()).digest(), starts))


def _hash_range(path: Path, start: int, length: int, h: Any) -> Any:
    """``h`` updated with ``length`` bytes of ``path`` from ``start`` (fewer if the file shrank)."""
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            block = f.read(min(1 << 20, length))
            if not block:
                break
            h.update(block)
            length -= len(block)
    return h
