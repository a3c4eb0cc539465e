"""``--engine ray``: the same batch function on Ray Data, with an actor pool that keeps the model loaded.

Only the batch work moves to Ray: the driver still plans chunks, commits shards and records
failures, so resume, locks and the manifest behave exactly as with the local engine. Each actor
builds the stage's state once (``setup`` runs where the model lives, never pickled).

Actors may run on other machines: they open the corpus by its absolute path, so the corpus and its
media must sit on storage every node mounts at the same path. Each actor reserves an equal share
of a node's CPUs and a media stage decodes in that share, not in a pool sized to the whole node
(several actors on one node would otherwise each start one worker per core).

``ordered_map`` is the other half: work whose results the driver must take in order, a few at a
time (ingest's source pieces, checked against every entry before them).
"""

from __future__ import annotations

import math
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ccr.errors import CcrError

READY_SECONDS = 120  # how long a reader actor may take to start before the run goes on without it
PREFETCH_BATCHES = 4  # batches one actor call gets where the stage prefetches its media


class _StageActor:
    """Holds one stage state; Ray calls it with one batch, or a few where the stage prefetches."""

    def __init__(self, stage: Any, corpus_dir: str, cfg: Any, process: Callable[..., Any]):
        from ccr.corpus.corpus import Corpus

        self.stage, self.cfg, self.process = stage, sized_to_actor(cfg), process
        corpus = Corpus.open(Path(corpus_dir))
        self.plan = self.stage.plan(corpus, self.cfg)
        self.state = self.stage.setup(corpus, self.cfg, self.plan)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        results = self.process(self.stage, [pickle.loads(blob) for blob in batch["items"]], self.state, self.cfg,
                               self.plan)
        return {"result": [pickle.dumps(r) for r in results]}


def _absolute_paths(stage: Any, cfg: Any) -> Any:
    """Paths the user gave relative to the driver's directory (``--media-root media``), made absolute:
    an actor runs in a directory of Ray's, on whichever node it was placed."""
    given = {k: getattr(cfg, k) for k in stage.path_options if getattr(cfg, k)}
    return replace(cfg, **{k: str(Path(v).resolve()) for k, v in given.items()})


def sized_to_actor(cfg: Any) -> Any:
    """A media stage's default decode workers (``None`` = the machine's cores) become this actor's CPUs
    less the one its own process uses to run the model, with the same cap: the node's other cores
    belong to other actors."""
    import ray

    from ccr.stages.media_pool import MAX_AUTO_WORKERS

    if "workers" not in {f.name for f in fields(cfg)} or cfg.workers is not None:
        return cfg
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    return replace(cfg, workers=min(max(0, math.floor(cpus) - 1), MAX_AUTO_WORKERS))


