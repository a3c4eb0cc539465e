"""The stage runner: every stage's shards, resume, failures, progress and manifest record.

A stage only says what its input rows are (``Plan``), how to build its model (``setup``) and how to
process one batch (``process``). Everything that makes a run safe to kill and rerun lives here, once.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccr.config import fingerprint as make_fingerprint
from ccr.config import semantic_dict, to_dict
from ccr.errors import CcrError
from ccr.pipeline.corpus import Commit, Corpus, package_versions
from ccr.pipeline.progress import Progress


@dataclass
class Failure:
    row_id: str
    reason: str
    table: str | None = None  # defaults to the plan's input table
    source: str | None = None  # "file:line" for ingest


@dataclass
class BatchResult:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # table -> new rows
    failures: list[Failure] = field(default_factory=list)


@dataclass
class Chunk:
    """A unit of commit: its rows are processed in batches and land in one shard per table."""

    key: str
    items: Sequence[Any]
    ids: list[str]


@dataclass
class Plan:
    """What a stage owes, worked out before any model is loaded."""

    input_table: str
    chunks: Callable[[Corpus, DoneState, RunOptions], Iterator[Chunk]]
    total: Callable[[], int | None] = lambda: None
    fingerprint_parts: dict[str, Any] = field(default_factory=dict)  # e.g. resolved model revisions
    models: dict[str, Any] = field(default_factory=dict)  # provenance for the manifest
    id_of: Callable[[Any], str] = lambda item: str(item)


@dataclass(frozen=True)
class Stage:
    """One entry of the stage table (``ccr.pipeline.stages.STAGES``)."""

    name: str
    version: str  # bump when outputs change for the same config
    config: type
    plan: Callable[[Corpus, Any], Plan]
    setup: Callable[[Corpus, Any, Plan], Any]  # builds the model where it runs
    process: Callable[[Sequence[Any], Any, Any], BatchResult]
    help: str = ""


@dataclass
class RunOptions:
    """How to run, never what to compute: none of these enter the fingerprint."""

    batch_size: int = 64
    chunk_rows: int = 1024
    num_shards: int = 1
    shard_index: int = 0
    limit: int | None = None
    force: bool = False
    retry_failed: bool = False
    progress: bool = True
    engine: str = "local"  # local | ray
    ray_concurrency: int = 2  # actors (each holding one model) for --engine ray
    ray_window_rows: int = 16384  # rows handed to one Ray Data pipeline (actors load once per window)

    def validate(self) -> None:
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise CcrError(f"--shard-index must be in 0..{self.num_shards - 1} for --num-shards {self.num_shards}")
        if self.batch_size < 1 or self.chunk_rows < 1:
            raise CcrError("--batch-size must be at least 1")
        if self.limit is not None and self.limit < 0:
            raise CcrError("--limit must be 0 or more")
        if self.engine not in ("local", "ray"):
            raise CcrError(f"--engine {self.engine!r}: use local or ray")


@dataclass
class DoneState:
    """What earlier runs with the same fingerprint committed."""

    done_ids: set[str]
    failed_ids: set[str]
    keys: set[str]

    def skip(self, row_id: str, retry_failed: bool) -> bool:
        return row_id in self.done_ids or (not retry_failed and row_id in self.failed_ids)


@dataclass
class RunSummary:
    stage: str
    fingerprint: str
    rows_in: int = 0
    rows_out: dict[str, int] = field(default_factory=dict)
    rows_failed: int = 0
    skipped_chunks: int = 0
    seconds: float = 0.0
    failure_reasons: dict[str, int] = field(default_factory=dict)


def in_shard(row_id: str, options: RunOptions) -> bool:
    """A row's worker is a pure function of its id, so any scheduler can split a stage."""
    return options.num_shards == 1 or zlib.crc32(row_id.encode("utf-8")) % options.num_shards == options.shard_index


