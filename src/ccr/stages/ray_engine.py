"""``--engine ray``: the same batch function on a pool of Ray actors that keep the model loaded.

Only the batch work moves to Ray: the driver still plans chunks, commits shards and records
failures, so resume, locks and the manifest behave exactly as with the local engine. One pool
serves a whole run (``StagePool``): each actor builds the stage's state once (``setup`` runs where
the model lives, never pickled) and the driver streams every chunk's batches to the same actors.

Actors may run on other machines: they open the corpus by its absolute path, so the corpus and its
media must sit on storage every node mounts at the same path. Each actor reserves an equal share
of a node's CPUs and a media stage decodes in that share, not in a pool sized to the whole node
(several actors on one node would otherwise each start one worker per core).

``ordered_map`` is the other use of the same pool: work whose results the driver must take in
order, a few at a time (ingest's source pieces, checked against every entry before them).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ccr.errors import CcrError

READY_SECONDS = 120  # how long an actor may take to start before the run goes on without it
PREFETCH_BATCHES = 4  # batches one actor call gets where the stage prefetches its media


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


class _Caller:
    """A Ray actor that calls the function it is handed (``ordered_map``'s)."""

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class _StageActor:
    """Holds one stage's state for a whole run (``StagePool``'s): built by the first batches it gets,
    so that starting the actor never waits on a model load, and a failed ``setup`` is the error of
    the batches that needed it."""

    def __init__(self, stage: Any, corpus_dir: str, cfg: Any, process: Callable[..., Any]):
        self.stage, self.corpus_dir, self.cfg, self.process = stage, corpus_dir, cfg, process
        self.loaded = False

    def run(self, batches: list[list[Any]]) -> list[Any]:
        if not self.loaded:
            from ccr.corpus.corpus import Corpus

            self.cfg = sized_to_actor(self.cfg)
            corpus = Corpus.open(Path(self.corpus_dir))
            self.plan = self.stage.plan(corpus, self.cfg)
            self.state = self.stage.setup(corpus, self.cfg, self.plan)
            self.loaded = True
        return self.process(self.stage, batches, self.state, self.cfg, self.plan)


class _Pool:
    """Actors of one shape, as many as fit on the nodes and started within ``READY_SECONDS``; each call
    goes to the least busy of them, at most ``depth`` waiting on each, and its result comes back in
    the order of the calls."""

    def __init__(self, cls: type, nodes: Sequence[tuple[float, float]], concurrency: int | None, *args: Any,
                 **options: Any):
        import ray

        actors, cpus, gpus = actor_shape(nodes, concurrency)
        fits = sum(min(int(c // cpus), math.floor(g / gpus + 1e-6) if gpus else actors) for c, g in nodes)
        make = ray.remote(num_cpus=cpus, num_gpus=gpus, scheduling_strategy="SPREAD", **options)(cls)
        self.actors = [make.remote(*args) for _ in range(min(actors, max(1, fits)))]  # more could never start
        try:
            self.actors = _started(self.actors, cpus)
        except BaseException:
            self.close()
            raise

    def ordered(self, calls: Iterable[Callable[[Any], Any]], depth: int = 2) -> Iterator[Any]:
        """Each of ``calls`` (actor -> ObjectRef) made on the actor with the fewest unfinished calls,
        once fewer than ``depth`` per actor are not yet taken back; their results, in order. A
        ``CcrError`` raised on an actor is raised here as itself, one line."""
        import ray

        pending: deque[Any] = deque()
        running: dict[Any, int] = {}  # ref of a call not known to be finished -> its actor
        for call in calls:
            if len(pending) == depth * len(self.actors):
                yield _result(pending.popleft())
            if running:
                finished, _ = ray.wait(list(running), num_returns=len(running), timeout=0, fetch_local=False)
                for ref in finished:
                    del running[ref]
            load = _loads(running.values(), len(self.actors))
            actor = load.index(min(load))
            ref = call(self.actors[actor])
            running[ref] = actor
            pending.append(ref)
        while pending:
            yield _result(pending.popleft())

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def _loads(actors: Iterable[int], count: int) -> list[int]:
    """Unfinished calls per actor, from the actor of each (the least busy takes the next call)."""
    load = [0] * count
    for actor in actors:
        load[actor] += 1
    return load


@dataclass
class _Out:
    """A chunk ``StagePool.stream`` has taken: the results of its batches as they come back, and how many
    are still owed."""

    chunk: Any
    results: list[Any]
    owed: int


class StagePool:
    """One pool of stage actors for a whole run: started by its first chunk, each actor loads the
    model once (``setup`` runs where the model lives, never pickled) and every chunk's batches run
    on the same actors. ``close`` (the runner's ``with``) kills them, however the run ends.

    ``concurrency`` actors (``None``: one per GPU, or per node), each reserving what ``actor_shape``
    gives; never more than the nodes hold, and only those started within ``READY_SECONDS``.

    ``process(stage, batches, state, cfg, plan)`` is the runner's, handed in so this engine never
    imports the runner that calls it: one result per batch."""

    def __init__(self, stage: Any, corpus_dir: Path, cfg: Any, concurrency: int | None, process: Callable[..., Any]):
        self.stage, self.corpus_dir, self.cfg, self.concurrency, self.process = (stage, corpus_dir, cfg, concurrency,
                                                                                 process)
        self.pool: _Pool | None = None

    def stream(self, chunks: Iterable[Any], batch_size: int, max_rows: int) -> Iterator[tuple[Any, list[Any]]]:
        """Each of ``chunks`` (anything with ``items``) with the results of its batches, in the order of
        ``chunks``, each as soon as its last batch is back, while later chunks' batches keep the actors
        busy: there is no point where all of them wait for the slowest batch of a group.

        A chunk is taken from ``chunks`` only while fewer than ``max_rows`` rows are out (taken and not
        yet handed back), so the driver holds a bounded number of rows and results however slow one
        batch is. A stage that prefetches gets ``PREFETCH_BATCHES`` batches per call, so its actor
        decodes the next while the model works; any other one batch per call. Each call goes to the
        actor with the fewest unfinished ones, at most two each (one in work, one waiting), so an actor
        never waits on the driver between them. A ``CcrError`` raised on an actor is raised here as
        itself, one line."""
        import ray

        pool = self._pool()
        per_call = PREFETCH_BATCHES if self.stage.prefetch is not None else 1
        source = iter(chunks)
        out: deque[_Out] = deque()  # chunks taken and not yet handed back, in order
        calls: deque[tuple[_Out, int, list[list[Any]]]] = deque()  # (its chunk, its first batch, batches) not sent
        running: dict[Any, tuple[int, _Out, int]] = {}  # ref of a call sent -> (its actor, its chunk, first batch)
        rows, ended = 0, False
        while True:
            while True:  # a call to every actor with room, taking the next chunk when none is waiting
                load = _loads((actor for actor, _, _ in running.values()), len(pool.actors))
                if min(load) >= 2:
                    break
                if not calls:
                    if ended or (out and rows >= max_rows):
                        break
                    chunk = next(source, None)
                    if chunk is None:
                        ended = True
                        break
                    batches = [list(chunk.items[s:s + batch_size]) for s in range(0, len(chunk.items), batch_size)]
                    out.append(entry := _Out(chunk, [None] * len(batches), len(batches)))
                    rows += len(chunk.items)
                    calls.extend((entry, i, batches[i:i + per_call]) for i in range(0, len(batches), per_call))
                    continue
                entry, first, part = calls.popleft()
                actor = load.index(min(load))
                running[pool.actors[actor].run.remote(part)] = (actor, entry, first)
            if running:
                finished, _ = ray.wait(list(running), num_returns=1, fetch_local=False)
                for ref in finished:
                    _, entry, first = running.pop(ref)
                    part = _result(ref)
                    entry.results[first:first + len(part)] = part
                    entry.owed -= len(part)
            elif not out:
                return
            while out and not out[0].owed:
                entry = out.popleft()
                rows -= len(entry.chunk.items)
                yield entry.chunk, entry.results

    def _pool(self) -> _Pool:
        """The run's actors, started by the first call."""
        if self.pool is None:
            init()
            self.pool = _Pool(_StageActor, _nodes(), self.concurrency, self.stage,
                              str(Path(self.corpus_dir).resolve()), _absolute_paths(self.stage, self.cfg),
                              self.process, max_restarts=-1, max_task_retries=3)  # a lost node's actors start again
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def __enter__(self) -> StagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ordered_map(fn: Callable[..., Any], items: Iterable[Any], concurrency: int | None, *args: Any) -> Iterator[Any]:
    """``fn(item, *args)`` for each item, on ``concurrency`` Ray actors (default: one per node, each
    with an equal share of its CPUs; never a GPU), in the order of ``items``.

    At most two items to each actor at a time (one in work, one waiting), so a driver that reads
    slowly holds a bounded number of results in the cluster, and one that stops early (``--limit``)
    ends the pool. Plain Ray actors rather than a Ray Data pipeline: the driver takes every result
    in order, as it comes, and may stop at any point."""
    init()
    pool = _Pool(_Caller, [(c, 0.0) for c, _ in _nodes()], concurrency)
    try:
        yield from pool.ordered(lambda actor, item=item: actor.call.remote(fn, item, *args) for item in items)
    finally:
        pool.close()


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
