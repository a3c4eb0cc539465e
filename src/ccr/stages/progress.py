"""Progress for long work: a rich bar on a terminal, a plain line every few seconds otherwise.

CI logs and batch schedulers capture stderr; a redrawn bar there is noise, a periodic line with
rate and ETA is what a person scrolling a log wants.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

PLAIN_EVERY_SECONDS = 5.0


class Progress:
    """Count rows done against an optional total."""

    def __init__(self, desc: str, total: int | None = None, *, unit: str = "rows", enabled: bool = True):
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0
        self.enabled = enabled
        self._rich: Any = None
        self._task: Any = None
        self._start = self._last = time.monotonic()

    def __enter__(self) -> Progress:
        if self.enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.desc, total=self.total, rate="")
        return self

    def set_total(self, total: int) -> None:
        """What is still owed, once the run knows it: a resumed run counts only what it has left."""
        self.total = total
        if self._rich is not None:
            self._rich.update(self._task, total=total)

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self._rich is not None:
            self._rich.update(self._task, advance=n, rate=f"{self.rate():.1f} {self.unit}/s")
        elif self.enabled and now - self._last >= PLAIN_EVERY_SECONDS:
            self._last = now
            print(self.line(), file=sys.stderr, flush=True)

    def rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        total = f"/{self.total}" if self.total is not None else ""
        eta = ""
        rate = self.rate()
        if self.total and rate > 0:
            eta = f", ETA {max(self.total - self.done, 0) / rate:.0f}s"
        return f"{self.desc}: {self.done}{total} {self.unit} ({rate:.1f} {self.unit}/s{eta})"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.stop()
