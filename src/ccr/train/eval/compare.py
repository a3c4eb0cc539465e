"""``ccr evaluate --compare``: several runs side by side, the way the papers print their tables.

It reads only what ``ccr evaluate`` wrote (``eval/{split}.{lang}.json``) and each run's
``run.json`` (its method), so comparing never loads a model and can mix runs trained anywhere.
Numbers are only comparable under one evaluation protocol (``ccr.train.eval.protocol``): rows scored
differently are refused, or with ``allow_mixed`` printed with their protocol as a column. Methods
that follow a proposal rather than released code are marked "(proposal)".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccr import paths
from ccr.corpus import atomic
from ccr.errors import CcrError
from ccr.train.eval import protocol
from ccr.train.run.checkpoint import RunDir

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
    lang: str  # the result's label: the query language, with the query source where one was chosen (de-mt)
    metrics: dict[str, Any]
    protocol: dict[str, Any]  # how it was scored; {"task": "unknown"} for results older than the record
    proposal: str | None = None  # the label of a method without released code

    @property
    def method_cell(self) -> str:
        return f"{self.method} (proposal)" if self.proposal else self.method

    def value(self, key: str) -> Any:
        """A column's number; SumR is the one the row's protocol names (both directions or t2v only)."""
        return self.metrics.get(protocol.sumr_key(self.protocol) if key == "sumr" else key)


def _proposal(info: dict[str, Any]) -> str | None:
    """run.json's label; runs written before it was recorded are labelled by their method class."""
    if "proposal" in info:
        return info["proposal"]
    from ccr.train.model.methods import get
    from ccr.train.model.methods.base import proposal_note

    try:
        return proposal_note(get(info["method"]))
    except CcrError:
        return None


def collect(run_dirs: Sequence[Path | str], *, split: str = "test", langs: Sequence[str] | None = None) -> list[Row]:
    """One row per run and language that ``ccr evaluate`` has scored on ``split``."""
    rows: list[Row] = []
    for run_dir in map(Path, run_dirs):
        info = RunDir(run_dir).info()
        found = sorted((run_dir / "eval").glob(f"{split}.*.json"))
        found = [p for p in found if not langs or p.name.split(".")[1] in langs]
        if not found:
            raise CcrError(f"{run_dir} has no eval/{split}.LANG.json; "
                           f"score it first: ccr evaluate {run_dir} --split {split}")
        rescore = f"score the run again: ccr evaluate {run_dir} --split {split}"
        for path in found:
            record = paths.read_json(path, "evaluation", fix=rescore)
            if not isinstance(record.get("metrics"), dict):
                raise CcrError(f"evaluation {path} holds no metrics; {rescore}")
            rows.append(Row(run_dir.name, info["method"], path.name.split(".")[1], record["metrics"],
                            protocol.of(record), _proposal(info)))
    return rows


def protocol_difference(rows: Sequence[Row]) -> str | None:
    """How two rows' protocols differ (the first difference found, in words); None when all agree."""
    for row in rows:
        if row.protocol.get("task") == "unknown":
            return f"{row.run} ({row.lang}) was scored before protocols were recorded, so its protocol is unknown"
    by_lang: dict[str, Row] = {}
    for row in rows:
        for ref, same_lang in ((rows[0], False), (by_lang.setdefault(row.lang, row), True)):
            diff = protocol.difference(ref.protocol, row.protocol, same_lang=same_lang)
            if diff:
                return (f"{ref.run} ({ref.lang}) and {row.run} ({row.lang}) were scored under different "
                        f"protocols ({diff})")
    return None


def notes(rows: Sequence[Row], *, mixed: bool = False) -> list[str]:
    """The lines under the table: the protocol (with counts per language) and each proposal label."""
    if mixed:
        lines = ["protocols differ between rows (--allow-mixed): see the protocol column"]
    else:
        counts = {row.lang: protocol.size(row.protocol) for row in rows if protocol.size(row.protocol)}
        sizes = "; ".join(f"{lang}: {size}" for lang, size in counts.items())
        lines = [f"protocol: {protocol.describe(rows[0].protocol, counts=False)}" + (f" ({sizes})" if sizes else "")]
    return lines + list(dict.fromkeys(row.proposal for row in rows if row.proposal))


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def columns(rows: Sequence[Row]) -> tuple[tuple[str, str], ...]:
    """Retrieval columns, or the grounding ones when no row has retrieval metrics."""
    return RETRIEVAL if any("sumr" in row.metrics for row in rows) or not rows else GROUNDING


def format_comparison(rows: Sequence[Row], *, mixed: bool = False) -> str:
    """A Markdown table: run, method, language, R@1/5/10 both directions, SumR (or the grounding columns).

    ``mixed`` adds each row's protocol as a last column.
    """
    cols = columns(rows)
    header = ["run", "method", "lang"] + [label for _, label in cols] + (["protocol"] if mixed else [])
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * len(cols) + ("---|" if mixed else "")]
    for row in rows:
        cells = [row.run, row.method_cell, row.lang] + [_cell(row.value(key)) for key, _ in cols]
        cells += [protocol.describe(row.protocol)] if mixed else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[Row], path: Path | str) -> Path:
    """Grouped bars per run and language over the table's columns (SumR goes in the legend)."""
    path = paths.output_file(path, "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [(key, label) for key, label in columns(rows) if key != "sumr"]
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(keys) + 0.3 * len(rows)), 4.0))
    for i, row in enumerate(rows):
        values = [row.value(key) or 0.0 for key, _ in keys]
        sumr = row.value("sumr")
        label = f"{row.run} ({row.method_cell}, {row.lang})" + (f" SumR {sumr:.1f}" if sumr is not None else "")
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, [label for _, label in keys])
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    plt.close(fig)
    return path


def compare_runs(run_dirs: Sequence[Path | str], *, split: str = "test", langs: Sequence[str] | None = None,
                 allow_mixed: bool = False) -> tuple[list[Row], str]:
    """(rows, text): the table of every scored run and language, then its protocol and proposal lines.

    Rows scored under different protocols are refused unless ``allow_mixed``, which prints each
    row's protocol in a column.
    """
    if not run_dirs:
        raise CcrError("--compare: give the run directories to compare, e.g. ccr evaluate --compare runs/*")
    rows = collect(run_dirs, split=split, langs=langs)
    diff = protocol_difference(rows)
    if diff and not allow_mixed:
        raise CcrError(f"{diff}; score them alike with ccr evaluate, or add --allow-mixed to print them side by "
                       f"side with their protocols")
    mixed = diff is not None
    return rows, format_comparison(rows, mixed=mixed) + "\n" + "\n".join(notes(rows, mixed=mixed)) + "\n"
