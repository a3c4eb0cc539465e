"""``ahead`` hands items over in order, raises the reader's error where it came, and stops the
reader when the caller stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ccr.formats.ingest.ahead import ahead


def test_in_order() -> None:
    assert list(ahead(iter(range(100)))) == list(range(100))


def test_error_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("broken line")

    got = []
    with pytest.raises(ValueError, match="broken line"):
        for item in ahead(items()):
            got.append(item)
    assert got == [1]


def test_stopping_early_ends_the_reader() -> None:
    made = []

    def items() -> Iterator[int]:
        for i in range(1000):
            made.append(i)
            yield i

    reader = ahead(items())
    assert next(reader) == 0
    reader.close()
    assert len(made) < 5
    assert not any(t.name == "ccr-ingest-ahead" for t in threading.enumerate())
