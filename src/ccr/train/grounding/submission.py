"""``ccr evaluate --submission FILE --gt FILE``: score a predictions file without its model.

Lighthouse and moment_detr let a user score a QVHighlights-format submission against ground truth;
this does the same with ``ccr.train.grounding.metrics`` (numerically the standard evaluation) and
writes what the standalone eval writes: the metrics dict (``brief`` first, then the sections in key
order) as JSON indented by 4, by default beside the submission as ``{name}_metrics.json`` (the
name moment_detr's and CG-DETR's trainers give it). Both files are checked line by line before any
number is computed, so a malformed line is one error naming ``FILE:LINE`` and what is wrong with
it, never a crash inside the metrics. As in the standard eval, both files must cover the same qids.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ccr.errors import CcrError
from ccr.paths import output_file, regular_file
from ccr.pipeline import atomic
from ccr.train.grounding.metrics import evaluate_qvhighlights


def _numbers(value: Any, width: int | None = None) -> bool:
    ok = isinstance(value, list) and all(isinstance(x, int | float) and not isinstance(x, bool)
                                         and math.isfinite(x) for x in value)
    return ok and (width is None or len(value) == width)


def _check_prediction(row: dict[str, Any]) -> str | None:
    if "pred_relevant_windows" not in row and "pred_saliency_scores" not in row:
        return "neither pred_relevant_windows nor pred_saliency_scores"
    windows = row.get("pred_relevant_windows", [])
    if not isinstance(windows, list) or not all(_numbers(w, 3) for w in windows):
        return "pred_relevant_windows must be a list of [start, end, score] numbers"
    if not _numbers(row.get("pred_saliency_scores", [])):
        return "pred_saliency_scores must be a list of numbers, one per clip"
    return None


def _check_ground_truth(row: dict[str, Any]) -> str | None:
    windows = row.get("relevant_windows")
    if not isinstance(windows, list) or not windows or not all(_numbers(w, 2) for w in windows):
        return "relevant_windows must be a non-empty list of [start, end] numbers"
    if "duration" in row and not _numbers([row["duration"]]):
        return "duration must be a number of seconds"
    if "saliency_scores" not in row:
        return None
    ids, scores = row.get("relevant_clip_ids"), row["saliency_scores"]
    if "duration" not in row or not isinstance(ids, list) or not all(isinstance(i, int) and i >= 0 for i in ids):
        return "saliency_scores need duration and relevant_clip_ids (clip indices)"
    if not isinstance(scores, list) or len(scores) != len(ids) or not all(_numbers(s) and s for s in scores):
        return "saliency_scores needs one list of annotator scores per relevant clip id"
    return None


def read_rows(path: Path | str, what: str) -> list[dict[str, Any]]:
    """The entries of a submission (``what="submission"``) or ground-truth jsonl, each line checked."""
    path = Path(path)
    check = _check_prediction if what == "submission" else _check_ground_truth
    rows: list[dict[str, Any]] = []
    first_line: dict[Any, int] = {}
    regular_file(path, f"{what} file")  # a FIFO would block the read and /dev/zero never end it
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CcrError(f"cannot read the {what} file {path} ({e}); pass a jsonl file") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise CcrError(f"{path}:{n}: not valid JSON ({e.msg}); fix or remove the line") from None
        problem = ("not a JSON object" if not isinstance(row, dict)
                   else "no qid" if not isinstance(row.get("qid"), int | str) or isinstance(row["qid"], bool)
                   else f"qid {row['qid']!r} again (first on line {first_line[row['qid']]})" if row["qid"] in first_line
                   else check(row))
        if problem:
            raise CcrError(f"{path}:{n}: {problem} in this {what} line; fix or remove the line")
        first_line[row["qid"]] = n
        rows.append(row)
    if not rows:
        raise CcrError(f"{path} holds no {what} lines")
    return rows


def evaluate_files(submission: Path | str, ground_truth: Path | str, *, out: Path | str | None = None,
                   clip_length: float = 2.0) -> tuple[dict[str, Any], Path]:
    """(metrics, where they were written): the standard QVHighlights metrics of a submission file."""
    preds, gts = read_rows(submission, "submission"), read_rows(ground_truth, "ground truth")
    beside = Path(submission).with_name(Path(submission).stem + "_metrics.json")
    path = output_file(out if out is not None else beside, "--out")
    pred_qids, gt_qids = {p["qid"] for p in preds}, {g["qid"] for g in gts}
    if pred_qids != gt_qids:
        missing, extra = sorted(gt_qids - pred_qids, key=str), sorted(pred_qids - gt_qids, key=str)
        raise CcrError(f"{submission} and {ground_truth} cover different queries ({len(missing)} ground-truth qids "
                       f"without a prediction, e.g. {missing[:3]}; {len(extra)} predicted qids not in the ground "
                       f"truth, e.g. {extra[:3]}): predict every ground-truth query, as the standard eval requires")
    metrics = evaluate_qvhighlights(preds, gts, clip_length=clip_length)
    atomic.write_bytes(path, json.dumps(metrics, indent=4).encode("utf-8"))
    return metrics, path
