"""``ccr export --format hf``: a folder that the Hub and ``datasets.load_dataset(DIR, CONFIG)`` read as is.

The corpus directory itself loads with ``datasets`` too, but as one ``train`` split per table and
without the columns later stages keep in side tables. Here every table is one config whose splits
are the corpus's (``val`` named ``validation``, as the Hub calls it), with every side column joined:
media and captions by their own ``split``, descriptions and slots by their media's, failures as one
``train`` split. Feature sets asked for become configs ``features-NAME`` (``media_id``, ``split``,
``features`` as a ``[T, D]`` list per item, ``meta.json`` beside). Rows stream from the corpus's
lazy scans into sharded Parquet (``hf_shards``), so memory does not grow with the corpus. The card
(``hf_card``) declares the configs and their features and carries the statistics and provenance;
``ccr-manifest.json`` is the corpus manifest, the same provenance for programs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.corpus import atomic
from ccr.corpus.corpus import Corpus
from ccr.corpus.feature_store import FeatureStore
from ccr.corpus.schema import ID_COLUMN
from ccr.errors import CcrError
from ccr.formats.hf_card import render_card
from ccr.formats.hf_shards import ConfigFiles, plain_schema, write_splits

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa

TABLES = ("media", "captions", "descriptions", "slots", "failures")
MANIFEST_COPY = "ccr-manifest.json"
BATCH_ROWS = 50_000  # rows per batch read from a table's scan
PASS_ROWS = 1_000_000  # rows per pass over a table (``_passes``): what its joins hold in memory
FEATURE_BATCH = 1_024  # media items per batch read from a feature store
SPLIT_ORDER = ("train", "validation", "test")  # then the named evaluation sets, by name


def hf_split(split: str) -> str:
    """The Hub's name of a corpus split: ``val`` is ``validation``; ``test_2016_flickr`` stays itself."""
    return "validation" if split == "val" else split


def write_hf(corpus: Corpus, dest: Path, features: list[str], scan: Callable[[str], pl.LazyFrame]) -> list[Path]:
    """Write the export to ``dest``, a new directory or an earlier Hub export (replaced: a recipe step
    redone, an export interrupted); ``scan(table)`` gives media and captions as the user filtered them
    (languages, splits). The files go to a staging directory beside ``dest`` and replace it at the end,
    so an export is never half old, half new, and an interrupted one leaves ``dest`` as it was.
    Returns the files written."""
    import os
    import shutil

    if any(dest.iterdir()) and not is_export(dest):
        raise CcrError(f"export destination {dest} is not empty and holds no Hub export to replace: "
                       "give a new directory as --out")
    staging = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _write_export(corpus, staging, features, scan)
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in dest.rglob("*") if p.is_file())


def is_export(folder: Path) -> bool:
    """Whether ``ccr export --format hf`` wrote ``folder``."""
    return (folder / "README.md").is_file() and (folder / MANIFEST_COPY).is_file()


def _write_export(corpus: Corpus, dest: Path, features: list[str], scan: Callable[[str], pl.LazyFrame]) -> None:
    media = scan("media").select("media_id", "split")
    configs: dict[str, ConfigFiles] = {}
    for table in TABLES:
        if corpus.files(table):
            configs[table] = _write_table(_table_scan(corpus, table, scan, media), dest / table,
                                          key=_pass_key(table), rows=corpus.count(table),
                                          by_split=table != "failures")
    metas = {}
    for name in features:
        store = corpus.features(name)
        configs[f"features-{name}"] = _write_features(store, media, dest / "features" / name)
        metas[name] = store.meta
    configs = {name: _ordered(config) for name, config in configs.items() if config.splits}
    atomic.write_bytes(dest / "README.md", render_card(corpus, dest, configs, metas, scan).encode("utf-8"))
    atomic.write_bytes(dest / MANIFEST_COPY, (corpus.root / "manifest.json").read_bytes())


def _ordered(config: ConfigFiles) -> ConfigFiles:
    """Splits in the order readers expect (train, validation, test, named sets), whatever came first."""
    def rank(split: str) -> tuple[int, str]:
        return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)

    config.splits = dict(sorted(config.splits.items(), key=lambda item: rank(item[0])))
    return config


