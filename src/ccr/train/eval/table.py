"""``eval/{split}.md``: one run's metrics per language as a table, whatever its task.

A method that follows a proposal, not released code, carries the label beside its numbers, so a
reader of the table alone never takes them for a reproduction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ccr.corpus import atomic
from ccr.train.eval.metrics import format_table
from ccr.train.model.methods.base import proposal_note

if TYPE_CHECKING:
    from ccr.train.model.methods.base import Method
    from ccr.train.run.checkpoint import RunDir


def write_table(run: RunDir, split: str, results: dict[str, dict[str, float]], method_cls: type[Method],
                log: Callable[[str], None]) -> None:
    table = format_table(results)
    note = proposal_note(method_cls)
    if note:
        log(note)
        table += f"\n{note}\n"
    atomic.write_bytes(run.root / "eval" / f"{split}.md", table.encode("utf-8"))
