"""Every recipe in configs/ runs unchanged on synthetic stand-ins of its public files, and resumes.

Each recipe is run as a user would (``ccr pipeline run RECIPE --data-root ... --models random``)
against ``ccr.testing.standins``, which writes the same file names, formats and layout as the real
downloads at a few dozen items, so a recipe whose paths or formats drift fails here. ``--models
random`` swaps in the tiny random models: the numbers are meaningless, the plumbing is not. The demo
recipe runs on the toy corpus instead, in tests/test_demo.py.
"""

import gzip
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.pipeline import orchestrate
from ccr.pipeline.kinds import KINDS
from ccr.pipeline.recipe import load_recipe
from ccr.testing.standins import WRITERS, write_standins

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(p.stem for p in CONFIGS.glob("*.toml") if p.stem != "demo")
SMALL_SHARDS = ["--set", "pipeline.chunk_rows=8"]  # several commits per stage, so a kill can land between them


def _args(name: str, data: Path, work: Path) -> list[str]:
    return ["pipeline", "run", str(CONFIGS / f"{name}.toml"), "--data-root", str(data), "--work-dir", str(work),
            "--models", "random", *SMALL_SHARDS]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """``finished(name)`` -> (data root, work dir) of one uninterrupted run of a recipe, made once."""
    done: dict[str, tuple[Path, Path]] = {}

    def run(name: str) -> tuple[Path, Path]:
        if name not in done:
            base = tmp_path_factory.mktemp(name)
            data, work = write_standins(base / "data", name), base / "work"
            result = CliRunner().invoke(app, _args(name, data, work))
            assert result.exit_code == 0, result.output
            done[name] = (data, work)
        return done[name]

    return run


def test_every_recipe_has_stand_ins():
    assert RECIPES and set(RECIPES) == set(WRITERS)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_runs_unchanged_on_its_stand_ins(name, finished):
    data, work = finished(name)
    recipe = load_recipe(CONFIGS / f"{name}.toml", pipeline={"data_root": str(data), "work_dir": str(work)})
    corpus = Corpus.open(recipe.corpus)
    assert corpus.failures().height == 0
    corpus_stages = {s.stage for s in recipe.steps if s.stage not in KINDS}
    assert {r["stage"] for r in corpus.runs()} >= corpus_stages
    evaluations = [s for s in recipe.steps if s.stage == "evaluate"]
    assert evaluations
    for step in evaluations:
        run_dir = recipe.run_dir(step.options["run"])
        langs = json.loads((run_dir / "run.json").read_text())["config"]["train"]["lang"]
        for lang in langs:
            record = json.loads((run_dir / "eval" / f"{step.options.get('split', 'test')}.{lang}.json").read_text())
            assert record["n_queries"] > 0 and record["metrics"]
    state = json.loads((work / "pipeline.json").read_text())["steps"]
    assert set(state) == {s.id for s in recipe.steps}


def test_a_rerun_skips_every_finished_step(finished):
    data, work = finished("multi30k")
    result = CliRunner().invoke(app, _args("multi30k", data, work))
    assert result.exit_code == 0, result.output
    steps = len(load_recipe(CONFIGS / "multi30k.toml", pipeline={"data_root": str(data)}).steps)
    assert f"pipeline: 0 steps ran, {steps} were done already" in " ".join(result.output.split())


