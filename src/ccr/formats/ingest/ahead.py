"""The next item of a source made on a thread while the caller holds the current one.

Parsing (pyarrow's JSON reader, polars), checking (polars) and writing (Parquet) spend most of
their time outside the GIL, so on two cores they overlap: ingest parses the next chunk's blocks
while it checks this chunk, and checks the next chunk while the runner writes this one. The thread makes
the next item only once the caller has taken the one before, so at most two are alive (the
caller's and the one in the making); a caller that stops early (``--limit``) stops the thread too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


def ahead(items: Iterator[T]) -> Iterator[T]:
    """``items`` in order, the next one produced on a thread while the caller holds this one."""
    waiting: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)
    stop, taken = threading.Event(), threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        """Hand the entry over and wait until the caller has taken it."""
        waiting.put(entry)
        while not taken.wait(timeout=0.1):
            if stop.is_set():
                return False
        taken.clear()
        return not stop.is_set()

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as err:  # handed to the caller, raised there
            put((_END, err))

    thread = threading.Thread(target=produce, name="ccr-ingest-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, err = waiting.get()
            taken.set()
            if item is _END:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        thread.join()
