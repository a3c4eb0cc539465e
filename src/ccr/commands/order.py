"""``ccr --help`` lists commands in the order a corpus goes through them, not the order they were written."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

ORDER = ("ingest", "import-features", "translate", "backtranslate", "features", "caption", "slots", "score",
         "select", "train", "evaluate", "noise", "export", "report", "info", "models", "pipeline", "demo")


class PipelineOrder(TyperGroup):
    def list_commands(self, ctx: typer.Context) -> list[str]:
        """Commands of ``ORDER`` first, in its order; any other (a stage added later) after them."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
