"""``ccr evaluate --compare``: several runs side by side, the way the papers print their tables.

It reads only what ``ccr evaluate`` wrote (``eval/{split}.{lang}.json``) and each run's
``run.json`` (its method), so comparing never loads a model and can mix runs trained anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccr.errors import CcrError

RETRIEVAL = (("t2v_r1", "T2V R@1"), ("t2v_r5", "T2V R@5"), ("t2v_r10", "T2V R@10"),
             ("v2t_r1", "V2T R@1"), ("v2t_r5", "V2T R@5"), ("v2t_r10", "V2T R@10"), ("sumr", "SumR"))
# Grounding runs (ccr train --method rgtr) report the standard QVHighlights keys; these are the papers' columns.
GROUNDING = (("MR-full-R1@0.5", "R1@0.5"), ("MR-full-R1@0.7", "R1@0.7"), ("MR-full-mAP@0.5", "mAP@0.5"),
             ("MR-full-mAP@0.75", "mAP@0.75"), ("MR-full-mAP", "mAP avg"), ("HL-min-VeryGood-mAP", "HD>=VG mAP"),
             ("HL-min-VeryGood-Hit1", "HIT@1"))


@dataclass
class Row:
    run: str  # the run directory's name
    method: str
    lang: str
    metrics: dict[str, Any]


def collect(run_dirs: Sequence[Path | str], *, split: str = "test", langs: Sequence[str] | None = None) -> list[Row]:
    """One row per run and language that ``ccr evaluate`` has scored on ``split``."""
    rows: list[Row] = []
    for run_dir in map(Path, run_dirs):
        info_path = run_dir / "run.json"
        if not info_path.exists():
            raise CcrError(f"{run_dir} is not a training run (no run.json); pass run directories made by ccr train")
        method = json.loads(info_path.read_text(encoding="utf-8")).get("method", "?")
        found = sorted((run_dir / "eval").glob(f"{split}.*.json"))
        found = [p for p in found if not langs or p.name.split(".")[1] in langs]
        if not found:
            raise CcrError(f"{run_dir} has no eval/{split}.LANG.json; "
                           f"score it first: ccr evaluate {run_dir} --split {split}")
        for path in found:
            record = json.loads(path.read_text(encoding="utf-8"))
            rows.append(Row(run_dir.name, method, record.get("lang", path.name.split(".")[1]), record["metrics"]))
    return rows


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def columns(rows: Sequence[Row]) -> tuple[tuple[str, str], ...]:
    """Retrieval columns, or the grounding ones when no row has retrieval metrics."""
    return RETRIEVAL if any("sumr" in row.metrics for row in rows) or not rows else GROUNDING


def format_comparison(rows: Sequence[Row]) -> str:
    """A Markdown table: run, method, language, R@1/5/10 both directions, SumR (or the grounding columns)."""
    cols = columns(rows)
    header = ["run", "method", "lang"] + [label for _, label in cols]
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * len(cols)]
    for row in rows:
        cells = [row.run, row.method, row.lang] + [_cell(row.metrics.get(key)) for key, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[Row], path: Path | str) -> Path:
    """Grouped bars per run and language over the table's columns (SumR goes in the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    keys = [(key, label) for key, label in columns(rows) if key != "sumr"]
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(keys) + 0.3 * len(rows)), 4.0))
    for i, row in enumerate(rows):
        values = [row.metrics.get(key) or 0.0 for key, _ in keys]
        sumr = row.metrics.get("sumr")
        label = f"{row.run} ({row.method}, {row.lang})" + (f" SumR {sumr:.1f}" if sumr is not None else "")
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, [label for _, label in keys])
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
