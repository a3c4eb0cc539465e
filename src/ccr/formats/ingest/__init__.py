"""Ingest readers: one parser per source format, all yielding the records of ``records.py``.

The registry is what the ingest stage and the CLI read, so adding a format is one entry here. The
reader modules import only the standard library at module level (pyarrow is imported by the parquet
reader when it runs), so importing this package stays cheap for ``ccr --help``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ccr.errors import CcrError
from ccr.formats.ingest import coco, generic, grounding, multi30k, nrccr, vatex
from ccr.formats.ingest.records import IngestOptions, Record

Reader = Callable[[Path, IngestOptions], Iterator[Record]]

READERS: dict[str, Reader] = {
    "coco": coco.read,
    "karpathy": coco.read_karpathy,
    "multi30k": multi30k.read,
    "vatex": vatex.read,
    "qvhighlights": grounding.read,
    "charades": grounding.read_charades,
    "tacos": grounding.read,
    "nrccr": nrccr.read,
    "jsonl": generic.read_jsonl,
    "csv": generic.read_csv,
    "parquet": generic.read_parquet,
}


# Formats that read a directory as well as a single file; the others read exactly one regular file.
DIRECTORY_FORMATS = frozenset({"multi30k", "nrccr"})


def formats() -> list[str]:
    return sorted(READERS)


def reader(name: str) -> Reader:
    """Looks a format up with an error that lists the choices, for the CLI's --format."""
    try:
        return READERS[name]
    except KeyError:
        raise CcrError(f"unknown ingest format {name!r}: choose one of {', '.join(formats())}") from None
