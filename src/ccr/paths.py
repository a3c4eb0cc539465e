"""Paths a user names: what ccr reads must be a regular file, where it writes must be a writable directory.

Both are checked before the first byte is read or the first slow step runs: a FIFO blocks a reader
forever, ``/dev/zero`` never ends (a TOML parser reading it fills the memory), and an output place
found read-only after an hour of work costs that hour. Either way the user gets one line naming the
path and the fix. A leaf: nothing here imports more of ccr than the error type.
"""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ccr.errors import CcrError


def regular_file(path: Path | str, what: str, *, directory_ok: bool = False) -> Path:
    """``path`` if it is a regular file (a symlink to one is), else one line naming it as ``what``.

    ``directory_ok`` also lets a directory through, for a source that may be one; its files are then
    checked one by one as they are read.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise CcrError(f"{what} {path} does not exist; check the path") from None
    except OSError as e:
        raise CcrError(f"{what} {path} cannot be read ({e.strerror or e}); check the path and its permissions"
                       ) from None
    if stat.S_ISREG(mode) or (directory_ok and stat.S_ISDIR(mode)):
        return path
    wanted = "a file or directory" if directory_ok else "a file"
    if stat.S_ISDIR(mode):
        raise CcrError(f"{what} {path} is a directory; give {wanted}")
    raise CcrError(f"{what} {path} is not a regular file (a device, pipe or socket); give {wanted}")


def regular_files(entries: Iterable[Path], what: str) -> list[Path]:
    """The entries of a directory scan that a reader will open: sub-directories are passed over, and
    anything else that is no regular file (a FIFO named ``train.de``) is refused, never skipped."""
    return [regular_file(p, what) for p in entries if not p.is_dir()]


def read_text(path: Path | str, what: str, *, not_text: str) -> str:
    """The UTF-8 text of a regular file; ``not_text`` says what to do when it is not UTF-8."""
    path = regular_file(path, what)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise CcrError(f"{what} {path} cannot be read ({e.strerror or e}); check its permissions") from None
    except UnicodeDecodeError:
        raise CcrError(f"{what} {path} is not UTF-8 text; {not_text}") from None


def read_json(path: Path | str, what: str, *, fix: str) -> dict[str, Any]:
    """A JSON object ccr wrote; one damaged by a disk error or a hand edit is one line naming it and ``fix``."""
    try:
        data = json.loads(read_text(path, what, not_text=f"it is damaged: {fix}"))
    except json.JSONDecodeError as e:
        raise CcrError(f"{what} {path} is damaged (not valid JSON: {e.msg} at line {e.lineno}); {fix}") from None
    if not isinstance(data, dict):
        raise CcrError(f"{what} {path} is damaged (not a JSON object); {fix}")
    return data


def output_dir(path: Path | str, what: str) -> Path | None:
    """Make the directory ``path`` (parents too) and try a write in it, or say in one line why not.

    Returns the topmost directory it made (None when ``path`` existed), for ``discard``.
    """
    path = Path(path)
    chain = (path, *path.parents)
    with _unwritable(path, what):
        existing = _nearest(path)
        if not existing.is_dir():
            where = "it is a file" if existing == path else f"{existing} is a file"
            raise CcrError(f"{what} {path} is not a directory ({where}); move it away or give another directory")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    return None if existing == path else chain[chain.index(existing) - 1]


def output_file(path: Path | str, what: str) -> Path:
    """Check that a file can be written at ``path`` before the work that fills it; nothing is made.

    Files are written to a temporary name and renamed, so what counts is that ``path`` is no
    directory and that the directory it goes in (or its nearest existing parent) takes a new file.
    """
    path = Path(path)
    if path.is_dir():
        raise CcrError(f"{what} {path} is a directory; give a file name")
    with _unwritable(path, what):
        existing = _nearest(path.parent)
        if not existing.is_dir():
            raise CcrError(f"{what} {path} cannot be written: {existing} is a file, not a directory; "
                           "move it away or give another path")
        with tempfile.TemporaryFile(dir=existing):
            pass
    return path


def _nearest(path: Path) -> Path:
    """``path`` or its nearest parent that exists."""
    return next(p for p in (path, *path.parents) if p.exists())


@contextmanager
def _unwritable(path: Path, what: str) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise CcrError(f"{what} {path} cannot be written ({e.strerror or e}); make it writable (chmod u+w, "
                       "a read-write mount) or give another path") from None


def discard(made: Path | None) -> None:
    """Remove what ``output_dir`` made when the command failed before writing a file into it."""
    if made is not None and made.is_dir() and not any(p.is_file() for p in made.rglob("*")):
        shutil.rmtree(made, ignore_errors=True)
