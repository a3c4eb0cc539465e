"""File locks that the kernel releases when a process dies, so a SIGKILL never leaves a stale lock.

A stage run holds two locks (DESIGN.md, "Stage runner"): a shared lock on ``STAGE.lock`` while it
runs, and an exclusive lock on ``STAGE-I.lock`` for its shard index ``I``, whatever its layout. The
shard lock file holds the holder's pid and shard count, so a run whose ``--num-shards`` differs
from a live run's is refused: two layouts would hand one row to two workers. Claiming a shard and
reading the others happens under a short ``STAGE.layout.lock``, so two runs that start together
still see each other. Whoever takes ``STAGE.lock`` exclusively (cleanup, ``--force``, compaction)
knows that no worker of the stage is live.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ccr.corpus.atomic import os_errors
from ccr.errors import CcrError


@dataclass(frozen=True)
class Worker:
    """A live run of a stage, as its shard lock file names it."""

    shard_index: int
    pid: int | None
    num_shards: int | None  # None: written by a ccr that did not record it


_HELD: set[int] = set()  # the lock files this process has open


def _forget_in_child() -> None:
    """A forked child (a media worker, a DataLoader worker) shares its parent's open lock files, and an
    flock lasts until every copy is closed: the child drops its copies, so the parent's release is the
    release even while the child lives on."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _held(path: Path, flags: int) -> int:
    fd = os.open(path, flags, 0o644)
    _HELD.add(fd)
    return fd


def _close(fd: int) -> None:
    _HELD.discard(fd)
    os.close(fd)


def _open(path: Path) -> int:
    with os_errors(path, "create a lock file"):
        path.parent.mkdir(parents=True, exist_ok=True)
        return _held(path, os.O_RDWR | os.O_CREAT)


def _try(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _content(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an ``flock`` on ``path`` for a short step that processes take in turn (a manifest update)."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _write(fd, str(os.getpid()))
        yield
    finally:
        _close(fd)


@contextmanager
def stage_alone(directory: Path, stage: str) -> Iterator[bool]:
    """Hold ``STAGE.lock`` exclusively if no run, cleanup or compaction of ``stage`` holds it now;
    yields whether it does. Runs that start meanwhile wait for it (their shared lock blocks)."""
    fd = _open(directory / f"{stage}.lock")
    try:
        yield _try(fd, fcntl.LOCK_EX)
    finally:
        _close(fd)


def _parse(shard_index: int, text: str) -> Worker:
    parts = text.split()
    numbers = [int(p) if p.isdigit() else None for p in parts[:2]] + [None, None]
    return Worker(shard_index, numbers[0], numbers[1])


def _shard_files(directory: Path, stage: str) -> Iterator[tuple[int, Path]]:
    pattern = re.compile(rf"{re.escape(stage)}-(\d+)\.lock")
    if directory.is_dir():
        for path in directory.iterdir():
            m = pattern.fullmatch(path.name)
            if m:
                yield int(m.group(1)), path


def _live(directory: Path, stage: str) -> list[Worker]:
    """Workers whose shard lock is held right now (a probe's shared lock fails against theirs)."""
    found = []
    for index, path in _shard_files(directory, stage):
        try:
            fd = _held(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _try(fd, fcntl.LOCK_SH):
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                found.append(_parse(index, _content(fd)))
        finally:
            _close(fd)
    return sorted(found, key=lambda w: w.shard_index)


@contextmanager
def _layout_lock(directory: Path, stage: str, *, create: bool = True) -> Iterator[None]:
    path = directory / f"{stage}.layout.lock"
    if create:
        fd = _open(path)
    else:
        try:
            fd = _held(path, os.O_RDONLY)
        except OSError:  # no run ever claimed a shard here, or a read-only corpus: probe unlocked
            yield
            return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        _close(fd)


def live_workers(directory: Path, stage: str, *, create: bool = False) -> list[Worker]:
    """The runs of ``stage`` alive now (what ``ccr info`` and ``--force`` ask)."""
    with _layout_lock(directory, stage, create=create):
        return _live(directory, stage)


def _layout(worker: Worker) -> str:
    n = worker.num_shards
    return f"--num-shards {n} --shard-index {worker.shard_index}" if n else f"--shard-index {worker.shard_index}"


def _claim(directory: Path, stage: str, shard_index: int, num_shards: int) -> int:
    """Take ``STAGE-I.lock`` and record this run in it; refuse a second run or a second layout."""
    mine = Worker(shard_index, os.getpid(), num_shards)
    with _layout_lock(directory, stage):
        fd = _open(directory / f"{stage}-{shard_index}.lock")
        if not _try(fd, fcntl.LOCK_EX):
            holder = _parse(shard_index, _content(fd))
            _close(fd)
            if holder.num_shards not in (None, num_shards):
                raise CcrError(_clash(stage, holder, mine))
            pid = f" (pid {holder.pid})" if holder.pid else ""
            if num_shards > 1:
                raise CcrError(f"ccr {stage} shard {shard_index}/{num_shards} is already running on this corpus{pid}; "
                               f"wait for it to finish, or give each worker its own --shard-index (0..{num_shards - 1})")
            raise CcrError(f"ccr {stage} is already running on this corpus{pid}; wait for it to finish, or split the "
                           "work: start every worker with --num-shards N --shard-index I")
        other = next((w for w in _live(directory, stage)
                      if w.shard_index != shard_index and w.num_shards not in (None, num_shards)), None)
        if other is not None:
            _close(fd)
            raise CcrError(_clash(stage, other, mine))
        _write(fd, f"{mine.pid} {num_shards}")
        return fd


def _clash(stage: str, live: Worker, mine: Worker) -> str:
    """The refusal of a second layout; joining is advice only where the live run left shards free."""
    join = (f" or use --num-shards {live.num_shards} with another --shard-index"
            if live.num_shards and live.num_shards > 1 else "")
    return (f"ccr {stage} is running here as {_layout(live)} (pid {live.pid}) and this run asks for {_layout(mine)}: "
            f"workers of one stage must share --num-shards, so wait for it to finish{join}")


@contextmanager
def stage_lease(directory: Path, stage: str, shard_index: int, num_shards: int, *,
                cleanup: Callable[[], None] | None = None, force: bool = False) -> Iterator[None]:
    """Hold ``stage``'s locks for one run; ``cleanup`` runs only while no other worker is live.

    Cleanup is skipped, not an error, when other workers run: what it would remove may be theirs.
    ``force`` (cleanup that redoes the stage) is refused while they run, since it deletes their rows.
    """
    fd = _open(directory / f"{stage}.lock")
    try:
        alone = _try(fd, fcntl.LOCK_EX)
        if not alone and force:
            live = live_workers(directory, stage, create=True)
            if live:
                pids = ", ".join(str(w.pid) for w in live)
                raise CcrError(f"--force redoes ccr {stage} from scratch, but {len(live)} worker(s) of it are running "
                               f"(pid {pids}); wait for them to finish or stop them first")
            fcntl.flock(fd, fcntl.LOCK_EX)  # another run's cleanup of a moment
            alone = True
        if alone and cleanup is not None:
            cleanup()
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only for another run's cleanup
        shard = _claim(directory, stage, shard_index, num_shards)
        try:
            yield
        finally:
            _close(shard)
    finally:
        _close(fd)
