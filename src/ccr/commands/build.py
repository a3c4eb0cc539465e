"""The parameters every generated command shares and the function typer reads them from.

Typer reads a command's signature, so a generated command is a function whose ``__signature__`` is
assembled here from parts: config fields (``ccr.commands.fields``), ``--config``/``--set``, the runner
options a stage offers, ``--models`` where it has random stand-ins, and hidden old spellings that
end the command with one line naming the new one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ccr.commands.common import friendly
from ccr.errors import CcrError

KW = inspect.Parameter.KEYWORD_ONLY

DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps (default: auto)")]


def param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, KW, default=default, annotation=annotation)


def corpus_param(help_: str = "corpus directory") -> inspect.Parameter:
    return param("corpus", Annotated[Path, typer.Argument(metavar="CORPUS", help=help_, show_default=False)])


def config_params() -> list[inspect.Parameter]:
    return [param("config", Annotated[Path | None, typer.Option("--config", help="TOML file with option overrides")],
                  None),
            param("set_", Annotated[list[str] | None, typer.Option(
                "--set", help="override one option: key=value (repeatable)")], None)]


_RUNNER_HELP = {
    "num_shards": (int, 1, "split the stage into N independent workers"),
    "shard_index": (int, 0, "which worker this is (0..N-1)"),
    "limit": (int | None, None, ("only the first N rows of the whole plan in id order (whole groups where a stage "
                                 "groups rows); rerunning finishes them")),
    "force": (bool, False, "redo the stage from scratch (same config)"),
    "retry_failed": (bool, False, "process rows that failed before again"),
    "engine": (str, "local", "local, or ray (Ray Data actor pool; RAY_ADDRESS joins a cluster)"),
    "ray_concurrency": (int | None, None, "with --engine ray: how many Ray actors (default: one per GPU, else one "
                                          "per node; ingest's readers: one per node)"),
}
_RUNNER_FLAGS = {"ray_concurrency": "--ray-actors"}  # where the flag is not the option's name
RUNNER_PREFIX = "runner__"


def runner_params(stage: Any) -> list[inspect.Parameter]:
    """``--batch-size`` and the runner options ``stage`` offers (``Stage.runner``), its defaults and help."""
    out = [param(RUNNER_PREFIX + "batch_size", Annotated[int, typer.Option("--batch-size", help=stage.batch_help)],
                 stage.batch_size)]
    for name in stage.runner:
        kind, default, help_ = _RUNNER_HELP[name]
        if name == "limit" and stage.limit_help:
            help_ = stage.limit_help
        flag = _RUNNER_FLAGS.get(name, "--" + name.replace("_", "-"))
        out.append(param(RUNNER_PREFIX + name, Annotated[kind, typer.Option(flag, help=help_)], default))
    return out


def run_options(kwargs: dict[str, Any]) -> Any:
    """The runner options a command was given, as the runner's ``RunOptions``."""
    from ccr.stages.runner import RunOptions

    return RunOptions(**{k.removeprefix(RUNNER_PREFIX): kwargs.pop(k) for k in list(kwargs)
                         if k.startswith(RUNNER_PREFIX)})


MODELS = ("real", "toy", "random")


def models_param() -> inspect.Parameter:
    return param("models", Annotated[str, typer.Option(
        "--models", metavar="|".join(MODELS),
        help="real: the configured models; toy: the small models ccr ships, learned on the toy domain; "
             "random: ccr.testing's tiny random stand-ins, for a smoke run (outputs are meaningless)")], "real")


@dataclass(frozen=True)
class Renamed:
    """An option spelt differently before: still parsed (hidden), only to say the new spelling."""

    old: str  # --tiny
    new: str  # --models random
    takes_value: bool = False

    @property
    def param(self) -> str:
        return "renamed__" + self.old.removeprefix("--").replace("-", "_")


def renamed_params(renamed: Iterable[Renamed]) -> list[inspect.Parameter]:
    return [param(r.param, Annotated[str | None, typer.Option(r.old, hidden=True)], None) if r.takes_value
            else param(r.param, Annotated[bool, typer.Option(r.old, hidden=True)], False) for r in renamed]


def refuse_renamed(command: str, renamed: Iterable[Renamed], kwargs: dict[str, Any]) -> None:
    """One line naming the new spelling for the first old one given (exit 2 through ``friendly``)."""
    for r in renamed:
        value = kwargs.pop(r.param)
        if value not in (None, False):
            raise CcrError(f"ccr {command} {r.old} is now {r.new}")


def make_command(params: Sequence[inspect.Parameter], handler: Callable[[dict[str, Any]], None],
                 doc: str) -> Callable[..., None]:
    """A function typer can register: its signature is ``params``; every call hands ``handler`` the
    keyword arguments; user mistakes end as one line (``friendly``)."""

    def command(**kwargs: Any) -> None:
        handler(kwargs)

    command.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]
    command.__doc__ = doc
    return friendly(command)