def _table_scan(corpus: Corpus, table: str, scan: Callable[[str], pl.LazyFrame], media: pl.LazyFrame) -> pl.LazyFrame:
    """A table with its side columns; descriptions and slots gain their media's ``split``."""
    if table in ("media", "captions"):
        return scan(table)
    if table in ("descriptions", "slots"):
        return corpus.scan(table).join(media, on="media_id", how="inner", maintain_order="left")
    return corpus.scan(table)


def _pass_key(table: str) -> str:
    """The column a table's passes are cut by: the one its joins use (descriptions and slots join their media)."""
    return "media_id" if table in ("descriptions", "slots") else ID_COLUMN[table]


def _passes(lf: pl.LazyFrame, key: str, rows: int) -> Iterator[pl.LazyFrame]:
    """``lf`` in passes of about ``PASS_ROWS`` rows, cut by a hash of ``key``.

    A join on ids (side tables, a table's media) holds one side in memory: the scan itself streams
    at a flat few hundred MB, but a join over a whole 6M-row table took 2.2 GB. A filter on the join
    key reaches both sides of the join, so each pass holds only its own share.
    """
    import polars as pl

    n = max(1, -(-rows // PASS_ROWS))
    if n == 1:
        yield lf
        return
    for k in range(n):
        yield lf.filter(pl.col(key).hash(seed=0) % n == k)


def _write_table(lf: pl.LazyFrame, out_dir: Path, *, key: str, rows: int, by_split: bool) -> ConfigFiles:
    import polars as pl

    schema = plain_schema(pl.DataFrame(schema=lf.collect_schema()).to_arrow().schema)

    def parts() -> Iterator[tuple[str, pa.Table]]:
        for share in _passes(lf, key, rows):
            for batch in share.collect_batches(chunk_size=BATCH_ROWS):
                if not by_split:
                    yield "train", batch.to_arrow()
                    continue
                for (split,), part in batch.partition_by("split", as_dict=True).items():
                    yield hf_split(split), part.to_arrow()

    return write_splits(parts(), out_dir, schema)


def _write_features(store: FeatureStore, media: pl.LazyFrame, out_dir: Path) -> ConfigFiles:
    """One row per exported media item the store holds: ``features`` is its ``[T, D]`` array."""
    import numpy as np
    import pyarrow as pa

    meta = store.meta
    dtype, dim = np.dtype(meta["dtype"]), int(meta["dim"])
    schema = pa.schema([("media_id", pa.string()), ("split", pa.string()),
                        ("features", pa.list_(pa.list_(pa.from_numpy_dtype(dtype), dim)))])

    def parts() -> Iterator[tuple[str, pa.Table]]:
        for batch in media.collect_batches(chunk_size=FEATURE_BATCH):
            by_split: dict[str, list[str]] = {}
            for media_id, split in batch.iter_rows():
                if media_id in store:
                    by_split.setdefault(split, []).append(media_id)
            for split, ids in by_split.items():
                yield hf_split(split), _feature_table(ids, split, store.get_many(ids), dtype, dim)

    config = write_splits(parts(), out_dir, schema)
    if not config.splits:
        raise CcrError(f"no {store.name} features for the exported media; run ccr features first")
    atomic.write_json(out_dir / "meta.json", meta)
    return config


def _feature_table(ids: list[str], split: str, arrays: list[Any], dtype: np.dtype, dim: int) -> pa.Table:
    """``[T, D]`` arrays as one list (over T) of fixed-size lists (D) per row, without a Python loop per value."""
    import numpy as np
    import pyarrow as pa

    frames = [np.asarray(a, dtype=dtype).reshape(-1, dim) for a in arrays]
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in frames])]).astype(np.int32)
    rows = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(frames).reshape(-1)), dim)
    return pa.table({"media_id": pa.array(ids, pa.string()), "split": pa.array([split] * len(ids), pa.string()),
                     "features": pa.ListArray.from_arrays(pa.array(offsets), rows)})
