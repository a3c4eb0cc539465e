"""RGTR learns planted moments across languages, and its predictions file is the standard format.

Design (ccr.testing.grounding_synthetic): every video has two planted moments of different concepts;
a query names one of them. Clip features show where *something* happens, only the query says which
moment is meant, so an untrained model (same anchors from clustering, no gradient step: lr 0) sits
at chance, and a model that reads the query localises its moment. Training uses German MT queries
only. Human German queries (another wording, moments from their English parent rows) go through
the same path; the tiny random text tower does not carry a new wording over, so for them the test
checks the plumbing, not the numbers.
"""

from __future__ import annotations

import json

import pytest
from rgtr_helpers import rgtr_sets
from typer.testing import CliRunner

from ccr.cli import app
from ccr.errors import CcrError
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.grounding_metrics import (
    evaluate_qvhighlights,
    evaluate_single_window,
    read_jsonl,
)
from ccr.train.run.loop import train

QUIET = {"log": lambda _: None}


def test_rgtr_trained_on_mt_queries_beats_the_untrained_model(rgtr_run, grounding_corpus, tmp_path):
    untrained = tmp_path / "untrained"
    train(grounding_corpus, untrained, method="rgtr", sets=rgtr_sets(epochs=1, lr=0, lang="de"), **QUIET)
    before = evaluate_run(untrained, split="test", queries="mt", **QUIET)["de-mt"]
    after = evaluate_run(rgtr_run, split="test", queries="mt", **QUIET)["de-mt"]
    human = evaluate_run(rgtr_run, split="test", queries="human", **QUIET)["de-human"]

    assert after["MR-full-R1@0.5"] >= 40 and after["MR-full-R1@0.5"] >= before["MR-full-R1@0.5"] + 20
    assert after["MR-full-mAP"] >= before["MR-full-mAP"] + 10
    assert after["MR-full-mIoU"] >= before["MR-full-mIoU"] + 15
    # a clip inside the queried moment ranks first: chance is the moment's share of the video (~20%)
    assert after["HL-min-Fair-Hit1"] >= 80 and after["HL-min-Fair-Hit1"] >= before["HL-min-Fair-Hit1"] + 30
    human_record = json.loads((rgtr_run / "eval" / "test.de-human.json").read_text())
    assert human_record["n_queries"] == 32 and set(human) == set(after)
    human_preds = read_jsonl(rgtr_run / "eval" / human_record["predictions"])
    assert all(p["query"].startswith("das ") for p in human_preds)
    with pytest.raises(CcrError, match="--mt-model 'nope': no de translations of test queries from it; available"):
        evaluate_run(rgtr_run, split="test", queries="mt", mt_model="nope", **QUIET)

    log = [json.loads(line) for line in (rgtr_run / "metrics.jsonl").read_text().splitlines()]
    assert len(log) == 30 and all(set(r["val"]) == {"de"} for r in log)
    best = max(r["val"]["de"]["MR-full-mAP"] for r in log)
    assert json.loads((rgtr_run / "run.json").read_text())["best_value"] == best


def test_predictions_file_is_the_standard_submission_and_round_trips(rgtr_run, grounding_corpus):
    result = CliRunner().invoke(app, ["evaluate", str(rgtr_run), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "MR-full-R1@0.7" in result.output and "HL-min-VeryGood-mAP" in result.output

    record = json.loads((rgtr_run / "eval" / "test.de.json").read_text())
    assert record["queries"] == "mt" and record["n_queries"] == 32
    preds = read_jsonl(rgtr_run / "eval" / record["predictions"])
    annotations = read_jsonl(grounding_corpus.parent / "synth_test.jsonl")  # the original annotation file
    by_qid = {a["qid"]: a for a in annotations}
    for p in preds:
        assert set(p) == {"qid", "query", "vid", "pred_relevant_windows", "pred_saliency_scores"}
        assert p["vid"] == by_qid[p["qid"]]["vid"] and p["query"].startswith("wir sehen das ")  # the German MT
        scores = [w[2] for w in p["pred_relevant_windows"]]
        assert scores == sorted(scores, reverse=True) and len(scores) == 6  # every query's window, no NMS
        assert all(0 <= w[0] <= w[1] <= by_qid[p["qid"]]["duration"] for w in p["pred_relevant_windows"])
        assert all(w[0] % 2 == 0 and w[1] % 2 == 0 for w in p["pred_relevant_windows"])  # on the 2-s clip grid
        assert len(p["pred_saliency_scores"]) == by_qid[p["qid"]]["duration"] / 2  # one per 2-s clip
    assert record["detail"]["qvhighlights"] == evaluate_qvhighlights(preds, annotations)
    assert record["detail"]["single_window"] == evaluate_single_window(preds, annotations)
    assert record["metrics"]["MR-full-R1@0.3"] == record["detail"]["single_window"]["brief"]["MR-full-R1@0.3"]
