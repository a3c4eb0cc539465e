"""A run directory whose files were damaged (a disk error, a hand edit, a copy cut short): ``ccr
evaluate`` and ``--compare`` say in one line which file and what to do, never a traceback; and a
``--plot`` that cannot be written is refused the same way."""

import json
import shutil
from pathlib import Path

import pytest

from ccr.train.eval.evaluate import evaluate_run


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory, trained_run):
    """A copy of the session's baseline run with its test evaluation written."""
    run = shutil.copytree(trained_run, tmp_path_factory.mktemp("run-files") / "baseline")
    evaluate_run(run, split="test", log=lambda _: None)
    return run


@pytest.fixture
def run(scored_run, tmp_path):
    return shutil.copytree(scored_run, tmp_path / "baseline")


@pytest.mark.parametrize(("text", "says"), [('{"method": "base', "is damaged (not valid JSON"),
                                            ('{"corpus": {}}', "names no method"), ("[1, 2]", "not a JSON object")])
def test_a_damaged_run_json(run, cli_error, text, says):
    (run / "run.json").write_text(text)
    for args in (["evaluate", run], ["evaluate", "--compare", run, "--plot", run / "c.png"]):
        cli_error(args, f"run file {run / 'run.json'}", says, "train again")


def test_a_run_json_without_its_corpus_needs_corpus(run, cli_error, synth_corpus):
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({k: v for k, v in info.items() if k != "corpus"}))
    cli_error(["evaluate", run], f"run file {run / 'run.json'}", "names no corpus", "--corpus")
    assert evaluate_run(run, split="test", corpus=synth_corpus, log=lambda _: None)


def test_a_damaged_checkpoint(run, cli_error):
    (run / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    cli_error(["evaluate", run], f"checkpoint {run / 'checkpoints' / 'best.pt'}", "unreadable")


@pytest.mark.parametrize(("text", "says"), [('{"metrics": {"t2v_r1"', "is damaged (not valid JSON"),
                                            ('{"protocol": {}}', "holds no metrics")])
def test_compare_with_a_damaged_evaluation(run, cli_error, text, says):
    (run / "eval" / "test.de.json").write_text(text)
    cli_error(["evaluate", "--compare", run, "--plot", run / "c.png"], f"evaluation {run / 'eval' / 'test.de.json'}",
              says, f"ccr evaluate {run} --split test")


def test_compare_with_a_plot_that_cannot_be_written(run, tmp_path, cli_error):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for plot, says in [(tmp_path, "is a directory"), (afile / "c.png", f"{afile} is a file"),
                       (Path("/sys/ccr-test/c.png"), "cannot be written")]:
        cli_error(["evaluate", "--compare", run, "--plot", plot], f"--plot {plot}", says)
    assert afile.read_text() == "keep me"
