"""Crash-safe writes: a file is either absent or complete, never half-written.

Every shard, marker and manifest goes through here: write to a temporary name in the same
directory, fsync, rename over the final name, fsync the directory. A SIGKILL at any point leaves
at most a ``.tmp-*`` file that the next run removes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_with(path: Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then move the result to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False, default=str)
    return write_bytes(path, text.encode("utf-8"))


def remove_temporaries(root: Path) -> int:
    """Delete leftovers of killed writes below ``root``; returns how many."""
    n = 0
    for tmp in root.rglob(f"{TMP_PREFIX}*"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            n += 1
    return n
