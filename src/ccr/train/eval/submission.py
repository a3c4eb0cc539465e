"""``ccr evaluate --submission FILE --gt FILE``: score a predictions file without its model.

Lighthouse and moment_detr let a user score a QVHighlights-format submission against ground truth;
this does the same with ``ccr.train.eval.grounding_metrics`` (numerically the standard evaluation) and
writes what the standalone eval writes: the metrics dict (``brief`` first, then the sections in key
order) as JSON indented by 4, by default beside the submission as ``{name}_metrics.json`` (the
name moment_detr's and CG-DETR's trainers give it). Both files are checked line by line before any
number is computed, so a malformed line is one error naming ``FILE:LINE`` and what is wrong with
it, never a crash inside the metrics nor a number computed from a line the standard evaluation
cannot score as meant: windows are ``[start, end, score]`` with ``0 <= start <= end``, sorted by
score (R1 reads the first); saliency has one score per clip of the video as the ground truth
defines it (``duration / clip_length``, the last partial clip optional); each qid is in the
ground truth and on the same video; every line carries the prediction fields the first one does
(the standard decides from it what to score). As in the standard eval, both files must cover the
same qids.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from ccr.corpus import atomic
from ccr.errors import CcrError
from ccr.paths import output_file, regular_file
from ccr.train.eval.grounding_metrics import evaluate_qvhighlights

Line = tuple[int, dict[str, Any]]  # a jsonl entry and its line number
PREDICTION_FIELDS = ("pred_relevant_windows", "pred_saliency_scores")


def _numbers(value: Any, width: int | None = None) -> bool:
    ok = isinstance(value, list) and all(isinstance(x, int | float) and not isinstance(x, bool)
                                         and math.isfinite(x) for x in value)
    return ok and (width is None or len(value) == width)


def _misordered(windows: list[list[float]], key: str) -> str | None:
    """The first window that does not lie forward in time from 0 s (windows already checked as numbers)."""
    for i, (start, end, *_) in enumerate(windows):
        if not 0 <= start <= end:
            wrong = "starts before 0 s" if start < 0 else "ends before it starts"
            return f"{key}[{i}] = {json.dumps(windows[i])} {wrong} (seconds from the video's start, start <= end)"
    return None


def _check_prediction(row: dict[str, Any]) -> str | None:
    if not any(key in row for key in PREDICTION_FIELDS):
        return "neither pred_relevant_windows nor pred_saliency_scores"
    windows = row.get("pred_relevant_windows", [])
    if not isinstance(windows, list) or not all(_numbers(w, 3) for w in windows):
        return "pred_relevant_windows must be a list of [start, end, score] numbers"
    scores = [w[2] for w in windows]
    if any(later > earlier for earlier, later in itertools.pairwise(scores)):
        return "pred_relevant_windows must be sorted by score, highest first (R1 reads the first window)"
    if not _numbers(row.get("pred_saliency_scores", [])):
        return "pred_saliency_scores must be a list of numbers, one per clip"
    return _misordered(windows, "pred_relevant_windows")


def _check_ground_truth(row: dict[str, Any]) -> str | None:
    windows = row.get("relevant_windows")
    if not isinstance(windows, list) or not windows or not all(_numbers(w, 2) for w in windows):
        return "relevant_windows must be a non-empty list of [start, end] numbers"
    if "duration" in row and not (_numbers([row["duration"]]) and row["duration"] > 0):
        return "duration must be a positive number of seconds"
    if "saliency_scores" not in row:
        return _misordered(windows, "relevant_windows")
    ids, scores = row.get("relevant_clip_ids"), row["saliency_scores"]
    if "duration" not in row or not isinstance(ids, list) or not all(isinstance(i, int) and i >= 0 for i in ids):
        return "saliency_scores need duration and relevant_clip_ids (clip indices)"
    if not isinstance(scores, list) or len(scores) != len(ids) or not all(_numbers(s) and s for s in scores):
        return "saliency_scores needs one list of annotator scores per relevant clip id"
    if len({len(s) for s in scores}) > 1:
        return "saliency_scores needs the same number of annotators for every clip"
    return _misordered(windows, "relevant_windows")


def _clips(truth: dict[str, Any], clip_length: float) -> tuple[int, int]:
    """How many saliency scores a video takes: its whole clips, or with its last partial one; the
    standard's label array (``int(duration / clip_length)``) grows to cover every relevant clip id."""
    span, past = truth["duration"] / clip_length, max(truth["relevant_clip_ids"], default=-1) + 1
    return max(int(span), past), max(math.ceil(span), past)


