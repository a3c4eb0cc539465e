"""The filter commands end to end through the CLI: inject, score, eval, select."""

from __future__ import annotations

import json

from planted_corpus import MT_KEY
from typer.testing import CliRunner

from ccr.cli import app

WIDE = {"COLUMNS": "200"}


def test_inject_score_eval_select_from_the_command_line(planted, tmp_path):
    cli = CliRunner()
    noisy = tmp_path / "noisy"
    injected = cli.invoke(app, ["noise", "inject", str(planted), "--out", str(noisy), "--rate", "0.2", "--type", "swap",
                                "--seed", "0"], env=WIDE)
    assert injected.exit_code == 0, injected.output
    assert f"ccr score {noisy} --lang cs --mt-model {MT_KEY}+noise" in injected.output

    ambiguous = cli.invoke(app, ["score", str(noisy), "--lang", "cs", "--models", "random"], env=WIDE)
    assert ambiguous.exit_code == 2 and "Traceback" not in ambiguous.output
    assert "pick one with --mt-model KEY" in ambiguous.output

    plot = tmp_path / "[" / "p].png"  # paths print as themselves, never as rich markup
    scored = cli.invoke(app, ["score", str(noisy), "--lang", "cs", "--mt-model", f"{MT_KEY}+noise", "--models", "random",
                              "--plot", str(plot)], env=WIDE)
    assert scored.exit_code == 0, scored.output
    table = [line.split() for line in scored.output.splitlines() if line.startswith("cs ")]
    assert [row[1] for row in table] == ["xl_sim", "xm_sim", "dcot_conf"] and all(row[2] == "400" for row in table)
    assert plot.read_bytes()[:4] == b"\x89PNG" and f"plot: {plot}" in scored.output.splitlines()

    eval_dir = tmp_path / "[bold]" / "[" / "e]"
    evaluated = cli.invoke(app, ["noise", "eval", str(noisy), "--out", str(eval_dir)], env=WIDE)
    assert evaluated.exit_code == 0, evaluated.output
    assert "| cs | dcot_conf | 400 | 80 |" in evaluated.output
    assert any(line.startswith(f"noise eval: {eval_dir}/") for line in evaluated.output.splitlines())
    results = json.loads((eval_dir / "noise_eval.json").read_text())["languages"]["cs"]["scores"]
    assert results["dcot_conf"]["auroc"] >= 0.9

    selected = cli.invoke(app, ["select", str(noisy), "--top", "80", "--weighting", "normalized",
                                "--mt-model", f"{MT_KEY}+noise"], env=WIDE)
    assert selected.exit_code == 0, selected.output
    assert "cs: kept 320 of 400 MT rows, mean weight 1.000" in selected.output

    refused = cli.invoke(app, ["select", str(noisy), "--mt-model", f"{MT_KEY}+noise"], env=WIDE)
    assert refused.exit_code == 2 and "nothing to select by" in refused.output
