"""Retrieval metrics (R@K, MedR, MeanR, mAP, SumR), NRCCR's translate-test fusion, and their table.

Evaluation runs after every validation epoch on up to tens of thousands of captions, so everything
here is a few array operations over the whole similarity matrix: no Python loop over queries.

Protocol (reference/ccr_methods.md §1.7, §6.1; reference/video_methods.md §1.5):

* ``sim`` has one row per caption and one column per media item; higher means more similar.
* Text→visual: every caption is a query with exactly one relevant item, its own.
* Visual→text: every media item that has at least one caption is a query; its rank is that of
  its best-ranked caption, and its AP runs over all its captions. A media item without captions
  stays in the gallery as a distractor for text→visual but is not a visual→text query: it has
  nothing to find, and NRCCR's code, which scores it as a miss, would penalise a model for corpus
  filtering.
* Ranks are 1-based. Ties count against the relevant item: a caption tied with a wrong item is
  ranked after it. NRCCR and RIVRL break ties by ``np.argsort``'s quicksort order, which is
  arbitrary; with continuous scores ties never occur and both give the same numbers, but under
  ties (a collapsed model scoring everything alike) this rule reports R@1 = 0, not a lucky 100.
* R@K and mAP are percentages, as in the papers' tables; MedR is ``np.median`` (so .5 occurs);
  ``sumr`` adds the six recalls, ``t2v_sumr`` the three text→visual ones (RIVRL's SumR).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

RECALL_KS = (1, 5, 10)
METRIC_KEYS = (
    "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_meanr", "t2v_map",
    "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "v2t_meanr", "v2t_map",
    "sumr", "t2v_sumr",
)  # fmt: skip
_LABELS = {
    "t2v_r1": "T2V R@1", "t2v_r5": "T2V R@5", "t2v_r10": "T2V R@10", "t2v_medr": "T2V MedR",
    "t2v_meanr": "T2V MeanR", "t2v_map": "T2V mAP",
    "v2t_r1": "V2T R@1", "v2t_r5": "V2T R@5", "v2t_r10": "V2T R@10", "v2t_medr": "V2T MedR",
    "v2t_meanr": "V2T MeanR", "v2t_map": "V2T mAP",
    "sumr": "SumR", "t2v_sumr": "T2V SumR",
}  # fmt: skip


@dataclass(frozen=True)
class RetrievalRanks:
    """Per-query ranks and APs, kept so that failures can be inspected query by query."""

    t2v: np.ndarray  # (n_texts,) 1-based rank of each caption's media item
    t2v_ap: np.ndarray  # (n_texts,) AP in [0, 1]; with one relevant item it is 1 / rank
    v2t: np.ndarray  # (n_queries,) 1-based rank of the best-ranked caption of each queried item
    v2t_ap: np.ndarray  # (n_queries,) AP over all captions of the item
    v2t_media: np.ndarray  # (n_queries,) column index of each visual→text query


def as_numpy(x: Any) -> np.ndarray:
    """Accept torch tensors without importing torch, so evaluation stays usable without it."""
    if hasattr(x, "detach"):
        t = x.detach().cpu()
        if t.is_floating_point() and t.element_size() < 4:  # bf16/fp16 have no numpy dtype
            t = t.float()
        return t.numpy()
    return np.asarray(x)


def _check_inputs(sim: Any, text_to_media: Any) -> tuple[np.ndarray, np.ndarray]:
    s = as_numpy(sim)
    if s.ndim != 2:
        raise ValueError(f"sim must be 2-D (n_texts, n_media), got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    t2m = as_numpy(text_to_media)
    if t2m.shape != (s.shape[0],) or not np.issubdtype(t2m.dtype, np.integer):
        raise ValueError(
            f"text_to_media must be integer indices of shape ({s.shape[0]},), "
            f"got {t2m.dtype} {t2m.shape}"
        )
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"cannot evaluate an empty similarity matrix of shape {s.shape}")
    if t2m.min() < 0 or t2m.max() >= s.shape[1]:
        raise ValueError(f"text_to_media indices must lie in [0, {s.shape[1]})")
    if not np.isfinite(s).all():
        raise ValueError(f"sim has {int((~np.isfinite(s)).sum())} non-finite values")
    return s, t2m.astype(np.intp)


def _count_at_least(sorted_rows: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each i, how many entries of ascending ``sorted_rows[rows[i]]`` are >= ``values[i]``.

    A binary search run for all queries at once: numpy's searchsorted takes one row only.
    """
    width = sorted_rows.shape[1]
    lo = np.zeros(len(rows), dtype=np.intp)
    hi = np.full(len(rows), width, dtype=np.intp)
    for _ in range(width.bit_length()):
        mid = (lo + hi) // 2
        active = lo < hi
        below = active & (sorted_rows[rows, np.minimum(mid, width - 1)] < values)
        lo = np.where(below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)
    return width - lo