def _states(data: Path, work: Path, *sets: str) -> dict[str, str]:
    """What ``--dry-run`` says of each step: done, changed or to do."""
    result = CliRunner().invoke(app, [*_args("multi30k", data, work), "--dry-run", *sets], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return {line.split()[1]: line.split()[3] for line in result.output.splitlines() if line.strip()[:1].isdigit()}


def test_dry_run_after_a_run_says_what_an_override_would_redo(finished):
    data, work = finished("multi30k")
    assert set(_states(data, work, "--set", "train.threads=2").values()) == {"done"}  # runtime options never retrain
    redo = _states(data, work, "--set", "translate.beam_size=2")
    assert redo["features"] == "done" and redo["translate"] == "changed"
    assert redo["backtranslate"] == redo["nrccr-de"] == redo["eval-nrccr-de"] == "changed"


def test_a_copied_data_root_redoes_nothing_and_an_edited_source_redoes_what_reads_it(tmp_path, finished):
    """Step keys take a source file's content, not its mtime: a copy (every mtime new) keeps every
    step done; an edited caption file redoes its ingest and the steps chained after it."""
    data, work = finished("multi30k")
    copied, copied_work = tmp_path / "data", tmp_path / "work"
    shutil.copytree(data, copied, copy_function=shutil.copy)  # the contents, not the mtimes
    shutil.copytree(work, copied_work)
    assert set(_states(copied, copied_work).values()) == {"done"}
    with gzip.open(copied / "multi30k/data/task1/raw/val.en.gz", "ab") as f:
        f.write(b"a caption added later\n")
    redo = _states(copied, copied_work)
    assert redo["ingest-train"] == "done" and redo["ingest-val"] == redo["ingest-test"] == "changed"
    assert redo["translate"] == "changed"


def test_a_pipeline_finished_under_the_keys_of_before_stays_done_and_takes_the_new_ones(tmp_path, finished):
    """Before 2026-12-06 a key took a source's size and mtime: such a state is still done (nothing
    was touched since), and a run records the content keys without redoing a step."""
    data, work = finished("multi30k")
    copied_work = tmp_path / "work"
    shutil.copytree(work, copied_work)
    recipe = load_recipe(CONFIGS / "multi30k.toml", sets=SMALL_SHARDS[1:], pipeline={
        "data_root": str(data), "work_dir": str(copied_work), "models": "random"})
    before = orchestrate.step_keys(recipe, orchestrate._size_and_mtime)
    state_file = copied_work / orchestrate.STATE_FILE
    state = json.loads(state_file.read_text())
    now = {step_id: record["key"] for step_id, record in state["steps"].items()}
    state = {"steps": {step_id: {**record, "key": before[step_id]} for step_id, record in state["steps"].items()}}
    state_file.write_text(json.dumps(state))
    assert set(_states(data, copied_work).values()) == {"done"}
    result = CliRunner().invoke(app, _args("multi30k", data, copied_work))
    assert result.exit_code == 0 and "0 steps ran" in " ".join(result.output.split()), result.output
    assert {i: r["key"] for i, r in json.loads(state_file.read_text())["steps"].items()} == now != before


def _tables(work: Path) -> dict[str, pl.DataFrame]:
    corpus = Corpus.open(work / "corpus")
    out = {"media": corpus.table("media").sort("media_id"), "captions": corpus.table("captions").sort("caption_id")}
    store = corpus.features("clip")
    out["features"] = pl.DataFrame({"media_id": sorted(store.ids()),
                                    "vector": [store.get(i).ravel().tolist() for i in sorted(store.ids())]})
    return out


def _metrics(work: Path) -> dict[str, dict]:
    return {str(p.relative_to(work)): json.loads(p.read_text())["metrics"] for p in work.glob("runs/*/eval/*.json")}


def test_a_pipeline_killed_mid_stage_resumes_to_the_same_result(tmp_path, finished):
    """SIGKILL the real process at translate's first committed shard, run again, compare with an unbroken run."""
    data, reference = finished("multi30k")
    work = tmp_path / "work"
    ccr = Path(sys.executable).with_name("ccr")
    proc = subprocess.Popen([str(ccr), *_args("multi30k", data, work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    markers = work / "corpus" / ".state" / "commits" / "translate"
    while proc.poll() is None and not any(markers.glob("*/*.json")):
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    assert not (work / "runs" / "nrccr-de" / "eval").exists()
    result = CliRunner().invoke(app, _args("multi30k", data, work))
    assert result.exit_code == 0, result.output
    assert "ingest-train: done before" in result.output  # finished steps are not redone
    resumed, unbroken = _tables(work), _tables(reference)
    for name, table in unbroken.items():
        assert resumed[name].equals(table), name
    assert _metrics(work) == _metrics(reference) and len(_metrics(work)) == 5  # nrccr de/fr/cs, baseline, dcot
