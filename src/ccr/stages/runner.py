"""The stage runner: every stage's shards, resume, failures, progress and manifest record.

A stage only says what its input rows are (``Plan``), how to build its model (``setup``) and how to
process one batch (``process``). Everything that makes a run safe to kill and rerun lives here, once.
"""

from __future__ import annotations

import hashlib
import heapq
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccr.config import fingerprint as make_fingerprint
from ccr.config import semantic_dict, to_dict
from ccr.corpus import runs
from ccr.corpus.corpus import Commit, Corpus, package_versions
from ccr.corpus.info import reason_kind
from ccr.errors import CcrError
from ccr.stages import checks
from ccr.stages.interrupt import Signals
from ccr.stages.progress import Progress


@dataclass
class Failure:
    row_id: str
    reason: str
    table: str | None = None  # defaults to the plan's input table
    source: str | None = None  # "file:line" for ingest


@dataclass
class BatchResult:
    rows: dict[str, list[Any]] = field(default_factory=dict)  # table -> new rows (dicts, or polars frames)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class Chunk:
    """A unit of commit: its rows are processed in batches and land in one shard per table."""

    key: str
    items: Sequence[Any]
    ids: Sequence[str]  # a list, or a polars Series of strings


@dataclass
class Plan:
    """What a stage owes, worked out before any model is loaded."""

    input_table: str
    chunks: Callable[[Corpus, DoneState, RunOptions], Iterator[Chunk]]
    total: Callable[[], int | None] = lambda: None
    fingerprint_parts: dict[str, Any] = field(default_factory=dict)  # e.g. resolved model revisions
    models: dict[str, Any] = field(default_factory=dict)  # provenance for the manifest
    id_of: Callable[[Any], str] = lambda item: str(item)
    done_by_key: bool = False  # its chunks are known done by their keys alone (ingest's entry ranges): the
    # ids a commit marks done are never read back (at 2M lines, 0.7 s and 330 MB of Python strings)


# Options of the runner (``RunOptions``) a stage can offer on its command line.
RUNNER_OPTIONS = ("num_shards", "shard_index", "limit", "force", "retry_failed", "engine", "ray_concurrency")


@dataclass(frozen=True)
class Stage:
    """One entry of the stage table (``ccr.stages.table.STAGES``)."""

    name: str
    version: str  # bump when outputs change for the same config
    config: type
    plan: Callable[[Corpus, Any], Plan]
    setup: Callable[[Corpus, Any, Plan], Any]  # builds the model where it runs
    process: Callable[[Sequence[Any], Any, Any], BatchResult]
    help: str = ""
    # command lines for its --help, each runnable as written on the output of `ccr demo` (a test runs them)
    examples: tuple[str, ...] = ()
    # refuses an invalid config with one line before anything is planned (beam_size=0, ...)
    check: Callable[[Any], None] | None = None
    # What the CLI, recipes and the demo need to know, said once here rather than in each of them.
    batch_size: int = 64  # rows per batch when none is given
    batch_help: str = "rows per batch"
    runner: tuple[str, ...] = RUNNER_OPTIONS  # the runner options the stage supports
    limit_help: str | None = None  # what --limit counts, where a stage's rows are not ids
    needs: frozenset[str] = frozenset()  # corpus data keys it reads (DESIGN.md "Data flow")
    provides: Mapping[str, str] = field(default_factory=dict)  # data key -> what it is, for messages
    smoke: Mapping[str, Any] = field(default_factory=dict)  # options that swap in ccr.testing's random stand-ins
    path_options: tuple[str, ...] = ()  # options naming source files (a recipe resolves them; a changed file redoes the step)
    required: tuple[str, ...] = ()  # options that have no default
    # How the stage gets the corpus it writes, where that is not opening the one it is pointed at:
    # ingest creates it only once its checks pass, noise copies it into a new directory. Called
    # with that directory, the resolved config and the values of ``arguments``.
    open: Callable[[Path, Any, Mapping[str, Any]], Corpus] | None = None
    # options that are not config fields but go to ``open`` (name -> help): ingest's media_root;
    # ``out`` names a new corpus the stage writes (a recipe step reads ``from`` one and writes ``corpus``)
    arguments: Mapping[str, str] = field(default_factory=dict)
    # the figures of a finished run worth printing after its summary line (score: statistics per language)
    summary: Callable[[Path, Any], str] | None = None
    # called with a batch the runner will hand to ``process`` next (and with the current one, first),
    # so a stage can start reading its media while the model runs; ``process`` must not rely on it
    prefetch: Callable[[Sequence[Any], Any, Any], None] | None = None
    # Where ``--engine ray`` moves the reading of a stage's source rather than its batches (ingest:
    # parsing is the work, and the checks of each entry need every entry before it): its plan reads
    # on Ray and its batches run on the driver. Called with the config before a corpus is made, it
    # refuses one it cannot read so.
    reads_on_ray: Callable[[Any], None] | None = None


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
    ray_concurrency: int | None = None  # actors (each holding one model) for --engine ray; None = one per GPU, else node
    ray_window_rows: int = 16384  # rows out on the run's Ray actors at a time (taken from the plan, not yet committed)

    def validate(self) -> None:
        if self.num_shards < 1:
            raise CcrError(f"--num-shards must be at least 1 (got {self.num_shards}); 1 runs unsharded")
        if not 0 <= self.shard_index < self.num_shards:
            raise CcrError(f"--shard-index must be in 0..{self.num_shards - 1} for --num-shards {self.num_shards}")
        if self.batch_size < 1 or self.chunk_rows < 1:
            raise CcrError("--batch-size must be at least 1")
        if self.limit is not None and self.limit < 0:
            raise CcrError(f"--limit {self.limit}: give 0 or more rows")
        if self.engine not in ("local", "ray"):
            raise CcrError(f"--engine {self.engine!r}: use local or ray")
        if self.ray_concurrency is not None and self.ray_concurrency < 1:
            raise CcrError(f"--ray-actors {self.ray_concurrency}: give 1 or more actors")


