"""Worker processes that decode media ahead of the model, so a GPU stage is never waiting on JPEGs.

One JPEG decode plus CLIP preprocessing costs a core several milliseconds while a GPU embeds
thousands of images a second: a stage that decodes in its own process leaves the GPU idle almost
all the time. A ``MediaPool`` runs one picklable job (decode, and for ``ccr features`` also
preprocess) per media row in worker processes; a stage submits the next batch's rows before it
runs the model on the current one and collects results in row order. ``workers = 0`` runs the same
job in the calling process, so outputs never depend on the worker count.

Workers are forked on Linux (they start in milliseconds and share the loaded job) and spawned
elsewhere. Each watches its parent and exits when it dies, so a SIGKILLed stage leaves no orphans.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ccr.errors import CcrError

MAX_AUTO_WORKERS = 16  # past this, a single GPU is no longer waiting on decoding (issue 17's 16-core H200)

_JOB: Callable[..., Any] | None = None  # the job of this worker process


class WorkerDied(RuntimeError):
    """A worker process died mid-task (a decoder crash, the OOM killer); the pool was restarted."""


def machine_cores() -> int:
    """Cores this process may run on (the container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """``None`` = the machine's cores, at most ``MAX_AUTO_WORKERS``; ``0`` = decode in the calling process."""
    if workers is None:
        return min(machine_cores(), MAX_AUTO_WORKERS)
    if workers < 0:
        raise CcrError(f"--workers {workers}: give 0 (decode in the main process) or more")
    return workers


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _install(job: Callable[..., Any], parent: int) -> None:
    """Worker initializer: keep the job for every task and leave when the stage's process is gone."""
    global _JOB
    _JOB = job
    if "torch" in sys.modules:  # one thread per worker, as DataLoader's workers: the workers are the parallelism
        sys.modules["torch"].set_num_threads(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _call(group: list[tuple[Any, ...]]) -> list[Any]:
    assert _JOB is not None
    return [_outcome(_JOB, args) for args in group]


def _context() -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


class MediaPool:
    """Runs ``job(*args)`` for keyed items, in ``workers`` processes or (0) inline, results in the asked order.

    ``submit`` starts items early (a no-op for an item already under way); ``results`` returns one
    result or raised exception per item, submitting those not yet started. Items travel in groups,
    about two per worker for each call, because one task per item costs the pool's own threads
    more than a small model's step. Memory stays bounded by what the caller submits ahead: the
    stages submit one batch ahead.
    """

    def __init__(self, job: Callable[..., Any], workers: int):
        self.job = job
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._pending: dict[str, tuple[Future[list[Any]], int]] = {}  # key -> its group's task, its place there

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_install,
                                                 initargs=(self.job, os.getpid()))
            weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        return self._executor

    def submit(self, items: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Start ``(key, args)`` items not already under way."""
        new = [(key, args) for key, args in dict(items).items() if key not in self._pending] if self.workers else []
        size = -(-len(new) // (2 * self.workers)) if new else 1
        for start in range(0, len(new), size):
            group = new[start:start + size]
            future = self._pool().submit(_call, [args for _, args in group])
            self._pending.update({key: (future, i) for i, (key, _) in enumerate(group)})

    def results(self, items: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """``(key, args)`` -> the job's result or the exception it raised, per item, in order.

        When a worker died, the pool restarts and the items it took down come back as ``WorkerDied``.
        """
        if not self.workers:
            return [_outcome(self.job, args) for _, args in items]
        self.submit(items)
        taken = {key: self._pending.pop(key) for key in dict(items)}
        out = [_settled(*taken[key]) for key, _ in items]
        if any(isinstance(o, WorkerDied) for o in out):
            self.close()
        return out

    def close(self) -> None:
        """Stop the workers and drop what was submitted ahead (a later ``submit`` starts a fresh pool)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        self._pending.clear()


def _outcome(job: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return job(*args)
    except Exception as e:  # noqa: BLE001 - handed back like a worker's, the caller decides
        return e


def _settled(future: Future[list[Any]], index: int) -> Any:
    error = future.exception()
    if isinstance(error, BrokenProcessPool):
        return WorkerDied(f"a media worker process died ({error}); the row was not read")
    return error if error is not None else future.result()[index]
