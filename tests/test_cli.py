import dataclasses
import functools
import json
import re
import shlex
import subprocess
import sys
import time
import types
import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ccr.cli import app
from ccr.commands.fields import field_options
from ccr.models import mt_languages
from ccr.pipeline import kinds
from ccr.stages.table import get
from ccr.stages.table import names as stage_names

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
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "c"), str(src), "--format", "flickr"])
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


def one_line(result, *says: str) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for text in says:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("args", "says"), [
    (["ingest", "jsonl", "x.jsonl", "C"], ["ccr ingest CORPUS SRC --format FORMAT", "ccr ingest C x.jsonl --format jsonl"]),
    (["import-features", "npz", "feats/", "C", "--name", "z"],
     ["ccr import-features CORPUS SRC --format FORMAT", "ccr import-features C feats/ --format npz"]),
    (["export", "C", "out"], ["ccr export CORPUS --out DIR", "ccr export C --out out"]),
    (["translate", "C", "--lang", "de", "--tiny"], ["ccr translate --tiny is now --models random"]),
    (["backtranslate", "C", "--lang", "de", "--tiny"], ["--tiny is now --models random"]),
    (["features", "C", "--tiny"], ["--tiny is now --models random"]),
    (["score", "C", "--lang", "de", "--tiny"], ["--tiny is now --models random"]),
    (["caption", "C", "--mllm", "llava"], ["ccr caption --mllm is now --model"]),
    (["slots", "C", "--mllm", "llava@x"], ["ccr slots --mllm is now --description-model"]),
    (["slots", "C", "--prompt", "detailed"], ["ccr slots --prompt is now --description-prompt"]),
])
def test_an_old_spelling_is_one_line_naming_the_new_one(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    one_line(CliRunner().invoke(app, args), *says)
    assert not (tmp_path / "C").exists()


def test_a_missing_required_option_is_one_line(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text('{"media_id": "a", "text": "a dog"}\n')
    one_line(CliRunner().invoke(app, ["ingest", str(tmp_path / "C"), str(src)]), "ccr ingest needs --format")
    one_line(CliRunner().invoke(app, ["export", str(tmp_path)]), "ccr export needs --out DIR")


def test_commands_are_listed_in_pipeline_order():
    listed = [line.split()[1] for line in CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1].islower()]
    order = ["ingest", "import-features", "translate", "backtranslate", "features", "caption", "slots", "score",
             "select", "noise", "train", "evaluate", "export", "report", "info", "models", "pipeline", "demo"]
    assert [c for c in listed if c in order] == order


@pytest.mark.parametrize("name", stage_names())
def test_every_config_field_of_a_stage_is_an_option_with_its_help(name):
    """The commands are generated: each field's flag, help and default come from the config dataclass."""
    stage = get(name)
    command = ["noise", "inject"] if name == "noise" else [name]
    output = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "1000"}).output
    for spec, _ in field_options(stage.config):
        shown = spec.name.upper() if spec.positional else spec.flag
        assert shown in output, (name, shown)
    for f in dataclasses.fields(stage.config):
        if f.metadata.get("cli", True):
            assert f.metadata["help"].split(" (")[0] in output, (name, f.name)
    assert "--batch-size" in output and str(stage.batch_size) in output
    assert ("--models" in output) == bool(stage.smoke)


@pytest.mark.parametrize(("command", "options"), [
    (["evaluate"], kinds.EvaluateOptions), (["export"], kinds.ExportOptions), (["report"], kinds.ReportOptions),
    (["info"], kinds.InfoOptions), (["noise", "eval"], kinds.NoiseEvalOptions)], ids=str)
def test_every_option_a_command_shares_with_a_recipe_step_comes_from_the_kind(command, options):
    """evaluate, export, report, info and noise eval read their shared options' flags, help and defaults
    from the recipe step kinds' dataclasses, so a step and the command never disagree."""
    output = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "1000"}).output
    for spec, parameter in field_options(options):
        assert spec.flag in output, (command, spec.flag)
        help_ = typing.get_args(parameter.annotation)[1].help
        assert help_ in " ".join(output.split()), (command, help_)  # with its choices and default
    assert sum(f.metadata.get("cli", True) for f in dataclasses.fields(options)) == len(field_options(options))


