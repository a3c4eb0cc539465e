"""Every corpus stage's command, made from its ``Stage`` entry and config dataclass.

``ccr STAGE CORPUS [ARGS] [options]``: one option per config field (``ccr.commands.fields``), the
runner options and ``--batch-size`` the stage offers, ``--models random|real`` where it has random
stand-ins (``Stage.smoke``). ``SPECS`` holds the few differences a stage's command has (its own
options, hooks that print what a run made, old spellings); a stage without an entry needs none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ccr.commands import hooks
from ccr.commands.build import (
    Renamed,
    config_params,
    corpus_param,
    make_command,
    models_param,
    param,
    refuse_renamed,
    renamed_params,
    run_options,
    runner_params,
)
from ccr.commands.common import out, print_summary, with_examples
from ccr.commands.fields import FieldOption, collect, field_options
from ccr.commands.spec import Call, Spec
from ccr.config import load_toml, parse_sets
from ccr.errors import CcrError
from ccr.formats.ingest.generic import parse_columns
from ccr.printing import say

SPECS: dict[str, Spec] = {
    "ingest": Spec(corpus_help="corpus directory (created if missing)", parse={"columns": parse_columns},
                   old_order=hooks.corpus_first("ingest")),
    "import-features": Spec(old_order=hooks.corpus_first("import-features")),
    "caption": Spec(renamed=(Renamed("--mllm", "--model", takes_value=True),)),
    "slots": Spec(renamed=(Renamed("--mllm", "--description-model", takes_value=True),
                           Renamed("--prompt", "--description-prompt", takes_value=True))),
    "score": Spec(after=hooks.score_plot, extras=(param("plot", Annotated[Path | None, typer.Option(
        help="also write score histograms to this PNG")], None),)),
    "select": Spec(after=hooks.kept_summary),
    "noise": Spec(group="noise", command="inject", corpus_help="corpus directory (left unchanged)",
                  after=hooks.noise_hints),
}

TINY = Renamed("--tiny", "--models random")


def argument_param(name: str, help_: str) -> inspect.Parameter:
    """An option of ``Stage.arguments``: a path its ``open`` hook takes (ingest's --media-root, noise's --out)."""
    flags = ("--out", "-o") if name == "out" else ("--" + name.replace("_", "-"),)
    return param(name, Annotated[Path | None, typer.Option(*flags, help=help_)], None)


def _check_required(command: str, stage: Any, given: dict[str, Any], specs: list[FieldOption], config: Path | None,
                    sets: list[str] | None) -> None:
    """A required option (``Stage.required``) missing from every layer is one line naming its flag."""
    elsewhere = set(parse_sets(sets)) | set(load_toml(config, stage.name))
    for spec in specs:
        if spec.name in stage.required and given[spec.name] is None and spec.name not in elsewhere:
            raise CcrError(f"ccr {command} needs {spec.flag} (see ccr {command} --help)")


def stage_command(name: str) -> tuple[str | None, str, Callable[..., None], dict[str, Any]]:
    """The command of stage ``name``: its group (or None), its name, the function and click settings."""
    from ccr.stages.table import get

    stage = get(name)
    spec = SPECS.get(name, Spec())
    command = spec.command or name
    shown = f"{spec.group} {command}" if spec.group else command
    fields = field_options(stage.config)
    arguments = [p for s, p in fields if s.positional]
    options = [p for s, p in fields if not s.positional]
    renamed = (*spec.renamed, TINY) if stage.smoke else spec.renamed
    extras = [*(argument_param(n, h) for n, h in stage.arguments.items()), *spec.extras]
    params = [corpus_param(spec.corpus_help), *arguments, *options, *extras,
              *([models_param()] if stage.smoke else []), *config_params(), *runner_params(stage),
              *renamed_params(renamed)]
    if spec.old_order:
        params.insert(0, param("ctx", typer.Context))
    extra_names = [p.name for p in extras]

    def handle(kwargs: dict[str, Any]) -> None:
        ctx = kwargs.pop("ctx", None)
        corpus = kwargs.pop("corpus")
        values = collect([s for s, _ in fields], kwargs)
        if ctx is not None and ctx.args and spec.old_order:
            raise CcrError(spec.old_order(corpus, values, list(ctx.args)))
        refuse_renamed(shown, renamed, kwargs)
        config, sets = kwargs.pop("config"), kwargs.pop("set_")
        _check_required(shown, stage, values, [s for s, _ in fields], config, sets)
        call = Call(stage=stage, corpus=corpus, values=values, extras={k: kwargs.pop(k) for k in extra_names},
                    config=config, sets=sets, options=run_options(kwargs), models=kwargs.pop("models", "real"),
                    parse=spec.parse)
        summary = spec.run(call)
        print_summary(summary)
        if stage.summary:
            say(out, stage.summary(call.corpus, call.cfg))
        if spec.after:
            spec.after(call, summary)

    doc = with_examples(stage.help[:1].upper() + stage.help[1:] + ".", stage.examples)
    settings = {"allow_extra_args": True} if spec.old_order else {}
    return spec.group, command, make_command(params, handle, doc), settings


def add_stage_commands(app: typer.Typer, groups: dict[str, typer.Typer], names: list[str]) -> None:
    """Register the commands of ``names`` (stage table names) on ``app`` or their group's app."""
    for name in names:
        group, command, fn, settings = stage_command(name)
        (groups[group] if group else app).command(command, context_settings=settings)(fn)