def retrieval_ranks(sim: Any, text_to_media: Any) -> RetrievalRanks:
    """Ranks and APs of both directions; see the module docstring for the protocol and ties."""
    s, t2m = _check_inputs(sim, text_to_media)
    n_texts, n_media = s.shape
    texts = np.arange(n_texts)
    gt_score = s[texts, t2m]

    # Text→visual: every item scoring >= the relevant one (itself included) is at or above it.
    t2v = (s >= gt_score[:, None]).sum(axis=1)

    # Visual→text: per caption, how many *wrong* captions score >= it on its own item. Relevant
    # entries are set to -inf before sorting, so they never count as competitors.
    wrong = np.array(s.T, order="C")  # a copy: the caller's matrix is left alone
    wrong[t2m, texts] = -np.inf
    beaten_by = _count_at_least(np.sort(wrong, axis=1), t2m, gt_score)

    # Group captions by item, best first; within a group, the k-th relevant caption sits at
    # position k + beaten_by (ties among relevant captions do not change AP).
    order = np.lexsort((-gt_score, t2m))
    media_sorted = t2m[order]
    counts = np.bincount(t2m, minlength=n_media)
    starts = np.cumsum(counts) - counts
    k = np.arange(n_texts) - starts[media_sorted] + 1
    precision = k / (k + beaten_by[order])
    has_text = counts > 0
    v2t_ap = np.bincount(media_sorted, weights=precision, minlength=n_media)[has_text]
    v2t_ap = v2t_ap / counts[has_text]
    v2t = 1 + beaten_by[order][starts[has_text]]
    return RetrievalRanks(
        t2v=t2v,
        t2v_ap=1.0 / t2v,
        v2t=v2t,
        v2t_ap=v2t_ap,
        v2t_media=np.flatnonzero(has_text),
    )


def _direction(prefix: str, ranks: np.ndarray, ap: np.ndarray) -> dict[str, float]:
    out = {f"{prefix}_r{k}": float(100.0 * np.mean(ranks <= k)) for k in RECALL_KS}
    out[f"{prefix}_medr"] = float(np.median(ranks))
    out[f"{prefix}_meanr"] = float(np.mean(ranks))
    out[f"{prefix}_map"] = float(100.0 * np.mean(ap))
    return out


def retrieval_metrics(sim: Any, text_to_media: Any) -> dict[str, float]:
    """The run-directory metric dict (DESIGN.md "Run directory") for one similarity matrix.

    ``sim``: (n_texts, n_media) similarities, numpy or torch; ``text_to_media``: (n_texts,)
    column index of each caption's media item.
    """
    r = retrieval_ranks(sim, text_to_media)
    out = _direction("t2v", r.t2v, r.t2v_ap) | _direction("v2t", r.v2t, r.v2t_ap)
    out["t2v_sumr"] = sum(out[f"t2v_r{k}"] for k in RECALL_KS)
    out["sumr"] = out["t2v_sumr"] + sum(out[f"v2t_r{k}"] for k in RECALL_KS)
    return {key: out[key] for key in METRIC_KEYS}


def _min_max(x: np.ndarray, axis: int | None) -> np.ndarray:
    lo = x.min(axis=axis, keepdims=True)
    span = x.max(axis=axis, keepdims=True) - lo
    return np.divide(x - lo, span, out=np.zeros_like(x), where=span > 0)


def fuse_scores(
    native: Any,
    translated: Any,
    *,
    translated_weight: float,
    normalize: Literal["matrix", "query"] = "matrix",
) -> np.ndarray:
    """NRCCR's translate-test fusion (reference/ccr_methods.md §1.4): mix two similarity matrices.

    ``native`` scores the target-language queries, ``translated`` their machine translation to
    English, against the same gallery; the result is ``translated_weight * translated + (1 -
    translated_weight) * native`` after min-max scaling each to [0, 1], so the two scales are
    comparable. ``translated_weight`` is NRCCR's ``sim_ratio``: its validation uses 0.2 (the native
    queries weigh 0.8), its image test 0.5, its video test reports 0.0/0.2/0.5/0.8/1.0. The weight is
    keyword-only because its meaning was once the other share (``ccr.train.legacy``).
    ``normalize="matrix"`` scales each matrix as a whole, as NRCCR's ``norm_score`` does; ``"query"``
    scales every row (one caption over the gallery) on its own, so the weight means the same for
    easy and hard queries. A constant matrix or row carries no ranking and becomes 0.
    """
    a = as_numpy(native).astype(np.float64)
    b = as_numpy(translated).astype(np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"native and translated must be 2-D of one shape: {a.shape} vs {b.shape}")
    if not 0.0 <= translated_weight <= 1.0:
        raise ValueError(f"translated_weight must lie in [0, 1], got {translated_weight}")
    if normalize not in ("matrix", "query"):
        raise ValueError(f"normalize must be 'matrix' or 'query', got {normalize!r}")
    axis = None if normalize == "matrix" else 1
    return (1.0 - translated_weight) * _min_max(a, axis) + translated_weight * _min_max(b, axis)


def _cell(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
    if key in _LABELS:
        return f"{value:.2f}" if key.endswith("_map") else f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: Mapping[str, Mapping[str, Any]], *, first_column: str = "lang") -> str:
    """A Markdown table with one row per entry (language, run, ...) for ``ccr evaluate``.

    Retrieval keys come first in their fixed order with readable headers; any other numeric keys
    (e.g. a grounding ``brief`` dict) follow in first-seen order under their own names. A metric
    missing from a row prints as ``-``.
    """
    present = {k for metrics in rows.values() for k in metrics}
    keys = [k for k in METRIC_KEYS if k in present]
    for metrics in rows.values():
        keys += [k for k in metrics if k not in _LABELS and k not in keys]
    header = [first_column] + [_LABELS.get(k, k) for k in keys]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" + "---:|" * len(keys),
    ]
    for name, metrics in rows.items():
        cells = [name] + [_cell(k, metrics.get(k)) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
