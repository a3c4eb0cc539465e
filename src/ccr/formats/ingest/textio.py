"""Line and JSON reading shared by the ingest readers.

A bad line in the middle of a large file must cost one failure row, not the file: lines are read
as bytes and decoded one by one, so invalid UTF-8 or a broken JSON line becomes a ``BadRecord``
and the lines after it still parse. A file that cannot be opened at all is a ``CcrError``.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ccr.errors import CcrError
from ccr.formats.ingest.records import BadRecord
from ccr.paths import regular_file

_BOM = b"\xef\xbb\xbf"
_SPLIT_WORDS = re.compile(r"restval|train|val|test")
_WORDS = re.compile(r"[a-z]+")  # digits and punctuation part words: val2014, train_0001, split=test
_PART_SPLITS = {"train": "train", "training": "train", "restval": "train", "val": "val", "valid": "val",
                "validation": "val", "test": "test", "testing": "test"}


def open_bytes(path: Path) -> IO[bytes]:
    """Opens plain or gzip files alike: the public Multi30K and VATEX releases ship both."""
    regular_file(path, "file")
    try:
        return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")  # as a part is found
    except OSError as err:
        raise CcrError(f"{path}: cannot be read ({err})") from None


def iter_lines(path: Path) -> Iterator[tuple[int, str | BadRecord]]:
    """Yields (1-based line number, line without its ending) or a BadRecord for undecodable bytes."""
    with open_bytes(path) as fh:
        try:
            for lineno, raw in enumerate(fh, 1):
                yield lineno, decode_line(path, lineno, raw)
        except (OSError, EOFError) as err:
            raise damaged(path, err) from None


def damaged(path: Path, err: OSError | EOFError) -> CcrError:
    """A file that opened but cannot be read to its end (a gzip file cut short, or with bytes after it)."""
    return CcrError(f"{path}: the file is damaged and cannot be read to the end ({err})")


def decode_line(path: Path, lineno: int, raw: bytes) -> str | BadRecord:
    """A raw line (its ending, and on line 1 a byte-order mark, removed) as text, or why it is not."""
    raw = raw.rstrip(b"\n").rstrip(b"\r")
    if lineno == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return BadRecord(f"{path}:{lineno}", not_utf8(err.start))


def not_utf8(at: int) -> str:
    """Why a line is refused: its first byte that is not UTF-8 (counted from the line's start)."""
    return f"invalid UTF-8 at byte {at}"


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRecord]]:
    """Yields each non-blank line's JSON object, or a BadRecord for a line that is not one."""
    for lineno, line in iter_lines(path):
        parsed = line if isinstance(line, BadRecord) else json_line(path, lineno, line)
        if parsed is not None:
            yield lineno, parsed


def json_line(path: Path, lineno: int, line: str) -> dict[str, Any] | BadRecord | None:
    """One decoded line's JSON object, a BadRecord for a line that is not one, None for a blank line;
    the vectorised reader sends here the lines its JSON parser refuses, so both judge them alike."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        return BadRecord(f"{path}:{lineno}", f"malformed JSON: {err.msg} at column {err.colno}")
    if not isinstance(obj, dict):
        return BadRecord(f"{path}:{lineno}", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def load_json(path: Path, expected: str) -> Any:
    """Loads a one-document JSON file; ``expected`` describes the shape for the error message."""
    with open_bytes(path) as fh:
        try:
            data = fh.read()
        except (OSError, EOFError) as err:
            raise CcrError(f"{path}: cannot be read ({err})") from None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise CcrError(f"{path}: not UTF-8 (byte {err.start}); expected {expected}") from None
    except json.JSONDecodeError as err:
        raise CcrError(f"{path}: not valid JSON ({err.msg}, line {err.lineno}); expected {expected}") from None


def first_content_line(path: Path) -> str | None:
    """The first non-blank decodable line, used to tell a jsonl file from a text format."""
    for _, line in iter_lines(path):
        if isinstance(line, str) and line.strip():
            return line
    return None


def guess_split(name: str) -> str | None:
    """Split named in a file name (``captions_val2014.json``, ``multi30ktest_de``), restval -> train.

    The last match wins because datasets append the split after the collection name.
    """
    matches = _SPLIT_WORDS.findall(name.lower())
    if not matches:
        return None
    word = matches[-1]
    return "train" if word == "restval" else word


def part_split(path: str) -> str | None:
    """Split named by a word of a part's path (``val-00003.parquet``, ``parts/val/0.jsonl``,
    Hive's ``split=test/``), the last such word winning. A data pipeline's paths hold other words
    (``latest/``, ``interval/``, ``retrain/``), so here a split is a whole word, not a piece of one
    as in the research datasets' own names (``multi30ktest_de``, ``captions_val2014.json``)."""
    words = [w for w in _WORDS.findall(path.lower()) if w in _PART_SPLITS]
    return _PART_SPLITS[words[-1]] if words else None


def as_id(value: Any) -> str | None:
    """An id from JSON: strings as they are, integers as decimal text; anything else is invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def as_number(value: Any) -> float | None:
    """A JSON number as float; booleans and strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
