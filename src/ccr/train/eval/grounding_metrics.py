"""Moment retrieval and highlight detection metrics, numerically the standard QVHighlights eval.

Grounding numbers are only worth reporting if they compare with the papers and the released metric
files, so this reproduces moment_detr's ``standalone_eval`` (reference/video_methods.md §2.6) in
every rule that moves a number, and returns its key names and nesting (``brief``, ``full``,
``short``/``middle``/``long``, ``HL-min-*``). The rules, including the quirks kept on purpose:

* R1@t takes the *first* window in list order (the submission contract says lists are sorted by
  score; it is not re-sorted) against the ground-truth window it overlaps most.
* mAP keeps the first 10 windows, then orders them by score; equal scores keep list order.
  A window is a true positive when some unmatched ground-truth window has IoU >= t; it takes the
  highest-IoU one, and among equal IoUs the later window in the list (the standard's reversed
  ``argsort``). AP is the VOC area under the precision envelope, averaged over queries per t.
* Windows are not clipped to the video: a window past the end just has a larger union.
* Length buckets keep each query's ground-truth windows with length in (0,10], (10,30],
  (30,150] s and drop queries left with none; ``full`` keeps everything. An empty bucket is left
  out (the standard prints NaN).
* Highlight labels cover ``int(duration / clip_length)`` clips x annotators, zero outside
  ``relevant_clip_ids``, binarised at >= 2/3/4 (Fair/Good/VeryGood). HIT@1 takes the first clip
  with the highest predicted saliency (a hit if any annotator marks it); AP pads predictions with
  zeros or truncates them to the clip count, treats equal saliency scores as one threshold, and
  averages the envelope precision at each threshold that adds a positive (sklearn's
  precision-recall curve as the standard uses it); no positive clip -> 0.
* Percentages rounded to 2 decimals, as the standard writes them (``decimals=None`` keeps all).

Where the standard crashes, this decides: a query without predicted windows scores AP 0 and misses
R1 (the standard drops it from mAP and fails on R1); an empty saliency list misses HIT@1; clip ids
past ``duration`` extend the label array; highlight metrics cover only queries whose ground truth
has saliency labels, and are absent when none has.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ccr.errors import CcrError

MR_THRESHOLDS = tuple(t / 100 for t in range(50, 100, 5))  # 0.5, 0.55, ..., 0.95
SINGLE_WINDOW_THRESHOLDS = (0.3, 0.5, 0.7)
MAX_PRED_WINDOWS = 10
LENGTH_RANGES = {"short": (0.0, 10.0), "middle": (10.0, 30.0), "long": (30.0, 150.0)}
SALIENCY_LEVELS = {"Fair": 2, "Good": 3, "VeryGood": 4}

Rows = Sequence[Mapping[str, Any]]  # parsed jsonl entries, predictions or ground truth


def temporal_iou(spans_a: Any, spans_b: Any) -> np.ndarray:
    """IoU of every span in ``spans_a`` (N, 2) with every span in ``spans_b`` (M, 2) -> (N, M).

    Spans are [start, end] in seconds; disjoint spans and zero-length unions give 0.
    """
    a = np.asarray(spans_a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(spans_b, dtype=np.float64).reshape(-1, 2)
    return _iou(a[:, None, :], b[None, :, :])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a submission or annotation file; blank lines are skipped."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CcrError(
                    f"{path}:{n} is not valid JSON ({e.msg}): fix or remove the line"
                ) from e
    return rows


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def write_predictions(
    path: str | os.PathLike[str], predictions: Iterable[Mapping[str, Any]]
) -> None:
    """Write a submission jsonl, windows sorted by score descending as the format requires.

    R1 reads the first window, so sorting here keeps every file we write valid; equal scores keep
    their order. Written to a temporary name and renamed, so a crash never leaves half a file.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for pred in predictions:
                if "qid" not in pred:
                    raise CcrError(f"a prediction for {path} has no 'qid'")
                row = dict(pred)
                if "pred_relevant_windows" in row:
                    w = np.asarray(row["pred_relevant_windows"], dtype=np.float64).reshape(-1, 3)
                    row["pred_relevant_windows"] = w[np.argsort(-w[:, 2], kind="stable")].tolist()
                f.write(json.dumps(row, default=_plain) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _by_qid(rows: Rows, what: str) -> dict[Any, Mapping[str, Any]]:
    out: dict[Any, Mapping[str, Any]] = {}
    for row in rows:
        if "qid" not in row:
            raise CcrError(f"an entry of the {what} has no 'qid'")
        if row["qid"] in out:
            raise CcrError(f"qid {row['qid']!r} occurs twice in the {what}: keep one entry")
        out[row["qid"]] = row
    return out


def _align(predictions: Rows, ground_truth: Rows, strict: bool) -> tuple[Rows, Rows]:
    """Pair predictions with ground truth by qid, in ground-truth order."""
    pred_by_qid = _by_qid(predictions, "predictions")
    gt_qids = list(_by_qid(ground_truth, "ground truth"))
    missing = [q for q in gt_qids if q not in pred_by_qid]
    extra = sorted(set(pred_by_qid) - set(gt_qids), key=str)
    if strict and (missing or extra):
        raise CcrError(
            f"predictions and ground truth cover different queries ({len(missing)} without a "
            f"prediction, e.g. {missing[:3]}; {len(extra)} unknown, e.g. {extra[:3]}): "
            "evaluate the shared ones with strict=False"
        )
    gts = [g for g in ground_truth if g["qid"] in pred_by_qid]
    if not gts:
        raise CcrError("no query has both a prediction and ground truth: nothing to evaluate")
    return [pred_by_qid[g["qid"]] for g in gts], gts


def _pred_windows(pred: Mapping[str, Any]) -> np.ndarray:
    w = np.asarray(pred.get("pred_relevant_windows", []), dtype=np.float64)
    if w.size and (w.ndim != 2 or w.shape[1] < 3):
        raise CcrError(
            f"qid {pred['qid']!r}: pred_relevant_windows must be [start, end, score] lists"
        )
    return w[:, :3] if w.size else np.zeros((0, 3))


def _gt_windows(gt: Mapping[str, Any]) -> np.ndarray:
    w = np.asarray(gt.get("relevant_windows", []), dtype=np.float64)
    if w.size == 0 or w.ndim != 2 or w.shape[1] != 2:
        raise CcrError(f"qid {gt['qid']!r}: relevant_windows must hold at least one [start, end]")
    return w


def _pad(arrays: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged (k_i, width) arrays into (Q, K, width) plus a (Q, K) validity mask."""
    k = max((len(a) for a in arrays), default=0)
    out = np.zeros((len(arrays), max(k, 1), width))
    mask = np.zeros((len(arrays), max(k, 1)), dtype=bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        mask[i, : len(a)] = True
    return out, mask


def _top1_iou(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> np.ndarray:
    """IoU of each query's first window with its best-matching ground-truth window (0 if none)."""
    first = np.array([p[0, :2] if len(p) else (0.0, 0.0) for p in preds])
    gt, gt_mask = _pad(gts, 2)
    iou = np.where(gt_mask, _iou(first[:, None, :], gt), 0.0).max(axis=1)
    return np.where([len(p) > 0 for p in preds], iou, 0.0)


def _moment_ap(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], thresholds: np.ndarray
) -> np.ndarray:
    """(Q, T) detection AP of each query at each IoU threshold."""
    ranked = []
    for p in preds:
        p = p[:MAX_PRED_WINDOWS]
        ranked.append(p[np.argsort(-p[:, 2], kind="stable")])
    pred, pred_mask = _pad(ranked, 3)
    gt, gt_mask = _pad(gts, 2)
    n_q, n_p, n_g = len(preds), pred.shape[1], gt.shape[1]
    iou = np.where(gt_mask[:, None, :], _iou(pred[:, :, None, :2], gt[:, None, :, :]), -1.0)

    # Greedy matching in score order, one prediction step at a time for every query and
    # threshold together: take the best unmatched ground truth, the later one on equal IoU.
    locked = np.zeros((n_q, len(thresholds), n_g), dtype=bool)
    tp = np.zeros((n_q, len(thresholds), n_p), dtype=bool)
    rows = np.arange(n_q)[:, None]
    cols = np.arange(len(thresholds))[None, :]
    for j in range(n_p):
        step = iou[:, None, j, :]
        cand = (step >= thresholds[None, :, None]) & ~locked & pred_mask[:, None, j, None]
        best = n_g - 1 - np.argmax(np.where(cand, step, -np.inf)[..., ::-1], axis=-1)
        hit = cand.any(axis=-1)
        tp[:, :, j] = hit
        locked[rows, cols, best] |= hit
    fp = pred_mask[:, None, :] & ~tp

    tp_sum = np.cumsum(tp, axis=-1)
    seen = tp_sum + np.cumsum(fp, axis=-1)
    precision = np.divide(tp_sum, seen, out=np.zeros(tp_sum.shape), where=seen > 0)
    recall = tp_sum / gt_mask.sum(axis=1)[:, None, None]
    envelope = np.maximum.accumulate(precision[..., ::-1], axis=-1)[..., ::-1]
    return (np.diff(recall, axis=-1, prepend=0.0) * envelope).sum(axis=-1)


def _saliency_labels(gt: Mapping[str, Any], clip_length: float) -> np.ndarray:
    if "relevant_clip_ids" not in gt or "duration" not in gt:
        raise CcrError(
            f"qid {gt['qid']!r} has saliency_scores but no relevant_clip_ids or duration"
        )
    ids = np.asarray(gt["relevant_clip_ids"], dtype=np.intp)
    scores = np.asarray(gt["saliency_scores"], dtype=np.float64)
    if scores.ndim != 2 or len(scores) != len(ids):
        raise CcrError(
            f"qid {gt['qid']!r}: saliency_scores needs one [a1, a2, ...] list per relevant clip"
        )
    n_clips = max(int(gt["duration"] / clip_length), int(ids.max(initial=-1)) + 1)
    labels = np.zeros((n_clips, scores.shape[1]))
    labels[ids] = scores
    return labels


def _saliency_ap(scores: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(Q, A) ranking AP of predicted clip scores (Q, C) against binary labels (Q, A, C)."""
    n_c = scores.shape[1]
    order = np.argsort(np.where(valid, -scores, np.inf), axis=1, kind="stable")
    s = np.take_along_axis(scores, order, axis=1)
    v = np.take_along_axis(valid, order, axis=1)
    y = np.take_along_axis(labels, order[:, None, :], axis=2)
    pos = np.arange(n_c)
    nxt_differs = np.ones_like(v)
    nxt_differs[:, :-1] = ~v[:, 1:] | (s[:, 1:] != s[:, :-1])
    is_end = v & nxt_differs  # last clip of a group of equal scores = one threshold
    is_start = v & np.concatenate([np.ones((len(v), 1), bool), s[:, 1:] != s[:, :-1]], axis=1)
    start = np.maximum.accumulate(np.where(is_start, pos, 0), axis=1)

    tp = np.cumsum(y, axis=2)
    tp_before = np.take_along_axis(tp - y, start[:, None, :], axis=2)
    precision = np.where(is_end[:, None, :], tp / (pos + 1), 0.0)
    envelope = np.maximum.accumulate(precision[..., ::-1], axis=2)[..., ::-1]
    counted = is_end[:, None, :] & (tp > tp_before)
    n = counted.sum(axis=2)
    return np.divide((envelope * counted).sum(axis=2), n, out=np.zeros(n.shape), where=n > 0)


def _highlight(preds: Rows, gts: Rows, clip_length: float) -> dict[str, dict[str, float]]:
    """Per saliency level: (HIT@1, mAP) as fractions."""
    labels = [_saliency_labels(g, clip_length) for g in gts]
    if len({lab.shape[1] for lab in labels}) > 1:
        raise CcrError("saliency_scores must have the same number of annotators for every query")
    pred_scores = [
        np.asarray(p.get("pred_saliency_scores", []), dtype=np.float64).reshape(-1) for p in preds
    ]
    n_c = max(len(lab) for lab in labels)
    scores = np.zeros((len(gts), n_c))
    valid = np.zeros((len(gts), n_c), dtype=bool)
    for i, (ps, lab) in enumerate(zip(pred_scores, labels, strict=True)):
        m = min(len(ps), len(lab))
        scores[i, :m] = ps[:m]  # shorter predictions are padded with 0, longer ones truncated
        valid[i, : len(lab)] = True
    top = [int(np.argmax(ps)) if len(ps) else -1 for ps in pred_scores]

    out = {}
    for name, level in SALIENCY_LEVELS.items():
        binary = [(lab >= level).astype(np.float64) for lab in labels]
        hits = [b[t].max() if 0 <= t < len(b) else 0.0 for b, t in zip(binary, top, strict=True)]
        stacked = np.zeros((len(gts), binary[0].shape[1], n_c))
        for i, b in enumerate(binary):
            stacked[i, :, : len(b)] = b.T
        ap = _saliency_ap(scores, valid, stacked)
        out[name] = {"hit1": float(np.mean(hits)), "map": float(np.mean(ap))}
    return out


def _thd_key(t: float) -> str:
    return str(round(float(t), 2))


def _pct(x: float, decimals: int | None) -> float:
    return round(100.0 * float(x), decimals) if decimals is not None else 100.0 * float(x)


def _moment_sections(preds: Rows, gts: Rows, decimals: int | None) -> dict[str, Any]:
    """The ``full`` section plus each non-empty length bucket."""
    pred_w = [_pred_windows(p) for p in preds]
    gt_w = [_gt_windows(g) for g in gts]
    buckets = {"full": (pred_w, gt_w)}
    for name, (lo, hi) in LENGTH_RANGES.items():
        in_range = [g[(g[:, 1] - g[:, 0] > lo) & (g[:, 1] - g[:, 0] <= hi)] for g in gt_w]
        kept = [(p, g) for p, g in zip(pred_w, in_range, strict=True) if len(g)]
        if kept:
            buckets[name] = ([p for p, _ in kept], [g for _, g in kept])
    thresholds = np.array(MR_THRESHOLDS)
    sections = {}
    for name, (p, g) in buckets.items():
        ap = _moment_ap(p, g, thresholds).mean(axis=0)
        iou = _top1_iou(p, g)
        mr_map = {_thd_key(t): _pct(a, decimals) for t, a in zip(thresholds, ap, strict=True)}
        mr_map["average"] = _pct(ap.mean(), decimals)
        mr_r1 = {_thd_key(t): _pct(np.mean(iou >= t), decimals) for t in thresholds}
        sections[name] = {"MR-mAP": mr_map, "MR-R1": mr_r1}
    return sections


def evaluate_qvhighlights(
    predictions: Rows,
    ground_truth: Rows,
    *,
    strict: bool = True,
    clip_length: float = 2.0,
    decimals: int | None = 2,
) -> dict[str, Any]:
    """The standard QVHighlights metrics, keyed and nested exactly like its metrics json.

    ``strict`` requires the same qids on both sides (the standard's ``match_number``); with
    ``strict=False`` only the shared ones are scored. Moment metrics need ``pred_relevant_windows``
    in some prediction, highlight metrics ``pred_saliency_scores`` in some prediction and
    ``relevant_clip_ids``/``saliency_scores``/``duration`` in the ground truth.
    """
    preds, gts = _align(predictions, ground_truth, strict)
    sections: dict[str, Any] = {}
    brief: dict[str, float] = {}
    if any("pred_relevant_windows" in p for p in preds):
        sections = _moment_sections(preds, gts, decimals)
        full = sections["full"]
        mr_brief = {
            "MR-full-mAP": full["MR-mAP"]["average"],
            "MR-full-mAP@0.5": full["MR-mAP"]["0.5"],
            "MR-full-mAP@0.75": full["MR-mAP"]["0.75"],
            "MR-full-R1@0.5": full["MR-R1"]["0.5"],
            "MR-full-R1@0.7": full["MR-R1"]["0.7"],
        }
        for name in LENGTH_RANGES:
            if name in sections:
                mr_brief[f"MR-{name}-mAP"] = sections[name]["MR-mAP"]["average"]
        brief |= dict(sorted(mr_brief.items()))

    labelled = [(p, g) for p, g in zip(preds, gts, strict=True) if "saliency_scores" in g]
    if labelled and any("pred_saliency_scores" in p for p in preds):
        hl = _highlight([p for p, _ in labelled], [g for _, g in labelled], clip_length)
        for name, m in hl.items():
            section = {"HL-mAP": _pct(m["map"], decimals), "HL-Hit1": _pct(m["hit1"], decimals)}
            sections[f"HL-min-{name}"] = section
            brief[f"HL-min-{name}-mAP"] = section["HL-mAP"]
            brief[f"HL-min-{name}-Hit1"] = section["HL-Hit1"]
    return {"brief": brief} | dict(sorted(sections.items()))


def evaluate_single_window(
    predictions: Rows,
    ground_truth: Rows,
    *,
    thresholds: Sequence[float] = SINGLE_WINDOW_THRESHOLDS,
    strict: bool = True,
    decimals: int | None = 2,
) -> dict[str, Any]:
    """Charades-STA / TACoS metrics: R1@t and mIoU of the top-1 window, CG-DETR's key names.

    These datasets have one ground-truth window per query; with several, the best-overlapping one
    counts, as in the QVHighlights R1.
    """
    preds, gts = _align(predictions, ground_truth, strict)
    iou = _top1_iou([_pred_windows(p) for p in preds], [_gt_windows(g) for g in gts])
    r1 = {_thd_key(t): _pct(np.mean(iou >= t), decimals) for t in thresholds}
    miou = _pct(iou.mean(), decimals)
    brief = {f"MR-full-R1@{k}": v for k, v in r1.items()} | {"MR-full-mIoU": miou}
    return {"brief": brief, "full": {"MR-R1": r1, "MR-mIoU": miou}}
