"""Corpora made by earlier code open, show, resume and grow under today's: one made before the stage
locks, run records and the ``--limit`` rule (tests/fixtures/legacy, commit a963846), and one made
just before the package was reorganised into layers (tests/fixtures/pre-reorg, commit 8a03d1d)."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus

FIXTURES = Path(__file__).parents[1] / "fixtures"
# the demo's translate settings, on the CPU (the fingerprint holds the resolved compute type)
TRANSLATE = ["--models", "random", "--max-length", "16", "--device", "cpu", "--compute-type", "int8"]


@pytest.fixture(params=["legacy", "pre-reorg"])
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    dest = tmp_path / "corpus"
    shutil.copytree(FIXTURES / request.param / "corpus", dest)
    return dest


def ccr(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_legacy_corpus_opens_and_shows_its_history(legacy):
    output = ccr("info", str(legacy), "--failures")
    stages = [r["stage"] for r in json.loads((legacy / "manifest.json").read_text())["runs"]]
    assert stages == ["ingest", "translate", "backtranslate", "features", "caption", "slots", "score", "select"]
    assert output.count("│ complete ") == len(stages) and "failures: 0" in output
    assert Corpus.open(legacy).table("captions").height > 0


def test_a_legacy_stage_resumes_and_grows_under_the_new_rules(legacy):
    before = Corpus.open(legacy).table("captions").height
    marked = {c.run for c in Corpus.open(legacy).commits("translate")}  # no run ids before the run records
    assert "translate: 0 rows in" in ccr("translate", str(legacy), "--lang", "de,fr,cs", *TRANSLATE), \
        "its own settings owe nothing: the old markers still say what is done"
    for expected in ("10 rows in", "0 rows in"):  # --limit under the new rule, twice
        assert f"translate: {expected}" in ccr("translate", str(legacy), "--lang", "ja", "--limit", "10", *TRANSLATE)
    ccr("select", str(legacy), "--top", "50")
    corpus = Corpus.open(legacy)
    captions = corpus.table("captions")
    assert captions.height == before + 10 and captions["caption_id"].n_unique() == captions.height
    assert captions.filter(pl.col("lang") == "ja")["origin"].unique().to_list() == ["mt"]
    new = corpus.runs()[8:]
    assert [r["status"] for r in new] == ["complete"] * 4 and all(r["id"] for r in new)
    assert {c.run for c in corpus.commits("translate")} == marked | {new[1]["id"]}
    output = ccr("info", str(legacy), "--failures")
    assert output.count("│ complete ") == 12
    assert "failures: 10" in output and "no dcot_conf on this MT row" in output, "the new rows were never scored"
