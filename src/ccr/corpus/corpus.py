"""The corpus directory: the one contract between stages (DESIGN.md).

Tables are append-only Parquet shards. A shard becomes part of the corpus only when its commit
marker (``.state/commits/STAGE/FINGERPRINT/KEY.json``) exists: data files are renamed into place
first and the marker is written last, so a process killed in between leaves an orphan file that
readers never see and the stage's next run deletes (once no worker of that stage is live: see
``locks``). Markers also say which input rows a stage has done, which is how every stage resumes,
and how many rows their shards hold per split x language x origin, which is how ``ccr info``
counts without reading shards. A compaction (``compact``) replaces many markers by one that
supersedes them; readers ignore superseded markers.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr import __version__, paths
from ccr.corpus import atomic, counts, feature_store, locks
from ccr.corpus.schema import (
    BASE_COLUMNS,
    ID_COLUMN,
    SCHEMA_VERSION,
    base_table,
    column_types,
)
from ccr.errors import CcrError

if TYPE_CHECKING:
    import datasets
    import polars as pl

MANIFEST = "manifest.json"
STATE = ".state"
# A marker covering more ids keeps them in a Parquet file beside it (``Commit.ids``), so that
# reading the index of a million-row corpus (``ccr info``) never parses them.
INLINE_IDS = 4_096


@dataclass
class Commit:
    """One committed shard: which files it added and which input rows it covered."""

    stage: str
    fingerprint: str
    key: str
    files: dict[str, str]
    done: Sequence[str] = field(default_factory=list)  # a list, or a polars Series a run committed
    failed: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    committed_at: float = 0.0
    run: str = ""  # the manifest record of the run that committed it (absent before runs had ids)
    table: str = ""  # the input table ``done`` and ``failed`` name rows of (absent in older markers)
    inputs: int = 0  # input rows it covered, so a killed run's record can be completed from markers
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)  # rows per group (``counts``), for ccr info
    supersedes: list[str] = field(default_factory=list)  # keys of the markers a compaction merged into this one
    chunks: list[str] = field(default_factory=list)  # a compaction's original chunk keys (``chunk_keys``)
    ids: str = ""  # the file beside the marker holding ``done`` and ``failed`` when there are many

    @property
    def chunk_keys(self) -> list[str]:
        """The keys of the chunks whose rows this commit holds: itself, or all that a compaction merged."""
        return self.chunks or [self.key]


class Corpus:
    """A corpus directory opened for reading and for committing shards."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._commits: list[Commit] | None = None
        self._counted: dict[Path, dict[str, Any]] = {}  # group counts of shards written, until committed

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path | str, *, create: bool = False) -> Corpus:
        """Open ``root``; with ``create`` make it if missing. A newer schema is refused."""
        root = Path(root)
        manifest = root / MANIFEST
        if root.exists() and not root.is_dir():
            raise CcrError(f"{root} is a file, not a corpus directory; pass a directory")
        if not manifest.is_file():
            if not create:
                if root.exists() and any(root.iterdir()):
                    raise CcrError(f"{root} is not a ccr corpus (no {MANIFEST}); pass a corpus directory")
                raise CcrError(f"no corpus at {root}; create one with: ccr ingest {root} SRC --format FORMAT")
            with atomic.os_errors(root, "create the corpus directory"):
                root.mkdir(parents=True, exist_ok=True)
            atomic.write_json(manifest, {
                "schema_version": SCHEMA_VERSION,
                "created_with": f"ccr {__version__}",
                "created_at": _now(),
                "media_root": None,
                "runs": [],
            })
        corpus = cls(root)
        version = corpus.manifest().get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise CcrError(
                f"corpus {root} has schema version {version}, newer than this ccr understands "
                f"({SCHEMA_VERSION}); upgrade ccr (pip install -U ccr)"
            )
        return corpus

    def manifest(self) -> dict[str, Any]:
        return paths.read_json(self.root / MANIFEST, "manifest", fix="restore it from a backup")

    @property
    def media_root(self) -> Path | None:
        value = self.manifest().get("media_root")
        return Path(value) if value else None

    def resolve_media(self, path: str | None, media_root: Path | None = None) -> Path | None:
        """Where a media row's relative path lives on this machine (``--media-root`` wins)."""
        if not path:
            return None
        root = media_root or self.media_root
        p = Path(path)
        return p if p.is_absolute() or root is None else root / p

    def update_manifest(self, **fields: Any) -> None:
        with self._manifest_lock():
            data = self.manifest()
            data.update(fields)
            atomic.write_json(self.root / MANIFEST, data)

    def append_run(self, record: dict[str, Any]) -> None:
        """Add one stage-run record; a short flock keeps concurrent shard workers from losing one."""
        self.update_runs(lambda runs: runs.append(record))

    def update_run(self, run_id: str, fields: dict[str, Any]) -> None:
        """Complete the record a run made when it started (``id`` names it)."""
        def update(runs: list[dict[str, Any]]) -> None:
            for run in runs:
                if run.get("id") == run_id:
                    run.update(fields)

        self.update_runs(update)

    def update_runs(self, change: Callable[[list[dict[str, Any]]], None]) -> None:
        with self._manifest_lock():
            data = self.manifest()
            change(data.setdefault("runs", []))
            atomic.write_json(self.root / MANIFEST, data)

    def runs(self) -> list[dict[str, Any]]:
        return list(self.manifest().get("runs", []))

    def _manifest_lock(self) -> Any:
        return locks.exclusive(self.root / STATE / "manifest.lock")

    @property
    def lock_dir(self) -> Path:
        return self.root / STATE / "locks"

    def stage_lock(self, stage: str, shard_index: int, num_shards: int, *,
                   cleanup: Callable[[], None] | None = None, force: bool = False) -> Any:
        """The locks one run of ``stage`` holds (``locks.stage_lease``)."""
        return locks.stage_lease(self.lock_dir, stage, shard_index, num_shards, cleanup=cleanup, force=force)

    # ---- commits -------------------------------------------------------------------------

    def _commit_dir(self, stage: str, fingerprint: str) -> Path:
        return self.root / STATE / "commits" / stage / fingerprint

    def commits(self, stage: str | None = None, fingerprint: str | None = None, *,
                with_ids: bool = False) -> list[Commit]:
        """Committed shards in commit order (oldest first).

        A marker lists every row id its shard covered, a million-row corpus's markers millions of
        them, so only ``with_ids`` loads them (the runner's resume state, for one stage and
        fingerprint); otherwise ``done`` and ``failed`` are empty and the index stays small.
        """
        if with_ids:
            return self._read_markers(stage or "*", fingerprint or "*", with_ids=True)
        if self._commits is None:
            self._commits = self._read_markers("*", "*", with_ids=False)
        return [c for c in self._commits
                if (stage is None or c.stage == stage) and (fingerprint is None or c.fingerprint == fingerprint)]

    def _read_markers(self, stage: str, fingerprint: str, *, with_ids: bool,
                      superseded: bool = False) -> list[Commit]:
        """The markers in the commit directories ``stage``/``fingerprint`` match (globs).

        A marker that a compaction's marker supersedes is left out (or, with ``superseded``, only
        those are returned): a compaction killed before it deleted them leaves both on disk.
        """
        found = []
        for path in (self.root / STATE / "commits").glob(f"{stage}/{fingerprint}/*.json"):
            if path.name.startswith(atomic.TMP_PREFIX):
                continue  # a marker whose write was killed before its rename: not a commit
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if not with_ids:
                    record |= {"done": [], "failed": []}
                elif record.get("ids"):
                    record |= _read_ids(path.parent / record["ids"])
                found.append(Commit(**record))
            except (json.JSONDecodeError, TypeError, OSError) as e:
                raise CcrError(f"commit marker {path} is damaged ({e}); delete it and rerun that stage") from None
        replaced = {(c.stage, c.fingerprint, key) for c in found for key in c.supersedes}
        found = [c for c in found if ((c.stage, c.fingerprint, c.key) in replaced) == superseded]
        found.sort(key=lambda c: (c.committed_at, c.stage, c.key))
        return found

    def chunk_keys(self, table: str | None = None) -> list[tuple[str, str, str]]:
        """(stage, fingerprint, chunk key) of every chunk committed (that wrote ``table``, if given),
        sorted: what a trained run records as its corpus, which a compaction leaves as it was."""
        return sorted((c.stage, c.fingerprint, k) for c in self.commits() if table is None or table in c.files
                      for k in c.chunk_keys)

    def shard_path(self, table: str, stage: str, fingerprint: str, key: str) -> Path:
        ext = "arrow" if table.startswith("features/") else "parquet"
        return self.root / table / f"{stage}-{fingerprint}-{key}.{ext}"

    def write_shard(self, table: str, rows: list[dict[str, Any]] | pl.DataFrame, path: Path) -> int:
        """Write one shard file atomically (not yet visible: ``commit`` makes it so)."""
        if table.startswith("features/"):
            return feature_store.write_shard(path, rows)  # type: ignore[arg-type]
        df = _frame(table, rows)
        atomic.write_with(path, lambda tmp: df.write_parquet(tmp, compression="zstd"))
        if table in counts.GROUPS:
            self._counted[path] = counts.of_frame(df, counts.GROUPS[table])
        return df.height

    def commit(self, commit: Commit, *, committed_at: float | None = None) -> None:
        """Make a shard's files visible and record the rows it covered; the marker is written last.

        The marker counts the rows of its files per group (``counts.GROUPS``) for ``ccr info``.
        ``committed_at`` places a compaction's marker where the last commit it merged stood.
        """
        commit.committed_at = time.time() if committed_at is None else committed_at
        commit.counts = counts.for_files(commit.files, self.root, self._counted)
        for rel in commit.files.values():
            self._counted.pop(self.root / rel, None)
        path = self._commit_dir(commit.stage, commit.fingerprint) / f"{commit.key}.json"
        record = dict(commit.__dict__)
        if len(commit.done) + len(commit.failed) > INLINE_IDS:
            record |= {"done": [], "failed": [], "ids": _write_ids(path.with_suffix(".ids.parquet"), commit)}
        else:
            record |= {"done": list(commit.done), "failed": list(commit.failed)}
        atomic.write_json(path, record)
        self._commits = None

    def remove_marker(self, commit: Commit) -> None:
        """Delete a commit's marker, then its files (a kill in between leaves orphans, never a marker
        naming missing files)."""
        marker = self._commit_dir(commit.stage, commit.fingerprint) / f"{commit.key}.json"
        marker.unlink(missing_ok=True)
        if commit.ids:
            (marker.parent / commit.ids).unlink(missing_ok=True)
        for rel in commit.files.values():
            (self.root / rel).unlink(missing_ok=True)
        self._commits = None

    def drop_stage(self, stage: str, fingerprint: str | None = None) -> int:
        """Remove a stage's commits and their files (``--force``); returns how many shards."""
        gone = self.commits(stage, fingerprint)
        for c in gone:
            self.remove_marker(c)
        return len(gone)

    def remove_orphans(self, stage: str) -> int:
        """Delete what killed runs and compactions of ``stage`` left: markers a compaction
        superseded, shards no marker names, its temporaries and its unfinished markers; returns
        how many shards.

        Only ``stage``'s own files, and only while no worker of it is live (the caller holds its
        exclusive stage lock): a live worker's shard is written before its marker.
        """
        for old in self._read_markers(stage, "*", with_ids=False, superseded=True):
            self.remove_marker(old)
        self._commits = None
        referenced = {self.root / rel for c in self.commits(stage) for rel in c.files.values()}
        own = re.compile(rf"{re.escape(stage)}-[0-9A-Za-z]+-.+")
        n = 0
        for directory in [*self.root.glob("*/"), *self.root.glob("features/*/")]:
            if directory.name.startswith(".") or not directory.is_dir():
                continue
            atomic.remove_temporaries(directory, own.fullmatch)
            for path in directory.iterdir():
                if own.fullmatch(path.name) and path.is_file() and path not in referenced:
                    path.unlink()
                    n += 1
        named = {c.ids for c in self.commits(stage) if c.ids}
        for directory in (self.root / STATE / "commits" / stage).glob("*/"):
            atomic.remove_temporaries(directory, lambda name: name.endswith((".json", ".ids.parquet")))
            for ids in directory.glob("*.ids.parquet"):  # written before a marker that never came
                if ids.name not in named:
                    ids.unlink()
        return n

    # ---- reading -------------------------------------------------------------------------

    def files(self, table: str) -> list[Path]:
        """Committed shard files of one table (or side table), in commit order."""
        return [self.root / c.files[table] for c in self.commits() if table in c.files]

    def side_tables(self, table: str) -> list[str]:
        names = {t for c in self.commits() for t in c.files if t.startswith(f"{table}.")}
        return sorted(names)

    def scan(self, table: str, *, with_side_tables: bool = True) -> pl.LazyFrame:
        """A lazy view of a table; side tables (``captions.STAGE``) are joined on the id."""
        import polars as pl

        files = self.files(table)
        if not files:
            return _empty(table).lazy()
        frames = [scan_shard(p) for p in files]
        lf = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        id_col = ID_COLUMN.get(base_table(table))
        if "." in table and id_col:
            lf = lf.unique(subset=[id_col], keep="last", maintain_order=True)
        if with_side_tables and "." not in table and id_col:
            for side in self.side_tables(table):
                lf = join_side(lf, self.scan(side), id_col)
        return lf

    def table(self, table: str, *, with_side_tables: bool = True) -> pl.DataFrame:
        return self.scan(table, with_side_tables=with_side_tables).collect()

    def dataset(self, table: str) -> datasets.Dataset:
        """A table as a Hugging Face dataset (side tables joined)."""
        import datasets

        return datasets.Dataset.from_polars(self.table(table))

    def ids(self, table: str) -> set[str]:
        id_col = ID_COLUMN[base_table(table)]
        if not self.files(table):
            return set()
        return set(self.scan(table, with_side_tables=False).select(id_col).collect().to_series().to_list())

    def count(self, table: str) -> int:
        if not self.files(table):
            return 0
        return int(self.scan(table, with_side_tables=False).select(pl_len()).collect().item())

    def failures(self, *, outstanding: bool = True) -> pl.DataFrame:
        """Failure rows; by default only those no later run of their stage has since done.

        A row that failed and was then committed as done by a later run of the same stage, with
        ``--retry-failed`` or with other settings (any fingerprint), is no longer outstanding.
        """
        import polars as pl

        df = self.table("failures")
        if not outstanding or df.height == 0:
            return df
        df = self._drop_ingested(df)
        done = self._superseded(df.select("stage", "row_id").unique())
        if done.height == 0:
            return df
        keys = ["stage", "row_id", "table"]
        typed = done.filter(pl.col("table") != "")
        legacy = done.filter(pl.col("table") == "").drop("table")  # markers that did not name their table
        return df.join(typed, on=keys, how="anti").join(legacy, on=keys[:2], how="anti")

    def _drop_ingested(self, df: pl.DataFrame) -> pl.DataFrame:
        """Without ingest failures of media or captions whose id a LATER commit put in their table.

        Ingest's done ids are source entries, not row ids, so a media item refused once (a split an
        earlier version did not know, say) and accepted by a later run is only seen as fixed here.
        A row that landed before its failure (a conflicting second description) does not fix it.
        """
        import polars as pl

        mine = (pl.col("stage") == "ingest") & pl.col("table").is_in(["media", "captions"])
        if df.filter(mine).height == 0:
            return df
        when = {str(self.root / rel): c.committed_at for c in self.commits() for rel in c.files.values()}
        failed = self._first_commit("failures", "failure_id", df.filter(mine)["failure_id"], when)
        fixed = []
        for table in ("media", "captions"):
            ids = df.filter(mine & (pl.col("table") == table))["row_id"]
            landed = self._first_commit(table, ID_COLUMN[table], ids, when).rename({"id": "row_id", "at": "landed"})
            fixed.append(landed.with_columns(pl.lit(table).alias("table")))
        later = (df.filter(mine).select("failure_id", "table", "row_id")
                 .join(failed.rename({"id": "failure_id"}), on="failure_id")
                 .join(pl.concat(fixed), on=["table", "row_id"])
                 .filter(pl.col("landed") > pl.col("at")))
        return df.join(later.select("failure_id"), on="failure_id", how="anti")

    def _first_commit(self, table: str, id_col: str, ids: pl.Series, when: dict[str, float]) -> pl.DataFrame:
        """``id``, ``at``: when each of ``ids`` first landed in ``table`` (its shard's commit time)."""
        import polars as pl

        files = self.files(table)
        if not files or ids.len() == 0:
            return pl.DataFrame(schema={"id": pl.String, "at": pl.Float64})
        found = (pl.scan_parquet(files, include_file_paths="file", missing_columns="insert",
                                 extra_columns="ignore", glob=False)
                 .select(pl.col(id_col).alias("id"), "file")
                 .filter(pl.col("id").is_in(ids.implode())).collect())
        at = found["file"].replace_strict(when, default=None, return_dtype=pl.Float64)
        return found.with_columns(at.alias("at")).group_by("id").agg(pl.col("at").min())

    def _superseded(self, failed: pl.DataFrame) -> pl.DataFrame:
        """Of the failed (stage, row_id) pairs, those whose latest commit, over every fingerprint,
        lists them as done, with the table that commit's ids name."""
        import polars as pl

        latest: dict[tuple[str, str, str], bool] = {}
        for stage, ids in failed.group_by("stage").agg("row_id").iter_rows():
            wanted = set(ids)
            for c in self.commits(stage, with_ids=True):  # oldest first: later commits win
                for i in wanted.intersection(c.failed):
                    latest[(stage, i, c.table)] = False
                for i in wanted.intersection(c.done):
                    latest[(stage, i, c.table)] = True
        rows = [key for key, done in latest.items() if done]
        return pl.DataFrame(rows, schema=["stage", "row_id", "table"], orient="row")

    def feature_names(self) -> list[str]:
        return sorted({t.split("/", 1)[1] for c in self.commits() for t in c.files if t.startswith("features/")})

    def features(self, name: str) -> feature_store.FeatureStore:
        return feature_store.FeatureStore(self, name)

    def delete(self) -> None:
        shutil.rmtree(self.root)


