import json
import subprocess
import sys

from typer.testing import CliRunner

from ccr.cli import app

HEAVY = ("torch", "transformers", "datasets", "ray", "polars", "ctranslate2", "sentence_transformers")


def test_importing_the_cli_loads_no_heavy_library():
    code = "import sys, json, ccr.cli; print(json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY,)
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert loaded == []


def test_help_lists_the_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "export", "info", "models", "demo"):
        assert command in result.output


def test_user_errors_are_one_line_without_traceback(tmp_path):
    result = CliRunner().invoke(app, ["info", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "no corpus at" in result.output and "ccr ingest" in result.output


def test_unknown_ingest_format_names_the_choices(tmp_path):
    src = tmp_path / "x.json"
    src.write_text("{}")
    result = CliRunner().invoke(app, ["ingest", "flickr", str(src), str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "unknown ingest format 'flickr'" in result.output and "coco" in result.output


def test_models_table_shows_defaults_and_tiny_names():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "Helsinki-NLP/opus-mt-en-de" in result.output
    assert "tiny/marian-en-de" in result.output


def test_help_says_what_split_and_limit_take():
    """Named test sets can be scored; ingest's --limit counts source entries, not ids in a plan."""
    evaluate = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "300"})
    assert "split to score: test, val or a named test_*/val_* split such as test_2017_flickr" in evaluate.output
    ingest = CliRunner().invoke(app, ["ingest", "--help"], env={"COLUMNS": "300"})
    assert "only the first N source entries (lines, or JSON entries) in file order" in ingest.output
    assert "the split of every entry, over what the source or its file name says" in ingest.output
