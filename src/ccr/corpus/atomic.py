"""Crash-safe writes: a file is either absent or complete, never half-written.

Every shard, marker and manifest goes through here: write to a temporary name in the same
directory, fsync, rename over the final name, fsync the directory. A SIGKILL at any point leaves
at most a ``.tmp-*`` file that the next run of the stage that wrote it removes.

A path the user gave that cannot be written (read-only, not a directory, a full disk) is one line
naming the path and the fix, never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ccr.errors import CcrError

TMP_PREFIX = ".tmp-"
_TMP = re.compile(re.escape(TMP_PREFIX) + r"[0-9a-f]{32}-(.+)")


@contextmanager
def os_errors(path: Path, action: str) -> Iterator[None]:
    """Turn an ``OSError`` while doing ``action`` on ``path`` into a one-line ``CcrError``."""
    try:
        yield
    except OSError as e:
        named = Path(e.filename) if isinstance(e.filename, str) else path
        message = _explain(path if named.name.startswith(TMP_PREFIX) else named, action, e)
        raise CcrError(" ".join(message.split())) from None  # one line, whatever the library's text holds


def _explain(path: Path, action: str, e: OSError) -> str:
    expected_dirs = [path, *path.parents] if isinstance(e, (FileExistsError, NotADirectoryError)) else path.parents
    blocker = next((p for p in expected_dirs if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return (f"cannot {action} at {path}: {blocker} is a file, not a directory; "
                "move it away or choose another corpus/output path")
    if isinstance(e, IsADirectoryError):
        return f"cannot {action} at {path}: it is a directory; move it away or choose another path"
    if isinstance(e, FileNotFoundError):
        return f"cannot {action} at {path}: its directory does not exist; create it or choose another path"
    if isinstance(e, PermissionError) or e.errno == errno.EROFS:
        return (f"cannot {action} at {path}: {e.strerror or 'permission denied'}; make it writable "
                "(chmod u+w, or a read-write mount) or choose another corpus/output path")
    if e.errno == errno.ENOSPC:
        return f"cannot {action} at {path}: the disk is full; free space and run the same command again"
    return f"cannot {action} at {path}: {e.strerror or e}; check the path and run the same command again"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_with(path: Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then move the result to ``path`` atomically."""
    tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
    with os_errors(path, "write"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
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


def remove_temporaries(directory: Path, final_name: Callable[[str], bool]) -> int:
    """Delete leftovers of killed writes in ``directory`` whose final name ``final_name`` accepts.

    Only the owner of those names may call this (the stage under its exclusive lock, a writer
    under its own lock): another process's write in flight would lose its temporary.
    """
    n = 0
    if directory.is_dir():
        for tmp in directory.iterdir():
            m = _TMP.fullmatch(tmp.name)
            if m and final_name(m.group(1)) and tmp.is_file():
                tmp.unlink(missing_ok=True)
                n += 1
    return n
