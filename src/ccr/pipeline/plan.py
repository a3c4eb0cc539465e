"""What a checked recipe is: its settings and its steps, as ``ccr.pipeline.recipe`` reads them and
``ccr.pipeline.orchestrate`` and the step kinds run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_CORPUS = "corpus"


@dataclass
class PipelineConfig:
    data_root: str = "."  # where the source files are; relative paths in steps start here
    work_dir: str = "work"  # the corpus goes to WORK/corpus, training runs to WORK/runs/STEP_ID
    # random: ccr.testing's tiny random stand-ins and one short epoch, a smoke run that checks files and
    # layout (numbers meaningless); toy: the small models ccr ships, learned on the toy domain (they
    # translate, see and describe toy scenes; elsewhere meaningless); real: the default hub models.
    models: Literal["random", "toy", "real"] = "real"
    tiny: bool = False  # the old spelling of models = "random"
    chunk_rows: int = 1024  # rows per committed shard: smaller loses less work to a kill
    progress: bool = True  # progress bars (plain lines when not on a terminal)


@dataclass
class Step:
    id: str
    stage: str
    options: dict[str, Any]  # the stage's own options, values checked and paths resolved
    batch_size: int | None = None  # rows per batch (never changes outputs)
    pinned: set[str] = field(default_factory=set)  # options given with --set on the command line
    corpus: str = DEFAULT_CORPUS  # the corpus it works on (WORK/NAME), or writes where it has a source
    source: str | None = None  # ``from``: the corpus a stage that writes a new one reads (noise)


@dataclass
class Recipe:
    path: Path
    settings: PipelineConfig
    models: dict[str, str]
    steps: list[Step]
    selected: list[Step]  # what --from/--until leave to run

    @property
    def work_dir(self) -> Path:
        return Path(self.settings.work_dir)

    @property
    def corpus(self) -> Path:
        return self.corpus_dir(DEFAULT_CORPUS)

    def corpus_dir(self, name: str) -> Path:
        return self.work_dir / name

    def run_dir(self, step_id: str) -> Path:
        return self.work_dir / "runs" / step_id
