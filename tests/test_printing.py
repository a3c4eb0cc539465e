"""Commands print data as itself and keep a logical line whole (``ccr.printing``).

Paths and reasons that look like rich markup (``[/x]``) used to crash a command after its work was
done, and lines broke at 80 columns whenever output was not a terminal. These run commands' success
paths with such paths, at a width narrower than any line they print.
"""

from __future__ import annotations

import io
import json

from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from ccr.cli import app
from ccr.printing import plain_console, print_table, say

NARROW = {"COLUMNS": "40"}  # output is not a terminal here: rich would wrap every longer line at 40


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env=NARROW)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output.splitlines()


def test_say_prints_markup_and_emoji_codes_as_text_on_one_line():
    console = plain_console()
    console.width = 20
    line = "[bold] :dog: " + "x" * 60
    with console.capture() as got:
        say(console, ("[/x]", "green"), f": {line}")
        console.print(f"[/y] {line}")
    assert got.get() == f"[/x]: {line}\n[/y] {line}\n"


def test_ingest_export_report_and_info_print_markup_paths_whole(tmp_path):
    src = tmp_path / "a rather long directory name for the source" / "[" / "x].jsonl"  # prints .../[/x].jsonl
    src.parent.mkdir(parents=True)
    rows = [{"media_id": "a", "path": "a.png", "text": "a dog"}, {"media_id": "b", "path": "b.png", "text": "a cat"},
            {"media_id": "a", "text": "a dog that is far too long"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    corpus = tmp_path / "corpus"

    first = invoke("ingest", str(corpus), str(src), "--format", "jsonl", "--set", "max_chars=20")
    assert any(line.startswith("ingest config: ") and f"src='{src}'" in line for line in first)
    assert any(line.startswith("ingest: 3 rows in, 2 media, 2 captions, 1 failed, ") for line in first)
    assert "  1 x caption has N characters, over max_chars=20 (raise it with --set max_chars=N)" in first
    again = invoke("ingest", str(corpus), str(src), "--format", "jsonl", "--set", "max_chars=20")
    assert any(line.startswith("ingest: 0 rows in, nothing new") and line.endswith("(1 shards already done)")
               for line in again)

    dest = tmp_path / "[bold]" / "[" / "e]"
    exported = invoke("export", str(corpus), "--out", str(dest))
    assert str(dest / "captions.parquet") in exported and f"export: 3 files in {dest}" in exported

    report = tmp_path / "[" / "r]"
    built = invoke("report", str(corpus), "--out", str(report))
    assert str(report / "index.html") in built
    assert any(line.startswith("report: 2 rows, ") and line.endswith("open it in a browser:") for line in built)

    assert "failures: 1" in invoke("info", str(corpus), "--failures")


def test_an_error_naming_a_markup_path_is_one_whole_line(tmp_path):
    missing = tmp_path / "a rather long directory name" / "[" / "x]"
    result = CliRunner().invoke(app, ["info", str(missing)], env=NARROW)
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith(f"error: no corpus at {missing}")


def test_a_table_into_a_pipe_prints_whole_whatever_the_width():
    table = Table("model", "note")
    table.add_row("Helsinki-NLP/opus-mt-en-de-with-a-long-name", "a note that is long enough to be cut at forty")
    buffer = io.StringIO()
    print_table(Console(file=buffer, width=40), table)
    assert "Helsinki-NLP/opus-mt-en-de-with-a-long-name" in buffer.getvalue()
    assert "a note that is long enough to be cut at forty" in buffer.getvalue()
