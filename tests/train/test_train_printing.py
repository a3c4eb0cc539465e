"""``ccr train`` and ``ccr evaluate`` print a run directory that looks like rich markup as itself,
each line whole, when output is not a terminal (``ccr.printing``)."""

import shutil

from train_helpers import sets
from typer.testing import CliRunner

from ccr.cli import app

NARROW = {"COLUMNS": "40"}  # narrower than every line below: rich would wrap them


def test_a_run_directory_with_markup_prints_whole(tmp_path, synth_corpus, trained_run):
    run = tmp_path / "a rather long directory name for runs" / "[bold]" / "[" / "x]"  # prints .../[bold]/[/x]
    shutil.copytree(trained_run, run)
    cli = CliRunner()
    # the fixture's settings: the run is finished, so this only prints its summary
    trained = cli.invoke(app, ["train", str(synth_corpus), "--out", str(run),
                               *[arg for s in sets(epochs=6) for arg in ("--set", s)]], env=NARROW)
    assert trained.exit_code == 0, trained.output
    last = trained.output.splitlines()[-1]
    assert last.startswith("train: 6 epochs, best epoch ") and last.endswith(f"evaluate with: ccr evaluate {run}")

    evaluated = cli.invoke(app, ["evaluate", str(run), "--lang", "de"], env=NARROW)
    assert evaluated.exit_code == 0, evaluated.output
    assert f"evaluate: {run / 'eval'}/test.{{de}}.json" in evaluated.output.splitlines()

    chart = run.parent / "c].png"  # prints .../[/c].png
    compared = cli.invoke(app, ["evaluate", "--compare", str(run), "--plot", str(chart)], env=NARROW)
    assert compared.exit_code == 0, compared.output
    assert f"compare: 1 rows; chart {chart}" in compared.output.splitlines() and chart.exists()
