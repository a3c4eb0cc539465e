"""``ccr train`` and ``ccr evaluate`` from the command line: files, tables, friendly errors."""

import json

from train_helpers import sets
from typer.testing import CliRunner

from ccr.cli import app
from ccr.train.eval.metrics import METRIC_KEYS


def _set_args(**extra):
    return [arg for s in sets(**extra) for arg in ("--set", s)]


def test_train_then_evaluate_writes_the_run_directory(tmp_path, synth_corpus):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(synth_corpus), "--out", str(out), "--lang", "de", "--epochs", "2",
                                 *_set_args(loss="infonce")])
    assert result.exit_code == 0, result.output
    assert "baseline config: loss='infonce'" in result.output and "train: 2 epochs" in result.output
    info = json.loads((out / "run.json").read_text())
    assert info["method"] == "baseline" and info["config"]["train"]["epochs"] == 2
    assert info["corpus"]["fingerprint"] and info["versions"]["torch"] and info["visual"] == "synthetic-concepts"
    assert (out / "checkpoints" / "best.pt").exists() and (out / "text_tower" / "config.json").exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    result = runner.invoke(app, ["evaluate", str(out), "--lang", "de,en", "--translate-test-weight", "0.5"])
    assert result.exit_code == 0, result.output
    assert "| lang | T2V R@1 |" in result.output and "| de |" in result.output and "| en |" in result.output
    saved = json.loads((out / "eval" / "test.de.json").read_text())
    assert list(saved["metrics"]) == list(METRIC_KEYS)
    assert saved["protocol"] == {"task": "retrieval", "queries": "native+xx->en MT", "translate_test_weight": 0.5,
                                 "translate_model": "synth-mt", "gallery": "captioned", "n_queries": 40,
                                 "n_gallery": 40, "sumr": "t2v+v2t"}
    english = json.loads((out / "eval" / "test.en.json").read_text())["protocol"]
    assert english["queries"] == "native" and english["translate_test_weight"] == 0.0  # English needs no MT
    assert saved["n_queries"] == 40 and saved["n_gallery"] == 40
    assert (out / "eval" / "test.md").read_text().startswith("| lang |")

    result = runner.invoke(app, ["evaluate", str(out), "--lang", "en", "--split", "val"])
    assert result.exit_code == 0 and (out / "eval" / "val.en.json").exists()

    again = runner.invoke(app, ["train", str(synth_corpus), "--out", str(out), "--epochs", "2", *_set_args()])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert json.loads((out / "run.json").read_text())["finished"]
    fresh = runner.invoke(app, ["train", str(synth_corpus), "--out", str(out), "--epochs", "1", "--fresh",
                                *_set_args()])
    assert fresh.exit_code == 0 and "train: 1 epochs" in fresh.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1 and not (out / "eval").exists()


def test_mistakes_are_one_line_errors(tmp_path, synth_corpus):
    runner = CliRunner()
    cases = [
        (["train", str(synth_corpus), "--out", str(tmp_path / "a"), "--set", "nope=1"], "unknown option 'nope'"),
        (["train", str(synth_corpus), "--out", str(tmp_path / "b"), "--lang", "fr", *_set_args()],
         "no fr MT captions"),
        (["train", str(tmp_path), "--out", str(tmp_path / "c")], "not a ccr corpus"),
        (["evaluate", str(tmp_path / "missing")], "not a training run"),
        (["evaluate", str(tmp_path), "--translate-test-weight", "2"], "--translate-test-weight 2.0: the xx->en MT"),
        (["evaluate", str(tmp_path), "--translate-test", "0.2"], "--translate-test was renamed --translate-test-weight"),
        (["train", str(synth_corpus), "--out", str(tmp_path / "d"), "--set", "val_translate_test=0.2"],
         "val_translate_test was renamed val_translate_test_weight"),
        (["evaluate"], "give a run directory"),
        (["evaluate", "--submission", str(tmp_path / "junk")], "give both"),
    ]
    (tmp_path / "junk").write_text("x")
    for args, message in cases:
        result = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