def _against_truth(row: dict[str, Any], truth: dict[str, Any], fields: tuple[str, ...], first: int,
                   clip_length: float) -> str | None:
    """What is wrong with a prediction line given its ground truth and the prediction fields of line ``first``."""
    have = tuple(key for key in PREDICTION_FIELDS if key in row)
    if have != fields:
        return (f"this line has {' and '.join(have)} where line {first} has {' and '.join(fields)}: give every line "
                f"the same prediction fields (the standard eval takes them from the first line)")
    if "vid" in row and "vid" in truth and row["vid"] != truth["vid"]:
        return (f"vid {row['vid']!r} is not the ground truth's video {truth['vid']!r} for qid {row['qid']!r}: "
                f"pair the submission with its own ground truth")
    if "pred_saliency_scores" in row and "saliency_scores" in truth:
        low, high = _clips(truth, clip_length)
        given = len(row["pred_saliency_scores"])
        if not low <= given <= high:
            clips = str(low) if low == high else f"{low}-{high}"
            return (f"{given} pred_saliency_scores, but the ground truth's video of qid {row['qid']!r} has {clips} "
                    f"clips ({truth['duration']:g} s in {clip_length:g} s clips): give one score per clip")
    return None


def _unknown_qid(qid: Any, known: dict[Any, Any], ground_truth: Path | str) -> str:
    same_text = [q for q in known if str(q) == str(qid)]
    hint = f" (it has {same_text[0]!r}: write qids as the ground truth does)" if same_text else ""
    return f"qid {qid!r} is not in the ground truth {ground_truth}{hint}; fix the qid or remove the line"


def _match_lines(preds: list[Line], truth: list[Line], submission: Path | str, ground_truth: Path | str,
                clip_length: float) -> None:
    """Refuse, naming ``FILE:LINE``, the first prediction its ground truth cannot score, or the first
    ground-truth query without a prediction."""
    by_qid = {row["qid"]: row for _, row in truth}
    first, fields = preds[0][0], tuple(key for key in PREDICTION_FIELDS if key in preds[0][1])
    for n, row in preds:
        problem = (_unknown_qid(row["qid"], by_qid, ground_truth) if row["qid"] not in by_qid
                   else _against_truth(row, by_qid[row["qid"]], fields, first, clip_length))
        if problem:
            raise CcrError(f"{submission}:{n}: {problem}")
    predicted = {row["qid"] for _, row in preds}
    missing = [(n, row["qid"]) for n, row in truth if row["qid"] not in predicted]
    if missing:
        n, qid = missing[0]
        more = f" (nor do {len(missing) - 1} more ground-truth qids)" if len(missing) > 1 else ""
        raise CcrError(f"{ground_truth}:{n}: qid {qid!r} has no prediction in {submission}{more}: predict every "
                       f"ground-truth query, as the standard eval requires")


def _check_annotators(truth: list[Line], ground_truth: Path | str) -> None:
    """Highlight labels are binarised per annotator across queries, so every query needs as many."""
    labelled = [(n, len(row["saliency_scores"][0])) for n, row in truth if row.get("saliency_scores")]
    odd = next(((n, k) for n, k in labelled if k != labelled[0][1]), None)
    if odd:
        raise CcrError(f"{ground_truth}:{odd[0]}: saliency_scores by {odd[1]} annotators where line {labelled[0][0]} "
                       f"has {labelled[0][1]}: give every query the same annotators")


def read_rows(path: Path | str, what: str) -> list[Line]:
    """The entries of a submission (``what="submission"``) or ground-truth jsonl with their line
    numbers, each line checked on its own."""
    path = Path(path)
    check = _check_prediction if what == "submission" else _check_ground_truth
    rows: list[Line] = []
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
        rows.append((n, row))
    if not rows:
        raise CcrError(f"{path} holds no {what} lines")
    return rows


def evaluate_files(submission: Path | str, ground_truth: Path | str, *, out: Path | str | None = None,
                   clip_length: float = 2.0) -> tuple[dict[str, Any], Path]:
    """(metrics, where they were written): the standard QVHighlights metrics of a submission file."""
    preds, truth = read_rows(submission, "submission"), read_rows(ground_truth, "ground truth")
    beside = Path(submission).with_name(Path(submission).stem + "_metrics.json")
    path = output_file(out if out is not None else beside, "--out")
    _check_annotators(truth, ground_truth)
    _match_lines(preds, truth, submission, ground_truth, clip_length)
    metrics = evaluate_qvhighlights([row for _, row in preds], [row for _, row in truth], clip_length=clip_length)
    atomic.write_bytes(path, json.dumps(metrics, indent=4).encode("utf-8"))
    return metrics, path
