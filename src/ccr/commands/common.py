"""What every command shares: where it prints, how a user mistake ends it, how a stage run is told."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer

from ccr.errors import CcrError
from ccr.printing import plain_console, say

console = plain_console(stderr=True)  # messages and summaries; every string prints as itself (ccr.printing)
out = plain_console()  # what a command produces: paths, tables

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """User mistakes become one red line and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CcrError as e:
            say(console, ("error:", "bold red"), f" {e}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM during a stage run (ccr.stages.interrupt)
            signum = getattr(e, "signum", 2)
            what = "terminated" if signum == 15 else "interrupted"
            say(console, (what, "yellow"),
                ": what was finished is kept (committed shards, checkpoints); run the same command again to resume")
            raise typer.Exit(128 + signum) from None

    return wrapper  # type: ignore[return-value]


EXAMPLES = "Examples (each runs as written where ccr demo wrote ccr-demo/):"


def with_examples(doc: str, lines: Sequence[str]) -> str:
    """A command's help with its example lines, one paragraph each so that help keeps them apart."""
    return "\n\n".join([doc, EXAMPLES, *lines]) if lines else doc


def examples(*lines: str) -> Callable[[F], F]:
    """Add example lines to a hand-written command's help (its docstring); apply it below ``friendly``."""

    def add(fn: F) -> F:
        fn.__doc__ = with_examples(inspect.cleandoc(fn.__doc__ or ""), lines)
        return fn

    return add


def print_config(stage: str, cfg: Any) -> None:
    from ccr.config import to_dict

    items = ", ".join(f"{k}={v!r}" for k, v in to_dict(cfg).items() if v not in (None, {}, [], ""))
    say(console, (f"{stage} config: {items}", "dim"))


def print_summary(summary: Any) -> None:
    outs = ", ".join(f"{n} {t}" for t, n in summary.rows_out.items()) or "nothing new"
    line = f": {summary.rows_in} rows in, {outs}, {summary.rows_failed} failed, {summary.seconds:.1f}s"
    if summary.skipped_chunks:
        line += f" ({summary.skipped_chunks} shards already done)"
    say(console, (summary.stage, "green"), line)
    for reason, n in sorted(summary.failure_reasons.items(), key=lambda kv: -kv[1])[:5]:
        say(console, (f"  {n} x", "yellow"), f" {reason}")
    if summary.rows_failed:
        say(console, "  see them with: ccr info CORPUS --failures")
