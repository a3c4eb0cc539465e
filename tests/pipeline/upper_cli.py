"""``ccr upper``: the test stage behind the real command line (its error handling, runner options
and exit codes), for tests that signal a whole ``ccr`` process.

``UPPER_PAUSE=PATH`` (and ``UPPER_PAUSE_AT=N``) hold the Nth commit before its marker until PATH
exists (``upper_stage.pause_before_marker``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import upper_stage

from ccr.cli import Runner, app, friendly, run_stage_command, runner_options
from ccr.stages import table as stages

stages.STAGES["upper"] = "upper_stage:STAGE"


@app.command()
@friendly
@runner_options(4)
def upper(
    corpus: Annotated[Path, typer.Argument(help="corpus directory")],
    delay: Annotated[float, typer.Option(help="seconds per batch")] = 0.0,
    *,
    runner: Runner,
) -> None:
    runner.options.chunk_rows = 8
    run_stage_command("upper", corpus, runner, {"delay": delay})


if __name__ == "__main__":
    if os.environ.get("UPPER_PAUSE"):
        upper_stage.pause_before_marker(Path(os.environ["UPPER_PAUSE"]), int(os.environ.get("UPPER_PAUSE_AT", "1")))
    app()
