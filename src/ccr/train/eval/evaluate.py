"""``ccr evaluate RUN``: score a trained run on one split, the way its method's task scores.

The options are checked first (a bad weight or direction is one line before the run is read);
then the task the run's method names (``ccr.train.tasks``) refuses the options that mean nothing
for it and writes ``eval/{split}.{label}.json`` per language and ``eval/{split}.md``. Each result
records the ``protocol`` it was scored under (``ccr.train.eval.protocol``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ccr.train import tasks
from ccr.train.eval.protocol import SumR
from ccr.train.model.methods import get as get_method
from ccr.train.run.checkpoint import RunDir
from ccr.train.tasks.base import EvalRequest


def evaluate_run(run_dir: Path | str, *, split: str = "test", langs: list[str] | None = None,
                 translate_test_weight: float | None = None, checkpoint: str = "best", corpus: Path | None = None,
                 batch_size: int | None = None, device: str = "auto", queries: str | None = None,
                 gallery: str | None = None, mt_model: str | None = None, sumr: SumR = "both",
                 log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Score ``run_dir`` on ``split`` per language (default: the run's languages).

    Retrieval: native queries, the run's ``gallery`` setting (``captioned`` by default), SumR over
    both directions unless asked; ``translate_test_weight`` in [0, 1] fuses the queries' English MT
    at that weight (NRCCR's image test: 0.5), for any method; ``sumr="t2v"`` makes SumR
    text-to-video only (RIVRL's README). Grounding: ``queries`` (human, mt or auto) picks its query
    rows. ``mt_model`` picks the model of the queries' English translations (translate-test) or of
    grounding's MT queries where there are several.
    """
    request = EvalRequest(split=split, langs=langs, checkpoint=checkpoint, corpus=corpus, batch_size=batch_size,
                          device=device, mt_model=mt_model, translate_test_weight=translate_test_weight,
                          gallery=gallery, sumr=sumr, queries=queries, log=log)
    task = tasks.of(get_method(RunDir(run_dir).info()["method"]))
    return task.evaluate(run_dir, request)
