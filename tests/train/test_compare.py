"""``ccr evaluate --compare``: one Markdown table and one bar chart from real run directories."""

import json
import shutil

from train_helpers import sets
from typer.testing import CliRunner

from ccr.cli import app
from ccr.train.evaluate import evaluate_run
from ccr.train.loop import train


def test_compare_prints_one_table_and_draws_a_chart_from_real_runs(tmp_path, trained_run, synth_corpus):
    baseline = tmp_path / "baseline-6ep"
    shutil.copytree(trained_run, baseline)
    nrccr = tmp_path / "nrccr-1ep"
    train(synth_corpus, nrccr, method="nrccr", sets=sets(epochs=1), log=lambda _: None)
    for run in (baseline, nrccr):
        evaluate_run(run, split="test", log=lambda _: None)
    plot = tmp_path / "figures" / "compare.png"

    result = CliRunner().invoke(app, ["evaluate", "--compare", str(baseline), str(nrccr), "--plot", str(plot)],
                                env={"COLUMNS": "300"})

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("|")]
    assert lines[0] == ("| run | method | lang | T2V R@1 | T2V R@5 | T2V R@10 | V2T R@1 | V2T R@5 | V2T R@10 | SumR |")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}
    assert set(rows) == {"baseline-6ep", "nrccr-1ep"}
    for run, method in ((baseline, "baseline"), (nrccr, "nrccr")):
        metrics = json.loads((run / "eval" / "test.de.json").read_text())["metrics"]
        keys = ("t2v_r1", "t2v_r5", "t2v_r10", "v2t_r1", "v2t_r5", "v2t_r10", "sumr")
        assert rows[run.name] == [method, "de"] + [f"{metrics[k]:.1f}" for k in keys]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_names_the_command_that_makes_missing_evaluations(tmp_path, trained_run):
    unscored = tmp_path / "unscored"
    shutil.copytree(trained_run, unscored, ignore=shutil.ignore_patterns("eval"))
    result = CliRunner().invoke(app, ["evaluate", "--compare", str(unscored), "--split", "val"])
    assert result.exit_code == 2
    assert "no eval/val.LANG.json" in result.output and f"ccr evaluate {unscored} --split val" in result.output
    single = CliRunner().invoke(app, ["evaluate", str(unscored), str(unscored)])
    assert single.exit_code == 2 and "add --compare" in single.output
