"""``ccr evaluate --compare``: one Markdown table and one bar chart from real run directories, under one protocol.

Three real runs on the synthetic corpus: the session's baseline, NRCCR (a reproduction of released
code) and CL2CM (a proposal: no released code) trained one epoch, all scored by ``ccr evaluate``'s
default protocol. Variants of their result files (another protocol, no protocol at all) are made
by scoring a copy again, or by removing the block as files written before it existed lack it.
"""

import json
import shutil

import pytest
from train_helpers import sets
from typer.testing import CliRunner

from ccr.cli import app
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.run.loop import train

QUIET = {"log": lambda _: None}
KEYS = ("t2v_r1", "t2v_r5", "t2v_r10", "v2t_r1", "v2t_r5", "v2t_r10", "sumr")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_run, synth_corpus):
    root = tmp_path_factory.mktemp("compare")
    baseline = root / "baseline-6ep"
    shutil.copytree(trained_run, baseline)
    made = {"baseline": baseline}
    for method in ("nrccr", "cl2cm"):
        made[method] = root / f"{method}-1ep"
        train(synth_corpus, made[method], method=method, sets=sets(epochs=1), **QUIET)
    for run in made.values():
        evaluate_run(run, split="test", **QUIET)
    return made


def _compare(*args):
    return CliRunner().invoke(app, ["evaluate", "--compare", *map(str, args)], env={"COLUMNS": "300"})


def _table(output):
    lines = [line for line in output.splitlines() if line.startswith("|")]
    return lines[0], {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in lines[2:]}


def _copy(run, tmp_path, name):
    return shutil.copytree(run, tmp_path / name)


def test_compare_prints_one_table_its_protocol_and_the_proposal_labels(tmp_path, runs):
    plot = tmp_path / "figures" / "compare.png"
    result = _compare(*runs.values(), "--plot", plot)

    assert result.exit_code == 0, result.output
    header, rows = _table(result.output)
    assert header == "| run | method | lang | T2V R@1 | T2V R@5 | T2V R@10 | V2T R@1 | V2T R@5 | V2T R@10 | SumR |"
    assert set(rows) == {"baseline-6ep", "nrccr-1ep", "cl2cm-1ep"}
    for method, run in runs.items():
        metrics = json.loads((run / "eval" / "test.de.json").read_text())["metrics"]
        label = "cl2cm (proposal)" if method == "cl2cm" else method
        assert rows[run.name] == [label, "de"] + [f"{metrics[k]:.1f}" for k in KEYS]
    assert "protocol: native queries; captioned gallery; SumR t2v+v2t (de: 40 queries x 40 items)" in result.output
    assert ("(proposal) cl2cm has no released code: ccr follows the proposal in reference/ccr_methods.md §3.3"
            in result.output)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_proposals_are_marked_in_run_json_and_in_evaluate_output(runs):
    assert json.loads((runs["cl2cm"] / "run.json").read_text())["proposal"].startswith("(proposal) cl2cm")
    assert json.loads((runs["nrccr"] / "run.json").read_text())["proposal"] is None
    result = CliRunner().invoke(app, ["evaluate", str(runs["cl2cm"]), "--split", "val"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "(proposal) cl2cm has no released code" in result.output
    assert "(proposal) cl2cm" in (runs["cl2cm"] / "eval" / "val.md").read_text()


def test_rows_scored_under_other_protocols_are_refused_unless_allow_mixed(tmp_path, runs):
    fused = _copy(runs["nrccr"], tmp_path, "nrccr-fused")
    evaluate_run(fused, split="test", translate_test_weight=0.5, **QUIET)

    refused = _compare(runs["baseline"], fused)
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
    assert ("baseline-6ep (de) and nrccr-fused (de) were scored under different protocols "
            "(queries native vs native+xx->en MT)") in refused.output and "--allow-mixed" in refused.output

    mixed = _compare(runs["baseline"], fused, "--allow-mixed", "--plot", tmp_path / "mixed.png")
    assert mixed.exit_code == 0, mixed.output
    header, rows = _table(mixed.output)
    assert header.endswith("| SumR | protocol |")
    assert rows["nrccr-fused"][-1] == ("native queries + xx->en MT at weight 0.5, synth-mt; captioned gallery; "
                                       "SumR t2v+v2t; 40 queries x 40 items")
    assert rows["baseline-6ep"][-1].startswith("native queries; captioned gallery")
    assert "protocols differ between rows (--allow-mixed)" in mixed.output


def test_sumr_directions_are_part_of_the_protocol(tmp_path, runs):
    t2v = _copy(runs["baseline"], tmp_path, "baseline-t2v")
    evaluate_run(t2v, split="test", sumr="t2v", **QUIET)
    refused = _compare(runs["baseline"], t2v)
    assert refused.exit_code == 2 and "(sumr t2v+v2t vs t2v)" in refused.output
    alone = _compare(t2v, "--plot", tmp_path / "t2v.png")
    metrics = json.loads((t2v / "eval" / "test.de.json").read_text())["metrics"]
    assert _table(alone.output)[1]["baseline-t2v"][-1] == f"{metrics['t2v_sumr']:.1f}"  # SumR = t2v only
    assert "SumR t2v (de:" in alone.output


def test_results_written_before_protocols_existed_are_unknown_and_refused(tmp_path, runs):
    old = _copy(runs["baseline"], tmp_path, "old-baseline")
    record_path = old / "eval" / "test.de.json"
    record = json.loads(record_path.read_text())
    del record["protocol"]
    record_path.write_text(json.dumps(record))

    for pair in ((runs["baseline"], old), (old,)):
        refused = _compare(*pair)
        assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
        unknown = "old-baseline (de) was scored before protocols were recorded, so its protocol is unknown"
        assert unknown in refused.output
    mixed = _compare(runs["baseline"], old, "--allow-mixed", "--plot", tmp_path / "old.png")
    assert mixed.exit_code == 0 and "unknown (scored before protocols were recorded" in mixed.output


def test_a_run_json_without_the_proposal_field_is_labelled_by_its_method(tmp_path, runs):
    old = _copy(runs["cl2cm"], tmp_path, "old-cl2cm")
    info = json.loads((old / "run.json").read_text())
    del info["proposal"]
    (old / "run.json").write_text(json.dumps(info))
    result = _compare(old, "--plot", tmp_path / "c.png")
    assert result.exit_code == 0 and _table(result.output)[1]["old-cl2cm"][0] == "cl2cm (proposal)"


def test_compare_names_the_command_that_makes_missing_evaluations(tmp_path, trained_run):
    unscored = tmp_path / "unscored"
    shutil.copytree(trained_run, unscored, ignore=shutil.ignore_patterns("eval"))
    result = CliRunner().invoke(app, ["evaluate", "--compare", str(unscored), "--split", "val"])
    assert result.exit_code == 2
    assert "no eval/val.LANG.json" in result.output and f"ccr evaluate {unscored} --split val" in result.output
    single = CliRunner().invoke(app, ["evaluate", str(unscored), str(unscored)])
    assert single.exit_code == 2 and "add --compare" in single.output
