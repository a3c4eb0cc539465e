"""What a kind of run owns, so that the loop and ``ccr evaluate`` never ask which method they run.

A method names its task (``Method.task``); the task builds what the loop trains on
(``prepare``: configs, corpus, data, validation sets, ``run.json``), computes the validation figures
the loop selects checkpoints by (``validate``), and scores a trained run for ``ccr evaluate``
(``evaluate``). Retrieval ranks a gallery for each query; grounding finds moments in a video.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ccr.errors import CcrError
from ccr.train.eval.protocol import SUMR_DIRECTIONS, SumR

if TYPE_CHECKING:
    from ccr.train.model.methods.base import Method
    from ccr.train.run.checkpoint import RunDir
    from ccr.train.run.setup import Prepared

Metrics = dict[str, dict[str, float]]  # validation set or language -> metric -> value


@dataclass(frozen=True)
class EvalRequest:
    """``ccr evaluate``'s options, checked before the run is read; a task refuses those it has no use for."""

    split: str = "test"
    langs: list[str] | None = None
    checkpoint: str = "best"
    corpus: Path | None = None
    batch_size: int | None = None
    device: str = "auto"
    mt_model: str | None = None  # the model of MT queries (grounding) or of their xx->en MT (translate-test)
    translate_test_weight: float | None = None  # retrieval: the xx->en MT queries' share of the fused score
    gallery: str | None = None  # retrieval: captioned or split; none = the run's setting
    sumr: SumR = "both"  # retrieval: the directions SumR adds
    queries: str | None = None  # grounding: the query rows of a non-English language (human, mt or auto)
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        weight = self.translate_test_weight
        if weight is not None and not 0.0 <= weight <= 1.0:
            raise CcrError(f"--translate-test-weight {weight}: the xx->en MT queries' weight must lie in [0, 1]")
        if self.sumr not in SUMR_DIRECTIONS:
            raise CcrError(f"--sumr {self.sumr!r}: use both (t2v + v2t recalls) or t2v (text-to-video only)")


class Task(Protocol):
    name: str

    def prepare(self, corpus_dir: Path | str, run: RunDir, method: str, method_cls: type[Method], *,
                config: Path | None, sets: list[str] | None, overrides: dict[str, Any] | None, fresh: bool,
                log: Callable[[str], None]) -> Prepared:
        """Everything one training process needs before its first step, fresh or resumed; writes ``run.json``."""
        ...

    def validate(self, prep: Prepared, model: Method) -> Metrics:
        """The validation metrics (main process only); each set's dict holds ``select_metric``."""
        ...

    def evaluate(self, run_dir: Path | str, request: EvalRequest) -> Metrics:
        """Score a trained run on ``request.split``; writes ``eval/{split}.{label}.json`` and ``eval/{split}.md``."""
        ...
