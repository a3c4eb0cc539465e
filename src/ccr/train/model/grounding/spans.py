"""1-D span geometry on the normalised timeline, the anchor clustering, and optional NMS.

Spans are (centre, width) in 0..1 inside the model and (start, end) for overlap measures.
"""

from __future__ import annotations

import numpy as np
import torch


def cw_to_se(spans: torch.Tensor) -> torch.Tensor:
    c, w = spans.unbind(-1)
    return torch.stack([c - w / 2, c + w / 2], dim=-1)


def pairwise_iou_giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and generalised IoU of every (start, end) span in ``a [..., N, 2]`` with ``b [..., M, 2]``."""
    a, b = a[..., :, None, :], b[..., None, :, :]
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    iou = inter / union.clamp(min=1e-6)
    hull = torch.maximum(a[..., 1], b[..., 1]) - torch.minimum(a[..., 0], b[..., 0])
    return iou, iou - (hull - union) / hull.clamp(min=1e-6)


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def kmeans_anchors(spans: np.ndarray, k: int, *, seed: int, iters: int = 50) -> np.ndarray:
    """``k`` (centre, width) anchors: k-means++ seeding then Lloyd steps over the training moments.

    RGTR initialises its anchor pairs by clustering ground-truth spans (reference/video_methods.md
    §2.2); with fewer distinct spans than ``k`` the rest fall back to a uniform grid.
    """
    points = np.unique(np.asarray(spans, np.float64).reshape(-1, 2), axis=0)
    if len(points) < k:
        return np.concatenate([points, uniform_anchors(k - len(points))]).astype(np.float32)
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):  # k-means++: the next seed is drawn in proportion to the squared distance
        d = np.min(((points[:, None] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(points[rng.choice(len(points), p=d / d.sum())])
    c = np.asarray(centres)
    for _ in range(iters):
        assign = ((points[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        moved = np.array([points[assign == j].mean(0) if np.any(assign == j) else c[j] for j in range(k)])
        if np.allclose(moved, c):
            break
        c = moved
    order = np.lexsort((c[:, 1], c[:, 0]))  # by centre, then width: a stable query order
    return np.clip(c[order], 1e-3, 1.0).astype(np.float32)


def uniform_anchors(k: int) -> np.ndarray:
    """Evenly spaced centres with widths of one slot: the fallback when there is nothing to cluster."""
    centres = (np.arange(k) + 0.5) / k
    return np.stack([centres, np.full(k, 1.0 / k)], axis=1).astype(np.float32)


def round_windows(windows: np.ndarray, clip_length: float, duration: float) -> np.ndarray:
    """``[start, end, ...]`` rows with start and end rounded to the nearest multiple of ``clip_length``
    seconds (halves to even) and kept within ``[0, duration]``; other columns (the score) untouched.

    The QVHighlights post-processing (Moment-DETR's, clip 2 s): the model predicts in continuous
    time, but the ground truth and the saliency labels live on whole clips, so a window is
    reported on the clip grid. Moment-DETR clips to [0, 150] s (every QVHighlights video's
    length) before rounding; the video's own duration plays that part here, applied after
    rounding too so that a rounded end never passes the video's end.
    """
    out = np.array(windows, dtype=np.float64, copy=True)
    out[:, :2] = np.clip(np.round(np.clip(out[:, :2], 0.0, duration) / clip_length) * clip_length, 0.0, duration)
    return out


def nms(windows: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression of ``[start, end, score]`` rows sorted by score (descending)."""
    kept: list[int] = []
    for i in range(len(windows)):
        s, e = windows[i, :2]
        suppressed = False
        for j in kept:
            inter = max(0.0, min(e, windows[j, 1]) - max(s, windows[j, 0]))
            union = (e - s) + (windows[j, 1] - windows[j, 0]) - inter
            if union > 0 and inter / union > threshold:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return windows[kept]
