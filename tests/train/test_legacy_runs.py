"""Runs made before the translate-test rename (tests/fixtures/legacy, commit a963846) still evaluate and resume.

That code recorded ``val_translate_test`` (the native queries' share) in run.json and checkpoints;
today's name is ``val_translate_test_weight`` (the xx->en MT queries' share). Evaluating an old run
converts the value exactly (1 - X) and says so: evaluation does not depend on it. Resuming one is
refused with one line unless the command keeps the mix it selected checkpoints with. The fixture's
resumable run is a baseline (recorded value none, nothing to convert); a copy of it whose checkpoint
records NRCCR's 0.2 stands for an old NRCCR run killed mid-training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import ccr.train
from ccr.cli import app
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.run.loop import train

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy"
# The settings the fixture's runs were trained with (tests/fixtures/legacy/README.md).
MADE_WITH = ["embed_dim=32", "media_hidden=32", "batch_size=16", "lr=1e-3", "text_tower=tiny/bert",
             "progress=false", "threads=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(shutil.copytree(LEGACY / "corpus", tmp_path_factory.mktemp("legacy") / "corpus"))


def _run(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(LEGACY / name, tmp_path / name))


def _cli(*args: object):
    return CliRunner().invoke(app, [*map(str, args)], env={"COLUMNS": "300"})


def test_an_old_baseline_run_evaluates_to_its_old_numbers_and_now_records_the_protocol(tmp_path, corpus):
    run = _run("run-baseline", tmp_path)
    old = json.loads((run / "eval" / "test.de.json").read_text())
    assert "protocol" not in old

    refused = _cli("evaluate", "--compare", run, "--plot", tmp_path / "c.png")
    assert refused.exit_code == 2 and "protocol is unknown" in refused.output  # scored by the old code

    lines: list[str] = []
    results = evaluate_run(run, split="test", corpus=corpus, device="cpu", log=lines.append)  # as made
    record = json.loads((run / "eval" / "test.de.json").read_text())
    assert results["de"] == pytest.approx(old["metrics"])
    assert record["protocol"]["queries"] == "native" and record["protocol"]["n_queries"] == old["n_queries"]
    assert not any("renamed" in line for line in lines)
    assert _cli("evaluate", "--compare", run, "--plot", tmp_path / "c.png").exit_code == 0


def test_an_old_nrccr_run_evaluates_with_its_old_option_converted_and_says_so(tmp_path, corpus):
    run = _run("run-nrccr", tmp_path)
    assert json.loads((run / "run.json").read_text())["config"]["train"]["val_translate_test"] == 0.2

    result = _cli("evaluate", run, "--corpus", corpus)

    assert result.exit_code == 0, result.output
    assert ("val_translate_test=0.2 (the native share) is read as val_translate_test_weight=0.8 (the xx->en MT "
            "share it validated with)") in result.output
    assert json.loads((run / "eval" / "test.de.json").read_text())["protocol"]["queries"] == "native"


def test_an_old_run_resumes_and_an_old_nrccr_mix_is_kept_or_refused_in_one_line(tmp_path, corpus):
    plain = _run("run-killed", tmp_path)
    done = train(corpus, plain, sets=[*MADE_WITH, "epochs=4"], log=lambda _: None)
    assert done.epochs == 4  # resumed after epoch 3: nothing recorded to convert

    nrccr_like = tmp_path / "killed-nrccr"
    shutil.copytree(LEGACY / "run-killed", nrccr_like)
    state = torch.load(nrccr_like / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    state["config"]["train"]["val_translate_test"] = 0.2
    torch.save(state, nrccr_like / "checkpoints" / "last.pt")

    refused = _cli("train", corpus, "--out", nrccr_like, "--epochs", "4", *[a for s in MADE_WITH for a in ("--set", s)])
    assert refused.exit_code == 2, refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert (f"{nrccr_like} was validated with the old val_translate_test=0.2 (native share), i.e. "
            "val_translate_test_weight=0.8; resume it with --set val_translate_test_weight=0.8") in refused.output
    assert "--fresh" in refused.output

    kept = train(corpus, nrccr_like, sets=[*MADE_WITH, "epochs=4", "val_translate_test_weight=0.8"],
                 log=lambda _: None)
    assert kept.epochs == 4
    info = json.loads((nrccr_like / "run.json").read_text())
    assert info["config"]["train"]["val_translate_test_weight"] == 0.8
    assert "val_translate_test" not in info["config"]["train"]


def test_a_run_killed_before_the_reorganisation_resumes_loads_and_evaluates(tmp_path):
    """tests/fixtures/pre-reorg: a baseline SIGKILLed at epoch 4 by commit 8a03d1d, whose checkpoints
    were written before the modules moved; state dicts only, so the new layout reads them."""
    pre = Path(__file__).parents[1] / "fixtures" / "pre-reorg"
    corpus = Path(shutil.copytree(pre / "corpus", tmp_path / "corpus"))
    run = Path(shutil.copytree(pre / "run-killed", tmp_path / "run"))
    done = train(corpus, run, sets=[*MADE_WITH, "lang=de", "epochs=6"], log=lambda _: None)
    assert done.epochs == 6 and json.loads((run / "run.json").read_text())["resumed"]
    results = evaluate_run(run, split="test", corpus=corpus, device="cpu", log=lambda _: None)
    assert results["de"]["sumr"] > 0
    assert ccr.train.load(run, corpus=corpus, log=lambda _: None).encode_text(["ein Kreis"], lang="de").shape[0] == 1
