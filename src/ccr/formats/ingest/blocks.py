"""A text file cut into bounded blocks of whole lines, each line found without a Python loop.

The vectorised jsonl reader needs every line's number (failure rows and entry ids name it) and
must hold only one block at a time, however large the file: a block is read as bytes, cut after
its last newline, and its lines are located with numpy. A block whose bytes are all UTF-8 costs
one check in place; only the lines of a block that is not pay a decode each. The lines
as text are built only when asked for: a block whose every line opens a JSON object goes to the
parser as bytes, and never needs them. A byte range of whole lines reads the same way (``pieces``
cuts a file into such ranges, to parse them on several machines); its lines are numbered from 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ccr.formats.ingest.records import BadRecord
from ccr.formats.ingest.textio import damaged, not_utf8, open_bytes

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

BLOCK_BYTES = 4 << 20  # bytes read at once: memory stays flat whatever the file's size
_BOM = b"\xef\xbb\xbf"


@dataclass
class Block:
    """Lines ``first`` .. ``first + count - 1`` of a file (1-based)."""

    first: int
    offsets: np.ndarray  # where each line starts in ``body``, and where the last ends
    bad: dict[int, BadRecord]  # line number -> why it is not UTF-8
    body: bytes  # the block's bytes (undecodable lines blanked), handed whole to a JSON parser where
    # every line is an entry

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def opens_objects(self) -> bool:
        """Whether every line starts with ``{`` (so none is blank, and all may be JSON objects)."""
        import numpy as np

        return bool(np.all(np.frombuffer(self.body, dtype=np.uint8)[self.offsets[:-1]] == ord("{")))

    def text(self) -> pl.Series:
        """Each line as text, its ending removed; an undecodable line is blank here."""
        import polars as pl
        import pyarrow as pa

        strings = pa.LargeStringArray.from_buffers(self.count, pa.py_buffer(self.offsets), pa.py_buffer(self.body))
        return pl.from_arrow(strings).str.strip_suffix("\n").str.strip_chars_end("\r")


def blocks(path: Path, block_bytes: int = BLOCK_BYTES, start: int = 0, end: int | None = None) -> Iterator[Block]:
    """The lines of bytes ``start`` to ``end`` (by default the whole file; a range starts and ends at a
    line boundary) in blocks of about ``block_bytes``; the last line needs no newline."""
    first, rest, left = 1, b"", end - start if end is not None else None
    with open_bytes(path) as fh:
        if start:
            fh.seek(start)
        while True:
            try:
                data = fh.read(block_bytes if left is None else min(block_bytes, left))
            except (OSError, EOFError) as err:
                raise damaged(path, err) from None
            if left is not None:
                left -= len(data)
            buf = rest + data
            if first == 1 and start == 0 and buf.startswith(_BOM):
                buf = buf[len(_BOM):]
            cut = buf.rfind(b"\n") + 1 if data else len(buf)
            if cut == 0 and data:  # one line longer than a block: read on
                rest = buf
                continue
            body, rest = buf[:cut], buf[cut:]
            if body:
                block = _block(path, first, body)
                first += block.count
                yield block
            if not data:
                return


def _block(path: Path, first: int, body: bytes) -> Block:
    import numpy as np

    raw = np.frombuffer(body, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10) + 1
    if not body.endswith(b"\n"):
        ends = np.append(ends, len(body))
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    bad: dict[int, BadRecord] = {}
    if not _utf8(body):
        body, bad = _blank_undecodable(path, first, body, offsets)
    return Block(first=first, offsets=offsets, bad=bad, body=body)


def _utf8(body: bytes) -> bool:
    """Whether the block is all UTF-8, checked in place by Arrow (``bytes.decode`` would build a
    copy of the block as text to throw away, at a third of the speed)."""
    import numpy as np
    import pyarrow as pa

    text = pa.LargeStringArray.from_buffers(1, pa.py_buffer(np.array([0, len(body)], np.int64)), pa.py_buffer(body))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _blank_undecodable(path: Path, first: int, body: bytes, offsets: np.ndarray) -> tuple[bytes, dict[int, BadRecord]]:
    """The block with each undecodable line blanked (same length, so offsets hold), and why each is bad."""
    import numpy as np

    out = bytearray(body)
    bad: dict[int, BadRecord] = {}
    position = 0
    while True:
        try:
            bytes(out[position:]).decode("utf-8")
            return bytes(out), bad
        except UnicodeDecodeError as err:
            at = int(np.searchsorted(offsets, position + err.start, side="right")) - 1
            start, end = int(offsets[at]), int(offsets[at + 1])
            # decoding resumes clean after each newline, so the line alone fails at the same byte
            bad[first + at] = BadRecord(f"{path}:{first + at}", not_utf8(position + err.start - start))
            newline = b"\n" if body[end - 1:end] == b"\n" else b""
            out[start:end] = b" " * (end - start - len(newline)) + newline
            position = end