def test_the_commands_of_recipe_step_kinds_hand_the_library_what_they_did(monkeypatch):
    """Short flags, repeated and comma-separated values, defaults: the calls are the hand-written commands'."""
    import ccr.corpus.info
    import ccr.filter.noise_eval
    import ccr.formats.export

    calls = {}

    def record(name, returns):
        def fn(*args, **kwargs):
            calls[name] = (args, kwargs)
            return returns
        return fn

    monkeypatch.setattr(ccr.formats.export, "export", record("export", []))
    monkeypatch.setattr(ccr.corpus.info, "show", record("info", None))
    monkeypatch.setattr(ccr.filter.noise_eval, "evaluate", record("noise eval", types.SimpleNamespace(
        table="", table_path="t", json_path="j", plot_path="p")))
    invoke = functools.partial(CliRunner().invoke, app, catch_exceptions=False)
    assert invoke(["export", "C", "-o", "D", "-f", "jsonl", "--features", "a", "--features", "b", "--lang", "de,fr"]
                  ).exit_code == 0
    assert calls["export"] == ((Path("C"), Path("D")), dict(fmt="jsonl", collection=None, features=["a", "b"],
                                                            langs="de,fr", splits=None))
    assert invoke(["export", "C", "--out", "D"]).exit_code == 0
    assert calls["export"][1]["fmt"] == "parquet" and calls["export"][1]["features"] == []
    assert invoke(["info", "C", "--failures"]).exit_code == 0 and calls["info"][1] == {"failures": True}
    assert invoke(["info", "C"]).exit_code == 0 and calls["info"][1] == {"failures": False}
    assert invoke(["noise", "eval", "C", "--lang", "de, fr", "--mt-model", "k1", "--mt-model", "k2"]).exit_code == 0
    assert calls["noise eval"][1] == dict(langs=["de", "fr"], mt_model=["k1", "k2"], out=None)
    one_line(CliRunner().invoke(app, ["export", "C", "-o", "D", "-f", "csv"]),
             "format (--format): expected one of parquet, jsonl, hf, nrccr, got 'csv'")  # -f names it too


def test_help_lists_the_choices():
    wide = {"COLUMNS": "1000"}
    assert "(one of: baseline, nrccr, cl2cm, dcot, leccr, rivrl, rgtr)" in CliRunner().invoke(
        app, ["train", "--help"], env=wide).output
    assert "(one of: charades, coco, csv, jsonl" in CliRunner().invoke(app, ["ingest", "--help"], env=wide).output
    translate = CliRunner().invoke(app, ["translate", "--help"], env=wide).output
    assert "(known: cs, de, fr, ja, zh)" in translate and "(default: 4)" in translate
    train = CliRunner().invoke(app, ["train", "--help"], env=wide).output
    assert "--video-encoder" in train and "(one of: pool, rivrl)" in train and "(default: 128)" in train
    known = f"(known: {', '.join(mt_languages())})"  # generated and hand-written --lang options alike
    for command in (["score"], ["train"], ["noise", "inject"], ["evaluate"], ["noise", "eval"]):
        output = CliRunner().invoke(app, [*command, "--help"], env=wide).output
        lang = next(line for line in output.splitlines() if "--lang " in line and "│" in line)
        assert known in lang, (command, lang)


def test_help_answers_fast():
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from ccr.cli import main; main()", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - started < 5


def readme_commands() -> list[str]:
    """The ``ccr ...`` lines of README.md's code blocks, without their comments."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("ccr ")]


@pytest.mark.parametrize("line", readme_commands())
def test_every_documented_command_parses_in_todays_spelling(line):
    """Every README command names a command and options that exist, in the order they take, and no old spelling."""
    command = typer.main.get_command(app)
    ctx = command.make_context("ccr", shlex.split(line)[1:])
    while hasattr(command, "resolve_command"):  # a group: ccr, ccr noise, ccr pipeline
        name, command, rest = command.resolve_command(ctx, ctx._protected_args + ctx.args)
        ctx = command.make_context(name, rest, parent=ctx)
    assert ctx.args == [], f"{line}: extra arguments {ctx.args}"
    old = {k: v for k, v in ctx.params.items() if k.startswith("renamed__") and v}
    assert not old, f"{line}: old spelling {old}"