@dataclass
class DoneState:
    """What earlier runs with the same fingerprint committed, and so what this run owes.

    This is the one place where ``--limit``, sharding and resume meet. A stage first hands
    ``limit_to`` (or ``owed_rows`` / ``owed_groups``, which call it) its whole plan, every row id,
    before anything is removed: ``--limit N`` keeps the first N ids of the whole plan in id order,
    so rerunning the same command finishes those N and then owes nothing, and the shards of a
    limited run union to the unsharded run with the same limit. A grouped stage's limit rounds up
    to whole groups.
    """

    done_ids: set[str]
    failed_ids: set[str]
    keys: set[str]
    options: RunOptions = field(default_factory=RunOptions)
    on_owed: Callable[[int], None] = lambda n: None  # how many items this run owes (the progress total)
    limited: set[str] | None = None  # the first --limit ids of the whole plan, once ``limit_to`` saw it

    def skip(self, row_id: str, retry_failed: bool) -> bool:
        return row_id in self.done_ids or (not retry_failed and row_id in self.failed_ids)

    def limit_to(self, ids: Iterable[str]) -> None:
        """Take every row id of the whole plan (any order), once, before asking ``owes``."""
        if self.options.limit is not None:
            self.limited = set(heapq.nsmallest(self.options.limit, ids))

    def owes(self, row_id: str) -> bool:
        """Within ``--limit``, in this worker's shard, and not done."""
        if self.options.limit is not None and self.limited is None:
            raise RuntimeError("a stage asked what it owes under --limit before handing its plan to limit_to")
        return ((self.limited is None or row_id in self.limited) and in_shard(row_id, self.options)
                and not self.skip(row_id, self.options.retry_failed))

    def count_owed(self, ids: Iterable[str]) -> int:
        """How many of ``ids`` this run owes; the progress bar's total (for stages that stream their rows)."""
        n = sum(1 for i in ids if self.owes(i))
        self.on_owed(n)
        return n

    def owed_rows(self, ids: Sequence[str]) -> list[str]:
        """The ids of the whole plan (all of them) that this run owes, in their order."""
        self.limit_to(ids)
        owed = [i for i in ids if self.owes(i)]
        self.on_owed(len(owed))
        return owed

    def owed_groups(self, groups: Sequence[Sequence[str]]) -> list[Sequence[str]]:
        """The groups of the whole plan this run owes: a group is owed whole if any row of it is.

        A group belongs to the shard of its first id; under ``--limit`` it counts when any of its
        rows is among the plan's first N ids.
        """
        self.limit_to(i for g in groups for i in g)
        retry = self.options.retry_failed
        owed = [g for g in groups if g and (self.limited is None or not self.limited.isdisjoint(g))
                and in_shard(g[0], self.options) and not all(self.skip(i, retry) for i in g)]
        self.on_owed(len(owed))
        return owed


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
    """Chunks of the rows of a lazy input table that this run owes, in id order.

    Only the ids are held in memory; each chunk's rows are read when it is processed, so memory
    stays flat as the corpus grows.
    """

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        import polars as pl

        lf = lf_factory()
        ids = lf.select(pl.col(id_col)).unique().sort(id_col).collect()[id_col].to_list()
        owed = done.owed_rows(ids)
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


