"""File locks that the kernel releases when a process dies, so a SIGKILL never leaves a stale lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ccr.errors import CcrError


@contextmanager
def exclusive(path: Path, *, wait: bool, what: str) -> Iterator[None]:
    """Hold an ``flock`` on ``path``; without ``wait`` a held lock is a clear error, not a hang."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                pass
            pid = f" (pid {holder})" if holder else ""
            raise CcrError(
                f"{what} is already running on this corpus{pid}; wait for it to finish, "
                "or give each worker its own --shard-index"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
