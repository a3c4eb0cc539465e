"""Printing for the command line: data is never rich markup, and a logical line is never cut.

Paths, ids, model names, languages and failure reasons reach the user's screen in nearly every
command, and any of them may hold ``[/x]``: printed as markup, rich raises ``MarkupError`` (after
the work is done) or swallows what looks like a tag. The consoles made here parse no markup at
all, so a string prints as itself whatever holds it; colour comes only from ``(text, style)``
parts of ``say``. They also soft-wrap, so a summary line stays one line when output goes to a
pipe or a log file, where rich would otherwise break it at 80 columns (mid-path, mid-reason);
``print_table`` gives tables the same treatment.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.text import Text

Part = str | tuple[str, str]  # literal text, or (literal text, rich style)


def plain_console(*, stderr: bool = False) -> Console:
    """A console that prints strings literally (no markup, emoji codes or highlighting), unwrapped."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True)


def say(console: Console, *parts: Part) -> None:
    """Print one logical line from literal ``parts``; a ``(text, style)`` part is coloured, never parsed."""
    console.print(Text.assemble(*parts), highlight=False, soft_wrap=True)


def print_table(console: Console, renderable: RenderableType) -> None:
    """A table fits a terminal; into a pipe or a file it prints whole, at its natural width, since
    nothing there can reflow it (rich would squeeze it into 80 columns and cut ids and model names)."""
    if console.is_terminal:
        console.print(renderable)
        return
    natural = Measurement.get(console, console.options.update(max_width=1 << 16), renderable).maximum
    wide = Console(file=console.file, width=max(console.width, natural), markup=False, emoji=False, highlight=False)
    wide.print(renderable)
