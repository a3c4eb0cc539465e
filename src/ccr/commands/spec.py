"""What a stage's command adds to its config fields, and what one call of it carries to its hooks."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccr.commands.build import MODELS, Renamed
from ccr.commands.common import print_config
from ccr.commands.fields import overrides
from ccr.errors import CcrError


@dataclass
class Call:
    """One run of a stage command, as its hooks see it."""

    stage: Any  # ccr.stages.runner.Stage
    corpus: Path
    values: dict[str, Any]  # config fields as typed; None: not given
    extras: dict[str, Any]  # options that are no config field: ``Stage.arguments`` and the spec's extras
    config: Path | None
    sets: list[str] | None
    options: Any  # ccr.stages.runner.RunOptions
    models: str = "real"
    cfg: Any = None  # the resolved config, once the run printed it

    parse: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)  # Spec.parse

    def overrides(self) -> dict[str, Any]:
        """Flag layer: ``Stage.smoke`` for ``--models random`` or the toy aliases for ``--models toy``,
        then what the user typed."""
        if self.models not in MODELS:
            raise CcrError(f"--models {self.models}: use {', '.join(MODELS)}")
        smoke = dict(self.stage.smoke) if self.models == "random" else {}
        if self.models == "toy" and any(f.name == "aliases" for f in dataclasses.fields(self.stage.config)):
            from ccr.models import toy_aliases

            smoke["aliases"] = toy_aliases()
        parsed = {k: self.parse[k](v) for k, v in self.values.items() if k in self.parse and v}
        return smoke | overrides(self.values) | parsed

    def on_config(self, stage: str, cfg: Any) -> None:
        self.cfg = cfg
        print_config(stage, cfg)


def run_in_table(call: Call) -> Any:
    """The usual run: ``ccr.stages.table.run`` with the call's layers."""
    from ccr.stages.table import run

    return run(call.stage.name, call.corpus, config=call.config, sets=call.sets, overrides=call.overrides(),
               options=call.options, arguments={k: call.extras[k] for k in call.stage.arguments},
               on_config=call.on_config)


@dataclass(frozen=True)
class Spec:
    """Where a stage's command differs from the rule (``ccr STAGE CORPUS [config options]``)."""

    group: str | None = None  # a subcommand of ``ccr GROUP`` (noise inject)
    command: str | None = None  # its name there (default: the stage's)
    corpus_help: str = "corpus directory"
    extras: tuple[inspect.Parameter, ...] = ()  # options for the after hook only (score's --plot)
    parse: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)  # field -> parser of its typed text
    run: Callable[[Call], Any] = run_in_table
    after: Callable[[Call, Any], None] | None = None  # prints more than ``Stage.summary`` (noise's next steps)
    renamed: tuple[Renamed, ...] = ()
    # how the arguments were ordered before, given (corpus, values, the extra arguments): the one-line hint
    old_order: Callable[[Path, dict[str, Any], list[str]], str] | None = None
