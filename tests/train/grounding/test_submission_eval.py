"""``ccr evaluate --submission FILE --gt FILE``: a predictions file scored without its model.

A hand-made pair whose metrics are worked out below, malformed lines that must come back as one
line naming ``FILE:LINE``, and a submission written by a real RGTR run's ``ccr evaluate``, which
must score exactly as the run's own evaluation did.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ccr.cli import app
from ccr.train.eval.evaluate import evaluate_run

# Two 10-s videos, 2-s clips (5 each), three annotators.
GT = [
    {"qid": 1, "query": "a", "vid": "v1", "duration": 10, "relevant_windows": [[0, 4]],
     "relevant_clip_ids": [0, 1], "saliency_scores": [[4, 4, 4], [2, 2, 2]]},
    {"qid": 2, "query": "b", "vid": "v2", "duration": 10, "relevant_windows": [[4, 8]],
     "relevant_clip_ids": [2, 3], "saliency_scores": [[1, 1, 1], [4, 4, 4]]},
]
SUBMISSION = [
    # top window = the moment (IoU 1): R1 hit at 0.5 and 0.7, AP 1 at every threshold; top clip 0 (score 4)
    {"qid": 1, "query": "a", "vid": "v1", "pred_relevant_windows": [[0, 4, 0.9], [4, 8, 0.1]],
     "pred_saliency_scores": [0.9, 0.5, 0.1, 0.0, 0.0]},
    # [2, 6] vs [4, 8]: IoU 2/6, a miss everywhere; top clip 2 (scores 1: no level), clip 3 (4) ranks second
    {"qid": 2, "query": "b", "vid": "v2", "pred_relevant_windows": [[2, 6, 0.8]],
     "pred_saliency_scores": [0.1, 0.2, 0.9, 0.3, 0.0]},
]
# Moments: one query of two hits. Highlights: query 1 ranks its positives first (AP 1 at every
# level), query 2 ranks its one positive clip second (AP 1/2), so highlight mAP is 75 and HIT@1 50.
EXPECTED_BRIEF = {
    "MR-full-R1@0.5": 50.0, "MR-full-R1@0.7": 50.0, "MR-full-mAP": 50.0, "MR-full-mAP@0.5": 50.0,
    "MR-full-mAP@0.75": 50.0, "MR-short-mAP": 50.0,
    "HL-min-Fair-mAP": 75.0, "HL-min-Fair-Hit1": 50.0, "HL-min-Good-mAP": 75.0, "HL-min-Good-Hit1": 50.0,
    "HL-min-VeryGood-mAP": 75.0, "HL-min-VeryGood-Hit1": 50.0,
}


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _evaluate(*args):
    return CliRunner().invoke(app, ["evaluate", *map(str, args)], env={"COLUMNS": "300"})


def test_a_hand_made_submission_scores_the_worked_out_values_in_the_standard_layout(tmp_path):
    sub, gt = _jsonl(tmp_path / "preds.jsonl", SUBMISSION), _jsonl(tmp_path / "gt.jsonl", GT)
    result = _evaluate("--submission", sub, "--gt", gt)

    assert result.exit_code == 0, result.output
    written = tmp_path / "preds_metrics.json"  # the default: beside the submission
    metrics = json.loads(written.read_text())
    assert metrics["brief"] == EXPECTED_BRIEF
    assert list(metrics["brief"]) == sorted(k for k in EXPECTED_BRIEF if k.startswith("MR")) + [
        k for k in EXPECTED_BRIEF if k.startswith("HL")]  # MR keys sorted, then HL, as the standard eval
    assert list(metrics) == ["brief", "HL-min-Fair", "HL-min-Good", "HL-min-VeryGood", "full", "short"]
    assert metrics["full"]["MR-R1"] == {"0.5": 50.0, "0.55": 50.0, "0.6": 50.0, "0.65": 50.0, "0.7": 50.0,
                                        "0.75": 50.0, "0.8": 50.0, "0.85": 50.0, "0.9": 50.0, "0.95": 50.0}
    assert metrics["HL-min-VeryGood"] == {"HL-mAP": 75.0, "HL-Hit1": 50.0}
    assert written.read_text() == json.dumps(metrics, indent=4)  # written as the standalone eval writes it
    assert "MR-full-R1@0.5" in result.output and "| preds.jsonl | 50.00 |" in result.output

    elsewhere = tmp_path / "out" / "m.json"
    assert _evaluate("--submission", sub, "--gt", gt, "--out", elsewhere).exit_code == 0
    assert json.loads(elsewhere.read_text()) == metrics


MALFORMED = [
    ("submission", [SUBMISSION[0], "{not json"], "preds.jsonl:2: not valid JSON"),
    ("submission", ["[1, 2]", SUBMISSION[1]], "preds.jsonl:1: not a JSON object in this submission line"),
    ("submission", [SUBMISSION[0], {"pred_relevant_windows": [[0, 1, 1]]}],
     "preds.jsonl:2: no qid in this submission line"),
    ("submission", [SUBMISSION[0], SUBMISSION[1] | {"pred_relevant_windows": [[2, 6]]}],
     "preds.jsonl:2: pred_relevant_windows must be a list of [start, end, score] numbers"),
    ("submission", [SUBMISSION[0], SUBMISSION[1] | {"pred_saliency_scores": ["high"]}],
     "preds.jsonl:2: pred_saliency_scores must be a list of numbers"),
    ("submission", [SUBMISSION[0], SUBMISSION[0]], "preds.jsonl:2: qid 1 again (first on line 1)"),
    ("submission", [SUBMISSION[0], {"qid": 2}],
     "preds.jsonl:2: neither pred_relevant_windows nor pred_saliency_scores"),
    ("gt", [GT[0], {k: v for k, v in GT[1].items() if k != "relevant_windows"}],
     "gt.jsonl:2: relevant_windows must be a non-empty list"),
    ("gt", [GT[0] | {"saliency_scores": [[4, 4, 4]]}, GT[1]],
     "gt.jsonl:1: saliency_scores needs one list of annotator scores per relevant clip id"),
    ("gt", [GT[0] | {"duration": "long"}, GT[1]], "gt.jsonl:1: duration must be a positive number"),
    # lines the standard eval would score as something other than meant (issue 15's reviewer)
    ("submission", [SUBMISSION[0] | {"pred_saliency_scores": [0.9]}, SUBMISSION[1]],
     "preds.jsonl:1: 1 pred_saliency_scores, but the ground truth's video of qid 1 has 5 clips (10 s in 2 s clips)"),
    ("submission", [SUBMISSION[0], SUBMISSION[1] | {"pred_relevant_windows": [[6, 2, 0.8]]}],
     "preds.jsonl:2: pred_relevant_windows[0] = [6, 2, 0.8] ends before it starts"),
    ("submission", [SUBMISSION[0], SUBMISSION[1] | {"pred_relevant_windows": [[-2, 6, 0.8]]}],
     "preds.jsonl:2: pred_relevant_windows[0] = [-2, 6, 0.8] starts before 0 s"),
    ("submission", [SUBMISSION[0] | {"pred_relevant_windows": [[4, 8, 0.1], [0, 4, 0.9]]}, SUBMISSION[1]],
     "preds.jsonl:1: pred_relevant_windows must be sorted by score, highest first"),
    ("submission", [*SUBMISSION, SUBMISSION[1] | {"qid": 3}], "preds.jsonl:3: qid 3 is not in the ground truth"),
    ("submission", [SUBMISSION[0], SUBMISSION[1] | {"qid": "2"}],
     "preds.jsonl:2: qid '2' is not in the ground truth"),  # and says the ground truth has 2
    ("submission", [SUBMISSION[0]], "gt.jsonl:2: qid 2 has no prediction in"),
    ("submission", [SUBMISSION[0], {k: v for k, v in SUBMISSION[1].items() if k != "pred_saliency_scores"}],
     ("preds.jsonl:2: this line has pred_relevant_windows where line 1 has pred_relevant_windows and "
      "pred_saliency_scores")),
    ("submission", [SUBMISSION[0], SUBMISSION[1] | {"vid": "v1"}],
     "preds.jsonl:2: vid 'v1' is not the ground truth's video 'v2' for qid 2"),
    ("gt", [GT[0]], "preds.jsonl:2: qid 2 is not in the ground truth"),
    ("gt", [GT[0] | {"duration": 0}, GT[1]], "gt.jsonl:1: duration must be a positive number"),
    ("gt", [GT[0] | {"relevant_windows": [[4, 0]]}, GT[1]], "gt.jsonl:1: relevant_windows[0] = [4, 0] ends before"),
    ("gt", [GT[0] | {"saliency_scores": [[4, 4, 4], [2, 2]]}, GT[1]],
     "gt.jsonl:1: saliency_scores needs the same number of annotators for every clip"),
    ("gt", [GT[0], GT[1] | {"saliency_scores": [[1, 1], [4, 4]]}],
     "gt.jsonl:2: saliency_scores by 2 annotators where line 1 has 3"),
]


@pytest.mark.parametrize(("which", "rows", "message"), MALFORMED)
def test_malformed_lines_are_one_line_errors_naming_file_and_line(tmp_path, which, rows, message):
    files = {"submission": SUBMISSION, "gt": GT} | {which: rows}
    sub, gt = _jsonl(tmp_path / "preds.jsonl", files["submission"]), _jsonl(tmp_path / "gt.jsonl", files["gt"])
    result = _evaluate("--submission", sub, "--gt", gt)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output, result.output
    assert str(tmp_path / ("preds.jsonl" if which == "submission" else "gt.jsonl")) in result.output
    assert not (tmp_path / "preds_metrics.json").exists()


def test_a_qid_written_as_text_is_told_how_the_ground_truth_writes_it(tmp_path):
    sub = _jsonl(tmp_path / "preds.jsonl", [SUBMISSION[0], SUBMISSION[1] | {"qid": "2"}])
    result = _evaluate("--submission", sub, "--gt", _jsonl(tmp_path / "gt.jsonl", GT))
    assert result.exit_code == 2 and "(it has 2: write qids as the ground truth does)" in result.output


def test_saliency_may_score_a_partial_last_clip_but_no_fewer_clips(tmp_path):
    """A 9-s video holds 4 whole 2-s clips and half of a fifth: 4 or 5 scores, as feature extractors give."""
    gt = _jsonl(tmp_path / "gt.jsonl", [GT[0] | {"duration": 9}, GT[1]])
    for scores in ([0.9, 0.5, 0.1, 0.0], [0.9, 0.5, 0.1, 0.0, 0.0]):
        sub = _jsonl(tmp_path / "preds.jsonl", [SUBMISSION[0] | {"pred_saliency_scores": scores}, SUBMISSION[1]])
        assert _evaluate("--submission", sub, "--gt", gt).exit_code == 0
    sub = _jsonl(tmp_path / "preds.jsonl", [SUBMISSION[0] | {"pred_saliency_scores": [0.9, 0.5, 0.1]}, SUBMISSION[1]])
    result = _evaluate("--submission", sub, "--gt", gt)
    assert result.exit_code == 2 and "preds.jsonl:1: 3 pred_saliency_scores" in result.output
    assert "has 4-5 clips (9 s in 2 s clips)" in result.output


def test_submission_needs_ground_truth_and_no_run(tmp_path):
    sub = _jsonl(tmp_path / "preds.jsonl", SUBMISSION)
    for args in (("--submission", sub), ("--gt", sub), (tmp_path, "--submission", sub, "--gt", sub)):
        result = _evaluate(*args)
        assert result.exit_code == 2 and "--submission FILE --gt FILE scores a predictions file" in result.output


def test_a_real_rgtr_submission_scores_as_the_run_evaluated_itself(tmp_path, rgtr_run, grounding_corpus):
    evaluate_run(rgtr_run, split="test", log=lambda _: None)
    record = json.loads((rgtr_run / "eval" / "test.de.json").read_text())
    submission = rgtr_run / "eval" / record["predictions"]
    out = tmp_path / "metrics.json"

    result = _evaluate("--submission", submission, "--gt", grounding_corpus.parent / "synth_test.jsonl", "--out", out)

    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == record["detail"]["qvhighlights"]
    assert record["protocol"] == {"task": "grounding", "queries": "mt", "query_model": "synth-mt",
                                  "n_queries": 32, "n_videos": 16, "clip_length": 2.0,
                                  "metrics": "qvhighlights+single_window"}
    assert "(proposal) rgtr has no released code" in (rgtr_run / "eval" / "test.md").read_text()