def chunk_key(ids: Iterable[str]) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(i.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def table_chunks(lf_factory: Callable[[], Any], id_col: str) -> Callable[[Corpus, DoneState, RunOptions], Iterator[Chunk]]:
    """Chunks of the rows of a lazy input table that are still owed, in id order.

    Only the ids are held in memory; each chunk's rows are read when it is processed, so memory
    stays flat as the corpus grows.
    """

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        import polars as pl

        lf = lf_factory()
        ids = lf.select(pl.col(id_col)).unique().sort(id_col).collect()[id_col].to_list()
        owed = [i for i in ids if in_shard(i, options) and not done.skip(i, options.retry_failed)]
        if options.limit is not None:
            owed = owed[: options.limit]
        for start in range(0, len(owed), options.chunk_rows):
            part = owed[start:start + options.chunk_rows]
            rows = (lf.filter(pl.col(id_col).is_in(part)).unique(subset=[id_col], keep="first")
                    .sort(id_col).collect().to_dicts())
            yield Chunk(key=chunk_key(part), items=rows, ids=part)

    return chunks


def process_isolated(stage: Stage, items: Sequence[Any], state: Any, cfg: Any, plan: Plan) -> BatchResult:
    """Process a batch; if it raises, retry row by row so one bad row cannot sink its neighbours."""
    try:
        return stage.process(items, state, cfg)
    except CcrError:
        raise
    except Exception as e:  # noqa: BLE001 - any error from a row becomes that row's failure
        if len(items) == 1:
            reason = f"{type(e).__name__}: {e}".strip()
            return BatchResult(failures=[Failure(plan.id_of(items[0]), reason[:2000])])
        merged = BatchResult()
        for item in items:
            part = process_isolated(stage, [item], state, cfg, plan)
            for table, rows in part.rows.items():
                merged.rows.setdefault(table, []).extend(rows)
            merged.failures.extend(part.failures)
        return merged


def _failure_rows(stage: str, fp: str, plan: Plan, failures: list[Failure]) -> list[dict[str, Any]]:
    return [{
        "failure_id": f"{stage}:{fp}:{f.table or plan.input_table}:{f.row_id}",
        "table": f.table or plan.input_table, "row_id": f.row_id, "stage": stage, "fingerprint": fp,
        "reason": f.reason, "source": f.source,
    } for f in failures]


def run_stage(corpus: Corpus, stage: Stage, cfg: Any, options: RunOptions | None = None) -> RunSummary:
    """Run ``stage`` on ``corpus`` until nothing is owed; safe to kill and rerun at any point."""
    options = options or RunOptions()
    options.validate()
    started = time.time()
    plan = stage.plan(corpus, cfg)
    fp = make_fingerprint(stage.name, stage.version, semantic_dict(cfg), plan.fingerprint_parts)
    summary = RunSummary(stage=stage.name, fingerprint=fp)
    with corpus.stage_lock(stage.name, options.shard_index, options.num_shards):
        corpus.remove_orphans(stage.name)
        if options.force:
            corpus.drop_stage(stage.name, fp)
        commits = corpus.commits(stage.name, fp, with_ids=True)
        done = DoneState(
            done_ids={i for c in commits for i in c.done},
            failed_ids={i for c in commits for i in c.failed},
            keys={c.key for c in commits},
        )
        state: Any = None
        status = "complete"
        try:
            with Progress(f"ccr {stage.name}", plan.total(), enabled=options.progress) as bar:
                window: list[Chunk] = []
                for chunk in plan.chunks(corpus, done, options):
                    if chunk.key in done.keys:
                        summary.skipped_chunks += 1
                        continue
                    if options.engine == "ray":
                        window.append(chunk)
                        if sum(len(c.items) for c in window) >= options.ray_window_rows:
                            _run_ray_window(corpus, stage, cfg, plan, fp, window, options, summary, bar)
                            window = []
                        continue
                    if state is None:
                        state = stage.setup(corpus, cfg, plan)
                    results = []
                    for start in range(0, len(chunk.items), options.batch_size):
                        batch = chunk.items[start:start + options.batch_size]
                        results.append(process_isolated(stage, batch, state, cfg, plan))
                        bar.advance(len(batch))
                    _commit_chunk(corpus, stage, plan, fp, chunk, results, options, summary)
                if window:
                    _run_ray_window(corpus, stage, cfg, plan, fp, window, options, summary, bar)
        except BaseException as e:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}: {e}"
            raise
        finally:
            summary.seconds = time.time() - started
            _record(corpus, stage, cfg, plan, fp, options, summary, started, status)
    from ccr.pipeline.card import write_card

    write_card(corpus)
    return summary


def _run_ray_window(corpus: Corpus, stage: Stage, cfg: Any, plan: Plan, fp: str, window: list[Chunk],
                    options: RunOptions, summary: RunSummary, bar: Progress) -> None:
    from ccr.pipeline.ray_engine import process_window

    per_chunk = process_window(stage, corpus.root, cfg, [c.items for c in window], options.batch_size,
                               options.ray_concurrency)
    for chunk, results in zip(window, per_chunk):
        _commit_chunk(corpus, stage, plan, fp, chunk, results, options, summary)
        bar.advance(len(chunk.items))


def _commit_chunk(corpus: Corpus, stage: Stage, plan: Plan, fp: str, chunk: Chunk, results: list[BatchResult],
                  options: RunOptions, summary: RunSummary) -> None:
    """Write one shard per table and then the marker: the chunk is done only once the marker exists."""
    out: dict[str, list[dict[str, Any]]] = {}
    failures: list[Failure] = []
    for result in results:
        for table, rows in result.rows.items():
            out.setdefault(table, []).extend(rows)
        failures.extend(result.failures)
    if failures:
        out.setdefault("failures", []).extend(_failure_rows(stage.name, fp, plan, failures))
    files: dict[str, str] = {}
    counts: dict[str, int] = {}
    for table, rows in out.items():
        if not rows:
            continue
        path = corpus.shard_path(table, stage.name, fp, f"{options.shard_index}of{options.num_shards}-{chunk.key}")
        counts[table] = corpus.write_shard(table, rows, path)
        files[table] = str(path.relative_to(corpus.root))
    failed = sorted({f.row_id for f in failures if (f.table or plan.input_table) == plan.input_table})
    failed_set = set(failed)
    corpus.commit(Commit(stage=stage.name, fingerprint=fp, key=chunk.key, files=files,
                         done=[i for i in chunk.ids if i not in failed_set], failed=failed, rows=counts))
    summary.rows_in += len(chunk.ids)  # rows, also where an item is a group of rows (score)
    summary.rows_failed += len(failures)
    for table, n in counts.items():
        if table != "failures":
            summary.rows_out[table] = summary.rows_out.get(table, 0) + n
    for f in failures:
        reason = f.reason.split(":")[0][:80]
        summary.failure_reasons[reason] = summary.failure_reasons.get(reason, 0) + 1


def _record(corpus: Corpus, stage: Stage, cfg: Any, plan: Plan, fp: str, options: RunOptions,
            summary: RunSummary, started: float, status: str) -> None:
    corpus.append_run({
        "stage": stage.name,
        "stage_version": stage.version,
        "fingerprint": fp,
        "status": status,
        "config": to_dict(cfg),
        "models": plan.models,
        "shard_index": options.shard_index,
        "num_shards": options.num_shards,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(summary.seconds, 3),
        "rows_in": summary.rows_in,
        "rows_out": summary.rows_out,
        "rows_failed": summary.rows_failed,
        "skipped_chunks": summary.skipped_chunks,
        "versions": package_versions(),
    })

