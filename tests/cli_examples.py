"""The example lines of every command's ``--help`` (``ccr.commands.common.EXAMPLES``), read from the help
as a user sees it (imported by name: no __init__)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from typer.testing import CliRunner

from ccr.cli import app
from ccr.commands.common import EXAMPLES

WIDE = {"COLUMNS": "2000", "TERMINAL_WIDTH": "2000"}  # one help paragraph per line


def commands() -> list[tuple[str, ...]]:
    """Every leaf command, as the words after ``ccr`` (``("noise", "eval")``)."""
    found: list[tuple[str, ...]] = []

    def walk(group, path: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, (*path, name))
            else:
                found.append((*path, name))

    walk(typer.main.get_command(app), ())
    return found


def examples(command: tuple[str, ...]) -> list[str]:
    """The ``ccr ...`` lines under the examples heading of ``ccr COMMAND --help``."""
    result = CliRunner().invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [line.strip(" │") for line in result.output.splitlines()]
    heading = EXAMPLES.split("(")[0]
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return []
    return [line for line in lines[start + 1:] if line.startswith("ccr ")]


@contextmanager
def working_dir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run(line: str):
    """``ccr ARGS`` as written, in the current directory."""
    return CliRunner().invoke(app, shlex.split(line)[1:], env=WIDE)