def process_batches(stage: Stage, batches: Sequence[Sequence[Any]], state: Any, cfg: Any, plan: Plan,
                    done: Callable[[int], None] = lambda rows: None) -> list[BatchResult]:
    """Each batch through ``process_isolated``, the next one's reading started (``Stage.prefetch``)
    before this one is processed, so its media decode while the model works; ``done`` counts rows."""
    results = []
    for i, batch in enumerate(batches):
        for upcoming in batches[i:i + 2] if stage.prefetch is not None else ():
            stage.prefetch(upcoming, state, cfg)
        results.append(process_isolated(stage, batch, state, cfg, plan))
        done(len(batch))
    return results


def _failure_rows(stage: str, fp: str, plan: Plan, failures: list[Failure]) -> list[dict[str, Any]]:
    return [{
        "failure_id": f"{stage}:{fp}:{f.table or plan.input_table}:{f.row_id}",
        "table": f.table or plan.input_table, "row_id": f.row_id, "stage": stage, "fingerprint": fp,
        "reason": f.reason, "source": f.source,
    } for f in failures]


def run_stage(corpus: Corpus, stage: Stage, cfg: Any, options: RunOptions | None = None) -> RunSummary:
    """Run ``stage`` on ``corpus`` until nothing is owed; safe to kill and rerun at any point.

    SIGINT and SIGTERM stop it between commits (``Interrupted``); its manifest record is written
    when it starts and completed when it ends, so even a SIGKILLed run leaves one.
    """
    options = options or RunOptions()
    options.validate()
    checks.finite(cfg)
    check_config(stage, cfg, options)
    started = time.time()
    plan = stage.plan(corpus, cfg)
    fp = make_fingerprint(stage.name, stage.version, semantic_dict(cfg), plan.fingerprint_parts)
    summary = RunSummary(stage=stage.name, fingerprint=fp)
    signals = Signals()

    def cleanup() -> None:  # no other worker of this stage is live
        corpus.remove_orphans(stage.name)
        runs.close_dead(corpus, stage.name)
        if options.force:
            corpus.drop_stage(stage.name, fp)

    with signals.installed(), corpus.stage_lock(stage.name, options.shard_index, options.num_shards,
                                                cleanup=cleanup, force=options.force):
        with signals.deferred():
            run_id = runs.start(corpus, _record(stage, cfg, plan, fp, options))
        status = "complete"
        try:
            _run(corpus, stage, cfg, plan, fp, options, summary, run_id, signals)
        except BaseException as e:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed: {type(e).__name__}: {e}"
            raise
        finally:
            summary.seconds = time.time() - started
            with signals.deferred():
                corpus.update_run(run_id, _outcome(summary, status))
    from ccr.corpus.card import write_card
    from ccr.corpus.compact import after_run

    after_run(corpus, stage.name)  # many small commits -> shards sized for reading, once no worker is live
    write_card(corpus)
    return summary


def check_config(stage: Stage, cfg: Any, options: RunOptions) -> None:
    """The stage's checks of a config, and of what its engine must do with it."""
    if stage.check is not None:
        stage.check(cfg)
    if options.engine == "ray" and stage.reads_on_ray is not None:
        stage.reads_on_ray(cfg)


