"""``ccr --help`` lists commands in the order a corpus goes through them, not the order they were written."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from ccr.stages.table import names as stage_names

# After the corpus stages (the stage table's order): what uses a corpus, then the tools around it.
AFTER_STAGES = ("train", "evaluate", "export", "push", "report", "info", "compact", "models", "pipeline", "demo")


class PipelineOrder(TyperGroup):
    def list_commands(self, ctx: typer.Context) -> list[str]:
        """The stage table's commands first, in its order, then ``AFTER_STAGES``; anything else last."""
        order = [*stage_names(), *AFTER_STAGES]
        return sorted(super().list_commands(ctx), key=lambda n: order.index(n) if n in order else len(order))
