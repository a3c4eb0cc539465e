"""Grounding predictions and their scores, for validation and ``ccr evaluate``.

Predictions follow the QVHighlights submission format (reference/video_methods.md §2.5):
``qid``, ``query``, ``vid``, ``pred_relevant_windows`` ([start, end, score] in seconds, sorted
by score, start and end rounded to whole clips as the QVHighlights post-processing does),
``pred_saliency_scores`` (one per clip); ``ccr.train.eval.grounding_metrics`` scores them. No NMS
unless the method's ``nms_threshold`` > 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ccr.corpus.views import parse_derived_id
from ccr.train.data.batching import to_device
from ccr.train.data.grounding import GroundingEvalData, qid_value
from ccr.train.eval.grounding_metrics import (
    evaluate_qvhighlights,
    evaluate_single_window,
)
from ccr.train.model.grounding.spans import cw_to_se, nms, round_windows
from ccr.train.model.inference import eval_mode

if TYPE_CHECKING:
    from ccr.train.model.methods.base import GroundingMethod

SELECT_KEYS = ("MR-full-mAP", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-R1@0.5", "MR-full-R1@0.7")
WINDOW_DECIMALS = 4  # seconds and scores in the predictions file (as Moment-DETR writes them)


def predict(model: GroundingMethod, data: GroundingEvalData, *, batch_size: int, device: torch.device) -> list[dict[str, Any]]:
    """Submission rows for every query of ``data``, windows in seconds sorted by score."""
    threshold = model.cfg.nms_threshold
    q, rows = data.queries, []
    with eval_mode(model):
        for idx, batch in data.batches(batch_size):
            out = model.predict(to_device(batch, device))
            spans = cw_to_se(out["spans"]).clamp(0, 1).float().cpu().numpy()
            scores = out["scores"].float().cpu().numpy()
            saliency = out["saliency"].float().cpu().numpy()
            for k, i in enumerate(idx):
                line = data.lines[i]
                windows = np.concatenate([spans[k] * line.seconds, scores[k][:, None]], axis=1).astype(np.float64)
                windows = round_windows(windows, data.clip_len, line.seconds)
                windows = windows[np.argsort(-windows[:, 2], kind="stable")]
                if threshold > 0:
                    windows = nms(windows, threshold)
                clip_scores = saliency[k, :line.clips].astype(np.float64)
                rows.append({"qid": qid_value(q.qid[i]), "query": q.text[i], "vid": q.media_id[i],
                             "pred_relevant_windows": np.round(windows, WINDOW_DECIMALS).tolist(),
                             "pred_saliency_scores": np.round(clip_scores, WINDOW_DECIMALS).tolist()})
    return rows


def score(rows: list[dict[str, Any]], data: GroundingEvalData) -> tuple[dict[str, float], dict[str, Any]]:
    """(brief, detail): the QVHighlights metrics; with one moment per query also R1@0.3 and mIoU."""
    gts = data.ground_truth()
    qvh = evaluate_qvhighlights(rows, gts, clip_length=data.clip_len)
    brief, detail = dict(qvh["brief"]), {"qvhighlights": qvh}
    if all(len(g["relevant_windows"]) == 1 for g in gts):
        single = evaluate_single_window(rows, gts)
        brief |= single["brief"]
        detail["single_window"] = single
    return brief, detail


def mt_key(caption_ids: list[str]) -> str | None:
    """The MT model of translated queries, from their derived ids ``{parent}|mt:{lang}:{model_key}``."""
    keys = {d.model_key for d in map(parse_derived_id, caption_ids) if d and d.origin == "mt"}
    return ",".join(sorted(keys)) or None


def query_source(lang: str, caption_ids: list[str]) -> str:
    """english, human (captions written in ``lang``) or mt (machine-translated from English)."""
    if lang == "en":
        return "english"
    derived = [parse_derived_id(c) for c in caption_ids]
    return "mt" if all(d and d.origin == "mt" for d in derived) else "human"
