"""``--engine ray``: the same batch function on Ray Data, with an actor pool that keeps the model loaded.

Only the batch work moves to Ray: the driver still plans chunks, commits shards and records
failures, so resume, locks and the manifest behave exactly as with the local engine. Each actor
builds the stage's state once (``setup`` runs where the model lives, never pickled).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class _StageActor:
    """Holds one stage state; Ray calls it once per batch."""

    def __init__(self, stage: Any, corpus_dir: str, cfg: Any, process: Callable[..., Any]):
        from ccr.corpus.corpus import Corpus

        self.stage, self.cfg, self.process = stage, cfg, process
        corpus = Corpus.open(Path(corpus_dir))
        self.plan = self.stage.plan(corpus, self.cfg)
        self.state = self.stage.setup(corpus, self.cfg, self.plan)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        results = [self.process(self.stage, pickle.loads(blob), self.state, self.cfg, self.plan)
                   for blob in batch["items"]]
        return {"result": [pickle.dumps(r) for r in results]}


def init(num_cpus: int | None = None) -> None:
    """Join a running cluster (RAY_ADDRESS) or start a local one, once per process."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)


def process_window(stage: Any, corpus_dir: Path, cfg: Any, chunks: Sequence[Sequence[Any]], batch_size: int,
                   concurrency: int, process: Callable[..., Any]) -> list[list[Any]]:
    """Run the batches of several chunks on one actor pool; BatchResults grouped per chunk, in order.

    ``process(stage, batch, state, cfg, plan)`` is the runner's batch function, handed in so this
    engine never imports the runner that calls it."""
    import ray.data

    init()
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    records, owners = [], []
    for c, items in enumerate(chunks):
        for start in range(0, len(items), batch_size):
            records.append({"items": pickle.dumps(list(items[start:start + batch_size]))})
            owners.append(c)
    ds = ray.data.from_items(records, override_num_blocks=len(records))
    out = ds.map_batches(
        _StageActor,
        fn_constructor_kwargs={"stage": stage, "corpus_dir": str(corpus_dir), "cfg": cfg, "process": process},
        batch_size=1,
        concurrency=concurrency,
        batch_format="numpy",
    )
    grouped: list[list[Any]] = [[] for _ in chunks]
    for owner, row in zip(owners, out.take_all()):
        grouped[owner].append(pickle.loads(row["result"]))
    return grouped