def actor_shape(nodes: Sequence[tuple[float, float]], concurrency: int | None) -> tuple[int, int, float]:
    """(actors, CPUs each, GPUs each) for nodes given as (CPUs, GPUs).

    ``concurrency`` actors, or by default one per GPU (one per node on a CPU cluster). Every actor
    gets the same share (one model each, the same batches): the most whole CPUs that still let all
    of them fit without a share spanning two nodes, at least one, so actors that cannot fit wait in
    Ray's queue rather than oversubscribing a node; and a whole GPU, or 1/k of one when k actors
    must share each. Ray then tells each actor which GPU is its own, where without a request every
    actor on a node would take its first GPU."""
    gpus = sum(int(g) for _, g in nodes)
    actors = concurrency or gpus or max(1, len(nodes))
    cpus = max([n for n in range(1, int(max((c for c, _ in nodes), default=1)) + 1)
                if sum(int(c // n) for c, _ in nodes) >= actors], default=1)
    return actors, cpus, 1 / math.ceil(actors / gpus) if gpus else 0.0


def _nodes() -> list[tuple[float, float]]:
    import ray

    return [(n["Resources"]["CPU"], n["Resources"].get("GPU", 0)) for n in ray.nodes()
            if n["Alive"] and n["Resources"].get("CPU", 0) > 0]


def init(num_cpus: int | None = None) -> None:
    """Join a running cluster (RAY_ADDRESS) or start a local one, once per process."""
    try:
        import ray
    except ImportError:
        raise CcrError("--engine ray needs Ray: pip install 'ccr[ray]' (on every node)") from None
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)


def process_window(stage: Any, corpus_dir: Path, cfg: Any, chunks: Sequence[Sequence[Any]], batch_size: int,
                   concurrency: int | None, process: Callable[..., Any]) -> Iterator[list[Any]]:
    """Run the batches of several chunks on one actor pool; the BatchResults of each chunk, in order,
    as soon as its last batch is back, so the driver commits a chunk while the actors work on the next.

    ``concurrency`` actors (``None``: one per GPU, or per node), each reserving what ``actor_shape`` gives.

    ``process(stage, batches, state, cfg, plan)`` is the runner's, handed in so this engine never
    imports the runner that calls it: one result per batch. A stage that prefetches gets
    ``PREFETCH_BATCHES`` batches per call, so its actor decodes the next while the model works."""
    init()
    import ray.data

    actors, cpus, gpus = actor_shape(_nodes(), concurrency)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    records = [{"items": pickle.dumps(list(items[start:start + batch_size]))}
               for items in chunks for start in range(0, len(items), batch_size)]
    ds = ray.data.from_items(records, override_num_blocks=len(records))
    out = ds.map_batches(
        _StageActor,
        fn_constructor_kwargs={"stage": stage, "corpus_dir": str(Path(corpus_dir).resolve()),
                               "cfg": _absolute_paths(stage, cfg), "process": process},
        batch_size=PREFETCH_BATCHES if stage.prefetch is not None else 1,
        concurrency=actors,
        num_cpus=cpus,
        num_gpus=gpus,
        batch_format="numpy",
    )
    rows = iter(out.iter_rows())
    for items in chunks:
        yield [pickle.loads(next(rows)["result"]) for _ in range(0, len(items), batch_size)]


class _Caller:
    """A Ray actor that calls the function it is handed; a pool of them is ``ordered_map``'s."""

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


def ordered_map(fn: Callable[..., Any], items: Iterable[Any], concurrency: int | None, *args: Any) -> Iterator[Any]:
    """``fn(item, *args)`` for each item, on ``concurrency`` Ray actors (default: one per node, each
    with an equal share of its CPUs; never a GPU), in the order of ``items``.

    Items go to the actors in turn, at most two to each at a time (one in work, one waiting), so a
    driver that reads slowly holds a bounded number of results in the cluster, and one that stops
    early (``--limit``) ends the pool. Plain Ray actors rather than a Ray Data pipeline: the driver
    takes every result in order, as it comes, and may stop at any point. A ``CcrError`` raised on
    an actor is raised here as itself, one line."""
    init()
    import ray

    nodes = [(c, 0.0) for c, _ in _nodes()]
    actors, cpus, _ = actor_shape(nodes, concurrency)
    actors = min(actors, max(1, sum(int(c // cpus) for c, _ in nodes)))  # more could never start
    make = ray.remote(num_cpus=cpus, scheduling_strategy="SPREAD")(_Caller)
    pool = [make.remote() for _ in range(actors)]
    pending: deque[Any] = deque()
    try:
        pool = _started(pool, cpus)
        actors = len(pool)
        for i, item in enumerate(items):
            if len(pending) == 2 * actors:
                yield _result(pending.popleft())
            pending.append(pool[i % actors].call.remote(fn, item, *args))
        while pending:
            yield _result(pending.popleft())
    finally:
        for actor in pool:
            ray.kill(actor)


def _started(pool: list[Any], cpus: int) -> list[Any]:
    """The actors of ``pool`` that started within ``READY_SECONDS`` (the others are killed): items are
    dealt to actors in turn and taken back in order, so one sent to an actor that never starts (its
    CPUs held by other jobs) would stall the run for ever."""
    import ray

    ready_refs = {actor.__ray_ready__.remote(): actor for actor in pool}
    ready, _ = ray.wait(list(ready_refs), num_returns=len(pool), timeout=READY_SECONDS)
    started = [ready_refs[r] for r in ready]
    for ref in set(ready_refs) - set(ready):
        ray.kill(ready_refs[ref])
    if not started:
        raise CcrError(f"no Ray actor with {cpus} CPU(s) started within {READY_SECONDS} s: the cluster has no free "
                       "CPUs; free some, or lower --ray-actors")
    return started


def _result(ref: Any) -> Any:
    import ray
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as err:
        if isinstance(err.cause, CcrError):
            raise err.cause from None
        raise
