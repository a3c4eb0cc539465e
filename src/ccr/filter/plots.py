"""Score histograms as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ccr.corpus import atomic

BINS = 40


def histograms(path: Path, panels: dict[str, dict[str, np.ndarray]], title: str) -> Path:
    """One panel per score, its series (languages, or clean vs noisy) overlaid as step histograms.

    Series share their panel's bins so their shapes compare directly; densities rather than
    counts, so a 20% noisy series is as readable as the 80% clean one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(panels), 3) or 1
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, series) in zip(axes.flat, panels.items()):
        finite = {label: v[np.isfinite(v)] for label, v in series.items()}
        values = np.concatenate([v for v in finite.values() if v.size] or [np.zeros(1)])
        lo, hi = float(values.min()), float(values.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
        for label, v in finite.items():
            if v.size:
                ax.hist(v, bins=edges, density=True, histtype="stepfilled", alpha=0.45, label=f"{label} (n={v.size})")
        ax.set_title(name)
        ax.set_xlabel(name)
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return path