def _write_ids(path: Path, commit: Commit) -> str:
    """A marker's done and failed ids as Parquet beside it; returns its name."""
    import polars as pl

    ids = pl.concat([pl.DataFrame({"id": pl.Series(values=commit.done, dtype=pl.String)}).with_columns(done=True),
                     pl.DataFrame({"id": pl.Series(values=commit.failed, dtype=pl.String)}).with_columns(done=False)])
    atomic.write_with(path, lambda tmp: ids.write_parquet(tmp))
    return path.name


def _read_ids(path: Path) -> dict[str, list[str]]:
    import polars as pl

    ids = pl.read_parquet(path, glob=False)
    return {"done": ids.filter(pl.col("done"))["id"].to_list(), "failed": ids.filter(~pl.col("done"))["id"].to_list()}


def scan_shard(path: Path) -> pl.LazyFrame:
    """One shard file, lazily. Its path is never a glob pattern: polars expands ``[`` and ``*`` by
    default, so a corpus at ``c[1]`` would read as no files at all."""
    import polars as pl

    return pl.scan_parquet(path, glob=False)


def join_side(frame: Any, side: Any, id_col: str) -> Any:
    """``side``'s columns joined onto ``frame`` (both lazy or both eager) by ``id_col``.

    A column both hold keeps ``frame``'s value where ``side`` has none: a side table overrides
    only the rows it has. ``Corpus.scan`` and the report's partitioned reader both join this way.
    """
    import polars as pl

    present = set(frame.collect_schema().names())
    shared = [c for c in side.collect_schema().names() if c != id_col and c in present]
    out = frame.join(side, on=id_col, how="left", suffix="__side")
    if not shared:
        return out
    return out.with_columns([pl.coalesce(pl.col(f"{c}__side"), pl.col(c)).alias(c) for c in shared]).drop(
        [f"{c}__side" for c in shared])