def _run(corpus: Corpus, stage: Stage, cfg: Any, plan: Plan, fp: str, options: RunOptions, summary: RunSummary,
         run_id: str, signals: Signals) -> None:
    commits = corpus.commits(stage.name, fp, with_ids=not plan.done_by_key)
    done = DoneState(
        done_ids={i for c in commits for i in c.done},
        failed_ids={i for c in commits for i in c.failed},
        keys={k for c in commits for k in c.chunk_keys},
        options=options,
    )
    commit = _Committer(corpus, stage, plan, fp, options, summary, run_id, signals)
    state: Any = None
    from ccr.stages.ray_engine import StagePool

    def owed() -> Iterator[Chunk]:
        for chunk in plan.chunks(corpus, done, options):
            if chunk.key in done.keys:
                summary.skipped_chunks += 1
                continue
            yield chunk

    # --engine ray: one pool of actors for the whole run, started by its first chunk; the ``with``
    # kills them however the run ends (error, Ctrl-C, SIGTERM)
    with Progress(f"ccr {stage.name}", plan.total(), enabled=options.progress) as bar, \
            StagePool(stage, corpus.root, cfg, options.ray_concurrency, process_batches) as pool:
        done.on_owed = bar.set_total
        if options.engine == "ray" and stage.reads_on_ray is None:
            # chunks stream to the actors, at most ray_window_rows rows out; each committed as soon as it is back
            for chunk, results in pool.stream(owed(), options.batch_size, options.ray_window_rows):
                commit(chunk, results)
                bar.advance(len(chunk.items))
            return
        for chunk in owed():
            if state is None:
                state = stage.setup(corpus, cfg, plan)
            batches = [chunk.items[s:s + options.batch_size] for s in range(0, len(chunk.items), options.batch_size)]
            commit(chunk, process_batches(stage, batches, state, cfg, plan, bar.advance))


@dataclass
class _Committer:
    """Writes one shard per table and then the marker: the chunk is done only once the marker exists.

    A stop request during a commit waits for it, so an interrupted run keeps every chunk it finished.
    """

    corpus: Corpus
    stage: Stage
    plan: Plan
    fp: str
    options: RunOptions
    summary: RunSummary
    run_id: str
    signals: Signals

    def __call__(self, chunk: Chunk, results: list[BatchResult]) -> None:
        with self.signals.deferred():
            self._commit(chunk, results)

    def _commit(self, chunk: Chunk, results: list[BatchResult]) -> None:
        corpus, stage, plan, fp, summary = self.corpus, self.stage, self.plan, self.fp, self.summary
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
        layout = f"{self.options.shard_index}of{self.options.num_shards}"
        for table, parts in out.items():
            rows = _frame_or_rows(parts)
            if len(rows) == 0:
                continue
            path = corpus.shard_path(table, stage.name, fp, f"{layout}-{chunk.key}")
            counts[table] = corpus.write_shard(table, rows, path)
            files[table] = str(path.relative_to(corpus.root))
        failed = sorted({f.row_id for f in failures if (f.table or plan.input_table) == plan.input_table})
        corpus.commit(Commit(stage=stage.name, fingerprint=fp, key=chunk.key, files=files,
                             done=_without(chunk.ids, failed), failed=failed, rows=counts,
                             run=self.run_id, table=plan.input_table, inputs=len(chunk.ids)))
        summary.rows_in += len(chunk.ids)  # rows, also where an item is a group of rows (score)
        summary.rows_failed += len(failures)
        for table, n in counts.items():
            if table != "failures":
                summary.rows_out[table] = summary.rows_out.get(table, 0) + n
        for f in failures:
            reason = reason_kind(f.reason)
            summary.failure_reasons[reason] = summary.failure_reasons.get(reason, 0) + 1


def _without(ids: Sequence[str], failed: list[str]) -> Sequence[str]:
    """A chunk's ids less the failed ones, kept a polars Series where the stage gave one (ingest's
    millions of line ids never become Python strings)."""
    if not failed:
        return ids
    if hasattr(ids, "is_in"):
        return ids.filter(~ids.is_in(failed))  # type: ignore[attr-defined]
    dropped = set(failed)
    return [i for i in ids if i not in dropped]


def _frame_or_rows(rows: list[Any]) -> Any:
    """A stage may hand a table's rows over as polars frames (ingest's vectorised path): then one frame."""
    if not rows or isinstance(rows[0], dict):
        return rows
    import polars as pl

    return pl.concat(rows, how="diagonal_relaxed")


def _record(stage: Stage, cfg: Any, plan: Plan, fp: str, options: RunOptions) -> dict[str, Any]:
    """What a run's manifest record says from its start."""
    return {
        "stage": stage.name,
        "stage_version": stage.version,
        "fingerprint": fp,
        "config": to_dict(cfg),
        "models": plan.models,
        "shard_index": options.shard_index,
        "num_shards": options.num_shards,
        "limit": options.limit,
        "versions": package_versions(),
    }


def _outcome(summary: RunSummary, status: str) -> dict[str, Any]:
    """What a run's record gains when it ends."""
    return {
        "status": status,
        "ended": runs.now(),
        "seconds": round(summary.seconds, 3),
        "rows_in": summary.rows_in,
        "rows_out": summary.rows_out,
        "rows_failed": summary.rows_failed,
        "skipped_chunks": summary.skipped_chunks,
    }
