"""Row counts per group (split x language x origin ...) kept in commit markers, so ``ccr info``
sums a few numbers per commit instead of reading every shard of a million-row table.

A marker's counts are taken from the shard files it commits, when it commits them; a marker
written before markers carried counts (or with other group keys) is recounted from its shard,
so the sum always equals a recount of the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

# The groups ``ccr info`` and the dataset card show, per table.
GROUPS: dict[str, tuple[str, ...]] = {
    "captions": ("split", "lang", "origin", "model"),
    "media": ("split", "modality"),
}


def of_shard(path: Path, keys: Iterable[str]) -> dict[str, Any]:
    """``{"keys": [...], "rows": [[value, ..., n], ...]}`` of one shard; a key it lacks counts as missing."""
    import polars as pl

    return of_frame(pl.scan_parquet(path, glob=False), keys)  # never a glob: a corpus may live at c[1]


def of_frame(frame: pl.LazyFrame | pl.DataFrame, keys: Iterable[str]) -> dict[str, Any]:
    """``of_shard`` of the rows a shard is written from (a commit counts them without reading them back)."""
    import polars as pl

    keys = list(keys)
    present = set(frame.collect_schema())
    grouped = (frame.lazy().select([pl.col(k) if k in present else pl.lit(None, dtype=pl.String).alias(k)
                                    for k in keys])
               .group_by(keys).agg(pl.len().alias("__n")).collect())
    return {"keys": keys, "rows": [list(r) for r in grouped.iter_rows()]}


def for_files(files: Mapping[str, str], root: Path, written: Mapping[Path, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The counts a marker stores for the files it commits (only the tables of ``GROUPS``): those
    this process counted as it wrote them (``written``), else read from the file."""
    return {table: written.get(root / rel) or of_shard(root / rel, GROUPS[table])
            for table, rel in files.items() if table in GROUPS}


def summed(shards: Iterable[tuple[Mapping[str, Any], Path]], table: str, keys: list[str], name: str) -> pl.DataFrame:
    """Rows of ``table`` per value of ``keys`` over ``shards`` (a marker's counts and its shard file), sorted.

    Stored counts answer any subset of their keys; counts a marker lacks are recounted from its
    shard, one shard at a time, so memory stays that of one shard however many there are.
    """
    import polars as pl

    rows: list[list[Any]] = []
    for stored, path in shards:
        entry = stored.get(table)
        if not entry or not set(keys) <= set(entry.get("keys", ())):
            entry = of_shard(path, keys)
        at = [entry["keys"].index(k) for k in keys]
        rows.extend([*(r[i] for i in at), r[-1]] for r in entry["rows"])
    schema = {**{k: pl.String for k in keys}, name: pl.Int64}
    df = pl.DataFrame(rows, schema=schema, orient="row")
    return df.group_by(keys).agg(pl.col(name).sum()).sort(keys, nulls_last=False)
