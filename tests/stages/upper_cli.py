"""``ccr upper``: the test stage behind the real command line (its error handling, runner options
and exit codes), for tests that signal a whole ``ccr`` process.

``UPPER_PAUSE=PATH`` (and ``UPPER_PAUSE_AT=N``) hold the Nth commit before its marker until PATH
exists (``upper_stage.pause_before_marker``).
"""

from __future__ import annotations

import os
from pathlib import Path

import upper_stage

from ccr.cli import app
from ccr.commands.spec import Call, Spec, run_in_table
from ccr.commands.stages import SPECS, add_stage_commands
from ccr.stages import table as stages


def small_chunks(call: Call):
    """Commits of 8 rows, so a test can stop a run between two of them."""
    call.options.chunk_rows = 8
    return run_in_table(call)


stages.STAGES["upper"] = "upper_stage:STAGE"
SPECS["upper"] = Spec(run=small_chunks)
add_stage_commands(app, {}, ["upper"])  # ccr upper CORPUS --delay S --suffix X ... from its Stage and config


if __name__ == "__main__":
    if os.environ.get("UPPER_PAUSE"):
        upper_stage.pause_before_marker(Path(os.environ["UPPER_PAUSE"]), int(os.environ.get("UPPER_PAUSE_AT", "1")))
    app()
