"""``ccr noise eval``: how well each score in a noisy corpus finds the noise that was planted.

Read on the rows that carry ``noise_type`` (those ``ccr noise inject`` made), per language:

- AUROC of each score present (the chance that a clean pair scores above a noisy one, ties half),
  over all noise and per noise type;
- precision at the kept fraction: the share of clean pairs among the best-scoring fraction
  kept, where that fraction is what ``ccr select`` kept when it has run on these rows, else the
  clean share (so a perfect score reaches precision 1);
- for ``keep`` itself, when ``ccr select`` has run: precision of the kept rows and the share of the
  noise it dropped.

Writes ``noise_eval.json``, ``noise_eval.md`` and ``noise_eval.png`` (histograms clean vs noisy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ccr import paths
from ccr.corpus import atomic
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.filter.common import SCORES

# Scores read as "higher = cleaner": the filter's views plus translate's log-probability and select's weight.
EVALUATED = (*SCORES, "mt_logprob", "weight")


@dataclass
class NoiseEvalResult:
    results: dict[str, Any]  # per language: counts and per-score metrics
    table: str  # Markdown
    json_path: Path
    table_path: Path
    plot_path: Path


def auroc(scores: np.ndarray, noisy: np.ndarray) -> float | None:
    """P(clean score > noisy score) + P(tie) / 2 (Mann–Whitney); None without both classes."""
    from scipy.stats import rankdata

    n_noisy = int(noisy.sum())
    n_clean = noisy.size - n_noisy
    if not n_noisy or not n_clean:
        return None
    ranks = rankdata(scores)
    return float((ranks[~noisy].sum() - n_clean * (n_clean + 1) / 2) / (n_clean * n_noisy))


def precision_at(scores: np.ndarray, noisy: np.ndarray, fraction: float) -> float | None:
    """Share of clean rows among the ``fraction`` of rows with the highest scores."""
    k = round(fraction * scores.size)
    if k < 1:
        return None
    top = np.argsort(-scores, kind="stable")[:k]
    return float(1.0 - noisy[top].mean())


def _rows(corpus: Corpus, langs: Sequence[str], mt_model: Sequence[str]) -> Any:
    import polars as pl

    captions = corpus.scan("captions")
    if "noise_type" not in captions.collect_schema().names():
        raise CcrError(f"no injected noise in {corpus.root}; make a noisy copy first: "
                       f"ccr noise inject {corpus.root} --out NEW_DIR, then ccr score NEW_DIR ...")
    rows = captions.filter((pl.col("origin") == "mt") & pl.col("noise_type").is_not_null())
    if langs:
        rows = rows.filter(pl.col("lang").is_in(list(langs)))
    if mt_model:
        rows = rows.filter(pl.col("model").is_in(list(mt_model)))
    frame = rows.collect()
    if frame.height == 0:
        raise CcrError("no noisy MT rows match --lang / --mt-model; see the languages and models with ccr info CORPUS")
    models = frame.group_by("lang").agg(pl.col("model").unique().sort())
    for lang, keys in models.iter_rows():
        if len(keys) > 1:
            raise CcrError(f"noise from several MT models in {lang}: {', '.join(keys)}; pick one with --mt-model KEY")
    return frame


def evaluate(corpus_dir: Path | str, *, langs: Sequence[str] = (), mt_model: Sequence[str] = (),
             out: Path | str | None = None) -> NoiseEvalResult:
    """Measure every score present against the planted noise; write the table, JSON and plot to ``out``."""
    import polars as pl

    from ccr.filter.plots import histograms

    corpus = Corpus.open(corpus_dir)
    frame = _rows(corpus, langs, mt_model)
    out = Path(out) if out is not None else corpus.root.parent / f"{corpus.root.name}-noise-eval"
    results: dict[str, Any] = {}
    panels: dict[str, dict[str, np.ndarray]] = {}
    several = frame["lang"].n_unique() > 1
    for lang in sorted(frame["lang"].unique().to_list()):
        part = frame.filter(pl.col("lang") == lang)
        kinds = part["noise_type"].to_numpy()
        noisy = kinds != "none"
        keep = part["keep"].fill_null(True).to_numpy().astype(bool) if "keep" in part.columns else None
        selected = keep is not None and part["keep"].null_count() < part.height
        fraction = float(keep.mean()) if selected else float(1.0 - noisy.mean())
        entry: dict[str, Any] = {"rows": part.height, "noisy": int(noisy.sum()), "kept_fraction": fraction,
                                 "kept_fraction_from": "keep" if selected else "clean share",
                                 "noise_types": {k: int((kinds == k).sum()) for k in sorted(set(kinds.tolist()))},
                                 "scores": {}}
        for column in EVALUATED:
            if column not in part.columns:
                continue
            values = part[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
            ok = np.isfinite(values)
            if not ok.any():
                continue
            v, y, k = values[ok], noisy[ok], kinds[ok]
            by_type = {t: auroc(v[(k == t) | ~y], y[(k == t) | ~y]) for t in sorted(set(k[y].tolist()))}
            entry["scores"][column] = {"count": int(ok.sum()), "auroc": auroc(v, y),
                                       "precision_at_kept": precision_at(v, y, fraction), "auroc_by_type": by_type}
            panels[f"{lang} {column}" if several else column] = {"clean": v[~y], "noisy": v[y]}
        if selected:
            entry["keep"] = {"precision": float(1.0 - noisy[keep].mean()) if keep.any() else None,
                             "noise_dropped": float((~keep[noisy]).mean()) if noisy.any() else None}
        results[lang] = entry
    if not panels:
        commands = " and ".join(f"ccr score {corpus.root} --lang {lang} --mt-model {model}"
                                for lang, model in frame.select("lang", "model").unique().sort("lang").iter_rows())
        raise CcrError(f"the noisy rows in {corpus.root} have no scores yet; score them first: {commands}")
    table = format_table(results)
    paths.output_dir(out, "--out")
    json_path = atomic.write_json(out / "noise_eval.json", {"corpus": str(corpus.root), "languages": results})
    table_path = atomic.write_bytes(out / "noise_eval.md", (table + "\n").encode("utf-8"))
    plot_path = histograms(out / "noise_eval.png", panels, f"planted noise vs scores: {corpus.root.name}")
    return NoiseEvalResult(results, table, json_path, table_path, plot_path)


def format_table(results: dict[str, Any]) -> str:
    """One Markdown row per language and score: AUROC overall and per noise type, precision at kept."""
    types = sorted({t for entry in results.values() for s in entry["scores"].values() for t in s["auroc_by_type"]})
    header = ["lang", "score", "rows", "noisy", "AUROC", "P@kept", *(f"AUROC {t}" for t in types)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for lang, entry in results.items():
        for column, s in entry["scores"].items():
            cells = [lang, column, str(s["count"]), str(entry["noisy"]), _fmt(s["auroc"]), _fmt(s["precision_at_kept"]),
                     *(_fmt(s["auroc_by_type"].get(t)) for t in types)]
            lines.append("| " + " | ".join(cells) + " |")
        if "keep" in entry:
            cells = [lang, "keep", str(entry["rows"]), str(entry["noisy"]), "-", _fmt(entry["keep"]["precision"]),
                     *("-" for _ in types)]
            lines.append("| " + " | ".join(cells) + " |")
    kept = ", ".join(f"{lang}: {e['kept_fraction']:.3f} ({e['kept_fraction_from']})" for lang, e in results.items())
    return "\n".join(lines) + f"\n\nP@kept = share of clean rows among the best-scoring kept fraction ({kept})."


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
