"""The feature store: ``features/NAME/`` with one reader for every consumer (DESIGN.md).

Shards are Arrow IPC files (``media_id``, ``t``, raw little-endian ``values``) opened memory-
mapped, so ``get`` touches only the rows asked for and a 100k-video store costs no RAM to open.
``meta.json`` says what made the features (model, revision, dim, dtype, variant), and a store
never mixes two extractors: a stage claims the store (``FeatureStore.claim``) before it writes.

The store reads its shards through the corpus it is given and never imports ``ccr.corpus.corpus``,
so the corpus can hand out stores without an import circle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ccr import paths
from ccr.corpus import atomic
from ccr.errors import CcrError

if TYPE_CHECKING:
    import numpy as np

# What makes two stores' features comparable: a store holding others is refused, never blended.
IDENTITY = ("model", "revision", "dim", "variant")


class Shards(Protocol):
    """What a store needs of its corpus: where it is and which committed shard files a table has."""

    root: Path

    def files(self, table: str) -> list[Path]: ...

    def feature_names(self) -> list[str]: ...


def store_stem(model_key: str) -> str:
    """The stem of a feature store's name: the extractor part of a model key (``ResolvedModel.key``,
    ``{slug of the id's last part}@{revision}``), lower-cased, so the name stays put across revisions."""
    return model_key.partition("@")[0].lower()


def write_shard(path: Path, rows: Sequence[dict[str, Any]]) -> int:
    """Rows ``{"media_id": str, "features": array [T, D] or [D]}`` -> one Arrow IPC shard."""
    import numpy as np
    import pyarrow as pa

    ids, ts, values, dims, dtypes = [], [], [], set(), set()
    for r in rows:
        arr = np.asarray(r["features"])
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise ValueError(f"features of {r['media_id']} have shape {arr.shape}; expected [T, D]")
        ids.append(str(r["media_id"]))
        ts.append(arr.shape[0])
        dims.add(arr.shape[1])
        dtypes.add(arr.dtype.str)
        values.append(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    if len(dims) > 1 or len(dtypes) > 1:
        raise ValueError(f"one shard must hold one dim and dtype, got dims {dims} and dtypes {dtypes}")
    schema = pa.schema([("media_id", pa.string()), ("t", pa.int32()), ("values", pa.large_binary())],
                       metadata={"dim": str(dims.pop() if dims else 0), "dtype": dtypes.pop() if dtypes else "<f2"})
    table = pa.table({"media_id": ids, "t": pa.array(ts, pa.int32()), "values": pa.array(values, pa.large_binary())},
                     schema=schema)

    def _write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    atomic.write_with(path, _write)
    return table.num_rows


def merge_shards(path: Path, sources: Sequence[Path]) -> int:
    """One shard holding the rows of ``sources`` in order (compaction), copied a record batch at a
    time from their memory maps, one source open at a time, so a merge of GBs of features from
    thousands of small shards holds one batch and one file in memory."""
    import pyarrow as pa

    with pa.memory_map(str(sources[0]), "r") as first:
        schema = pa.ipc.open_file(first).schema
    rows = 0

    def _write(tmp: Path) -> None:
        nonlocal rows
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for source in sources:
                with pa.memory_map(str(source), "r") as mapped:
                    reader = pa.ipc.open_file(mapped)
                    if not reader.schema.equals(schema, check_metadata=True):
                        raise CcrError(f"{source} holds features of another dim or dtype than {sources[0]}; a store "
                                       "holds one extractor's: delete the odd shard's commit with ccr features --force")
                    for i in range(reader.num_record_batches):
                        batch = reader.get_batch(i)
                        writer.write_batch(batch)
                        rows += batch.num_rows

    atomic.write_with(path, _write)
    return rows


def write_meta(corpus: Shards, name: str, meta: dict[str, Any]) -> None:
    atomic.write_json(corpus.root / "features" / name / "meta.json", meta)


class FeatureStore:
    """Read-only view of one extractor's features; state = the id -> (shard, row) index."""

    def __init__(self, corpus: Shards, name: str):
        self.corpus, self.name = corpus, name
        self.dir = corpus.root / "features" / name
        self._index: dict[str, tuple[int, int]] | None = None
        self._tables: list[Any] = []

    @property
    def meta(self) -> dict[str, Any]:
        path = self.dir / "meta.json"
        if not path.exists():
            raise CcrError(f"no features named {self.name!r} in {self.corpus.root}; "
                           f"have: {', '.join(self.corpus.feature_names()) or 'none'} (run ccr features)")
        return paths.read_json(path, "feature meta", fix="delete it and run the command that made these features "
                               "again: it writes meta.json anew and keeps the features")

    def claim(self, meta: dict[str, Any], *, fix: str) -> None:
        """Write ``meta.json`` for the features a stage is about to add; ``fix`` says what to do when the
        store already holds features of another extractor (see ``IDENTITY``)."""
        if (self.dir / "meta.json").exists() and len(self):
            old = self.meta
            if any(old.get(k) != meta.get(k) for k in IDENTITY):
                raise CcrError(f"features/{self.name} already holds {old.get('model')}@{old.get('revision')} "
                               f"({old.get('variant')}) features; {fix}")
        write_meta(self.corpus, self.name, meta)

    def _load(self) -> dict[str, tuple[int, int]]:
        if self._index is None:
            import pyarrow as pa

            self._index, self._tables = {}, []
            for shard, path in enumerate(self.corpus.files(f"features/{self.name}")):
                table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
                self._tables.append(table)
                for row, media_id in enumerate(table.column("media_id").to_pylist()):
                    self._index[media_id] = (shard, row)
        return self._index

    def ids(self) -> list[str]:
        return sorted(self._load())

    def __contains__(self, media_id: str) -> bool:
        return media_id in self._load()

    def __len__(self) -> int:
        return len(self._load())

    def get(self, media_id: str) -> np.ndarray:
        """Features of one item as ``[T, D]`` (T = 1 for a pooled image)."""
        import numpy as np

        index = self._load()
        if media_id not in index:
            raise KeyError(f"no {self.name} features for media {media_id!r}")
        shard, row = index[media_id]
        table = self._tables[shard]
        dim = int(table.schema.metadata[b"dim"])
        dtype = np.dtype(table.schema.metadata[b"dtype"].decode())
        t = table.column("t")[row].as_py()
        buf = table.column("values")[row].as_buffer()
        return np.frombuffer(buf, dtype=dtype).reshape(t, dim)

    def get_many(self, media_ids: Iterable[str]) -> list[np.ndarray]:
        return [self.get(m) for m in media_ids]