def pl_len() -> Any:
    import polars as pl

    return pl.len()


def _empty(table: str) -> pl.DataFrame:
    """A table without rows: its base columns, typed."""
    import polars as pl

    types = column_types().get(base_table(table), {})
    return pl.DataFrame(schema={k: types[k] for k in BASE_COLUMNS.get(base_table(table), ())})


def _frame(table: str, rows: list[dict[str, Any]] | pl.DataFrame) -> pl.DataFrame:
    """Rows -> a frame with the declared column types (extra columns keep their own)."""
    import polars as pl

    types = column_types().get(base_table(table), {})
    if isinstance(rows, pl.DataFrame):
        df = rows
    else:
        cols: dict[str, list[Any]] = {}
        for r in rows:
            for k in r:
                cols.setdefault(k, [])
        data = {k: [r.get(k) for r in rows] for k in cols}
        schema = {k: types[k] for k in cols if k in types}
        df = pl.DataFrame(data, schema_overrides=schema, strict=False) if rows else _empty(table)
    casts = [pl.col(k).cast(types[k]) for k in df.columns if k in types and df.schema[k] != types[k]]
    return df.with_columns(casts) if casts else df


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def package_versions() -> dict[str, str]:
    """Versions of the libraries that shape outputs, for the manifest."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("ccr", "torch", "transformers", "ctranslate2", "datasets", "sentence-transformers", "polars"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    out["python"] = ".".join(map(str, sys.version_info[:3]))
    return out
