"""The next block of a source read on a thread while the current one is checked and written.

Parsing (pyarrow's JSON reader, polars) and checking and writing (polars, Parquet) spend most of
their time outside the GIL, so on two cores they overlap: about a tenth of a 2M-caption ingest. One
block waits at most, so memory stays bounded; a consumer that stops early (``--limit``) stops the
reader too.
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
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as err:  # handed to the caller, raised there
            put((_END, err))

    thread = threading.Thread(target=produce, name="ccr-ingest-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, err = waiting.get()
            if item is _END:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        thread.join()
