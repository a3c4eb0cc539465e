"""``ccr evaluate --submission FILE --gt FILE`` with files that are no files and an ``--out`` that
cannot be written: one line naming the path, never a hang (a FIFO) or a traceback."""

import json
import os
from pathlib import Path

GT = {"qid": 1, "vid": "v1", "duration": 10, "relevant_windows": [[0, 4]]}
PREDICTION = {"qid": 1, "vid": "v1", "pred_relevant_windows": [[0, 4, 0.9]]}


def _files(tmp_path: Path) -> tuple[Path, Path]:
    sub, gt = tmp_path / "preds.jsonl", tmp_path / "gt.jsonl"
    sub.write_text(json.dumps(PREDICTION) + "\n")
    gt.write_text(json.dumps(GT) + "\n")
    return sub, gt


def test_a_submission_or_ground_truth_that_is_a_fifo_or_a_device(tmp_path, cli_error, no_hang):
    sub, gt = _files(tmp_path)
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    cli_error(["evaluate", "--submission", fifo, "--gt", gt], f"submission file {fifo}", "not a regular file")
    cli_error(["evaluate", "--submission", sub, "--gt", "/dev/zero"], "ground truth file /dev/zero", "not a regular file")
    cli_error(["evaluate", "--submission", sub, "--gt", tmp_path], f"ground truth file {tmp_path}", "is a directory")
    assert not (tmp_path / "preds_metrics.json").exists()


def test_an_out_that_cannot_be_written(tmp_path, cli_error):
    sub, gt = _files(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for out, says in [(tmp_path, "is a directory"), (afile / "m.json", f"{afile} is a file"),
                      (Path("/sys/ccr-test/m.json"), "cannot be written")]:
        cli_error(["evaluate", "--submission", sub, "--gt", gt, "--out", out], f"--out {out}", says)
    assert afile.read_text() == "keep me"
