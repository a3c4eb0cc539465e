"""The ingest source on disk: the kind of path a format reads, and the fingerprint of its text.

The path is checked before a byte is read or hashed: a FIFO would block and ``/dev/zero`` never
ends, so anything but a regular file (or a directory, for the formats that read one) is refused
with one line naming it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ccr.errors import CcrError
from ccr.paths import regular_file

# Media files next to the annotations are not part of what ingest reads.
_MEDIA_SUFFIXES = {".jpg", ".jpeg", ".png", ".mp4", ".avi", ".webm", ".mkv", ".npy", ".bin", ".npz"}


def check_source(src: Path, fmt: str, *, takes_directory: bool) -> None:
    if src.is_dir() and not takes_directory:
        raise CcrError(f"source {src} is a directory; the {fmt} format reads one file: give that file")
    regular_file(src, "source", directory_ok=takes_directory)


def fingerprint(src: Path) -> str:
    """Content hash of the source's text files, so re-ingesting an unchanged source is a no-op."""
    h = hashlib.sha256()
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    for path in files:
        if path.suffix.lower() in _MEDIA_SUFFIXES:
            continue
        h.update(str(path.relative_to(src) if src.is_dir() else path.name).encode())
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as err:
            raise CcrError(f"{path} cannot be read ({err.strerror}); check its permissions") from None
    return h.hexdigest()[:16]
