"""Score summaries computed from the report's own column files once every row is written.

The columns are memory-mapped from disk, so histograms and the worst/best rows cost one pass
over a float32 array per score, never the rows' text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 30
CLEAN_NOISE = ("none", "(missing)")  # noise_type values that mean "not injected"


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def score_summary(values: np.ndarray, noisy: np.ndarray | None) -> dict[str, Any]:
    """Count, range, quantiles and a histogram; with ``noisy`` the histogram is split clean/injected."""
    finite = np.isfinite(values)
    kept = np.asarray(values[finite], dtype=np.float64)
    out: dict[str, Any] = {"count": int(kept.size), "missing": int(values.size - kept.size)}
    if kept.size == 0:
        return out
    lo, hi = float(kept.min()), float(kept.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, BINS + 1)
    p05, p50, p95 = np.quantile(kept, [0.05, 0.5, 0.95])
    out.update(min=_round(kept.min()), max=_round(kept.max()), mean=_round(kept.mean()),
               p05=_round(p05), median=_round(p50), p95=_round(p95), edges=[_round(e) for e in edges])
    if noisy is None:
        out["clean"] = np.histogram(kept, edges)[0].tolist()
        out["noisy"] = None
    else:
        flags = noisy[finite]
        out["clean"] = np.histogram(kept[~flags], edges)[0].tolist()
        out["noisy"] = np.histogram(kept[flags], edges)[0].tolist()
    return out


def noisy_mask(codes: np.ndarray, labels: list[str]) -> np.ndarray:
    injected = np.array([label not in CLEAN_NOISE for label in labels] or [False])
    return injected[np.asarray(codes, dtype=np.int64)] if codes.size else np.zeros(0, dtype=bool)


def category_counts(codes: np.ndarray, labels: list[str]) -> dict[str, int]:
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=len(labels))
    return {label: int(n) for label, n in zip(labels, counts, strict=True)}


def extremes(values: np.ndarray, n: int) -> tuple[list[int], list[int]]:
    """Row indices of the ``n`` lowest and ``n`` highest finite values (ties: earlier row first)."""
    index = np.flatnonzero(np.isfinite(values))
    order = index[np.argsort(values[index], kind="stable")]
    highest = index[np.argsort(-values[index], kind="stable")]
    return order[:n].tolist(), highest[:n].tolist()
