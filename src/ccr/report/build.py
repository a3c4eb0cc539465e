"""``ccr report``: a static HTML report of a corpus that a researcher opens straight from disk.

The report directory::

    index.html, assets/        the page and its script and style (copied from this package)
    data/meta.js               overview, columns, score summaries, shard sizes
    data/rows/NNNNN.js         report rows (captions, thumbnails, scores), ROW_SHARD per file
    data/cols/NAME.js          one typed array per score or filter column, for sorting and filtering
    data/text/NNNNN.js         lower-cased searchable text, loaded only when someone searches
    data/details/, failures/, problems/, extremes.js
    thumbs/                    JPEG thumbnails, a cache kept across rebuilds

The page loads meta.js and the first row shard to show the first page; sorting or filtering
loads only the column files involved, then the row shards of the page on screen.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr import __version__, paths
from ccr.corpus import atomic
from ccr.corpus.corpus import Corpus
from ccr.corpus.info import caption_counts, failure_counts, history, media_counts
from ccr.errors import CcrError
from ccr.report import stats
from ccr.report.rows import (
    CATEGORY_SCORES,
    MISSING,
    NUMERIC_SCORES,
    Partitions,
    RowPlan,
    read_corpus,
    slices,
)
from ccr.report.shards import ColumnWriter, ShardWriter, write_js
from ccr.report.thumbnails import MediaItem, make_thumbnails

if TYPE_CHECKING:
    import polars as pl

ROW_SHARD = 100  # a page of rows sorted by a score touches up to page-size shards: keep them small
TEXT_SHARD = 5000
DETAIL_SHARD = 200
LIST_SHARD = 500
EXTREMES = 10  # worst and best rows shown per score
MARKER = ".ccr-report"
ASSETS = ("app.js", "style.css")


@dataclass
class ReportSummary:
    index: Path
    rows: int
    media: int  # media items with a thumbnail
    media_problems: int  # media items shown as a placeholder
    failures: int
    seconds: float


def _prepare(out_dir: Path, corpus_root: Path) -> tuple[Path, Path | None]:
    """The output directory and the topmost directory made for it (None if it existed), refusing one
    that would overwrite the corpus or someone's files."""
    out = out_dir.resolve()
    root = corpus_root.resolve()
    if out == root or root in out.parents:
        raise CcrError(f"--out {out_dir} is inside the corpus {corpus_root}; a report never writes to its corpus: "
                       "choose a directory outside it")
    existed = out.exists()
    made = paths.output_dir(out_dir, "--out")
    if existed and any(out.iterdir()) and not (out / MARKER).exists():
        raise CcrError(f"--out {out_dir} is not empty and holds no ccr report; choose a new directory "
                       "(an existing report is rebuilt in place)")
    atomic.write_bytes(out / MARKER, f"ccr {__version__} report\n".encode())
    return out, made


def _models(record: Any, prefix: str = "") -> list[str]:
    """Every model a stage run names in the manifest, as 'role: id @ revision'."""
    if not isinstance(record, dict):
        return []
    if "id" in record:
        revision = record.get("revision")
        return [f"{prefix}{record['id']}" + (f" @ {revision}" if revision else "")]
    found = []
    for key, value in record.items():
        found += _models(value, f"{prefix}{key}: " if isinstance(value, dict) and "id" in value else prefix)
    return found


def overview(corpus: Corpus) -> dict[str, Any]:
    """What ``ccr info`` shows, as data for the page (always the whole corpus)."""
    runs = [{**line, "models": _models(run.get("models"))} for line, run in zip(history(corpus), corpus.runs(),
                                                                                  strict=True)]
    fails = failure_counts(corpus)
    return {
        "captions": caption_counts(corpus).to_dicts(),
        "media": media_counts(corpus).to_dicts(),
        "history": runs,
        "failures": fails.to_dicts(),
        "failures_total": int(fails["failures"].sum()) if fails.height else 0,
        "features": corpus.feature_names(),
        "media_root": str(corpus.media_root) if corpus.media_root else None,
    }


class _Writers:
    """Everything one report row feeds, written as the partitions stream by."""

    def __init__(self, data: Path, plan: RowPlan):
        self.plan = plan
        self.rows = ShardWriter(data, "rows", ROW_SHARD)
        self.text = ShardWriter(data, "text", TEXT_SHARD)
        self.details = ShardWriter(data, "details", DETAIL_SHARD)
        self.problems = ShardWriter(data, "problems", LIST_SHARD)
        self.columns = {c: ColumnWriter(data, c, "num") for c in plan.numeric}
        self.columns.update({c: ColumnWriter(data, c, "cat") for c in plan.categories})
        self.has = {"src": False, "bt": False}
        self.thumbs = 0

    def add_slice(self, frame: pl.DataFrame, details: dict[str, dict[str, list[Any]]], corpus: Corpus, out: Path,
                  media_root: Path | None) -> None:
        import polars as pl

        media = frame.select("media_id", "modality", "path").unique("media_id", maintain_order=True)
        thumbs = make_thumbnails([MediaItem(mid, modality, corpus.resolve_media(path, media_root))
                                  for mid, modality, path in media.iter_rows()], out)
        for thumb, path in zip(thumbs, media["path"].to_list(), strict=True):
            if thumb.problem:
                self.problems.add({"media": thumb.media_id, "path": path, "reason": thumb.problem})
            else:
                self.thumbs += 1
        detail_index = {mid: self.details.add({"media": mid, **d}) for mid, d in details.items()}
        per_media = pl.DataFrame({"media_id": [t.media_id for t in thumbs], "thumb": [t.file for t in thumbs],
                                  "problem": [t.problem for t in thumbs],
                                  "details": [detail_index.get(t.media_id) for t in thumbs]},
                                 schema={"media_id": pl.String, "thumb": pl.String, "problem": pl.String,
                                         "details": pl.Int64})
        rows = frame.join(per_media, on="media_id", how="left", maintain_order="left").select(
            pl.col("caption_id").alias("id"), pl.col("media_id").alias("media"),
            *[c for c in ("origin", "src", "src_lang", "text", "bt", "thumb", "problem", "details")
              if c not in self.plan.categories],
            *[pl.col(c).cast(pl.String).fill_null(MISSING) for c in self.plan.categories],
            *[pl.when(pl.col(c).is_finite()).then(pl.col(c).round(4)).alias(c) for c in self.plan.numeric])
        for c in self.plan.numeric + self.plan.categories:
            self.columns[c].append(rows[c])
        self.has["src"] |= rows["src"].is_not_null().any()
        self.has["bt"] |= rows["bt"].is_not_null().any()
        for row in rows.iter_rows(named=True):
            self.rows.add(row)
        search = rows.select(pl.concat_str("id", "src", "text", "bt", separator="\n", ignore_nulls=True).str.to_lowercase())
        for text in search.to_series():
            self.text.add(text)

    def finish(self, data: Path, n_extremes: int) -> dict[str, Any]:
        """Close every file; returns the columns and score summaries for meta.js."""
        for writer in (self.rows, self.text, self.details, self.problems):
            writer.close()
        for column in self.columns.values():
            column.finish()
        noise = self.columns.get("noise_type")
        noisy = stats.noisy_mask(noise.values(), noise.categories.labels) if noise and noise.categories else None
        columns, summaries, best_worst = [], {}, {}
        for name, column in self.columns.items():
            values = column.values()
            entry: dict[str, Any] = {"name": name, "kind": column.kind, "score": name in NUMERIC_SCORES + CATEGORY_SCORES}
            if column.categories is not None:
                entry["labels"] = column.categories.labels
                entry["counts"] = stats.category_counts(values, column.categories.labels)
            else:
                summaries[name] = stats.score_summary(values, noisy)
                low, high = stats.extremes(values, n_extremes)
                best_worst[name] = {"lowest": [self.rows.get(i) for i in low], "highest": [self.rows.get(i) for i in high]}
            columns.append(entry)
            column.close()
        write_js(data / "extremes.js", "extremes", best_worst)
        return {"columns": columns, "stats": summaries}


def _write_failures(failures: pl.DataFrame, items: dict[str, dict[str, Any]], data: Path) -> ShardWriter:
    """Every outstanding failure row with the caption or media it concerns, where the corpus has it."""
    writer = ShardWriter(data, "failures", LIST_SHARD)
    for r in failures.iter_rows(named=True):
        item = items.get(r["row_id"], {})
        writer.add({"stage": r["stage"], "table": r["table"], "row": r["row_id"], "reason": r["reason"],
                    "source": r["source"], "lang": item.get("lang"), "text": item.get("text"),
                    "media": item.get("media"), "path": item.get("path")})
    writer.close()
    return writer


def _install_page(out: Path) -> None:
    assets = resources.files("ccr.report") / "assets"
    (out / "assets").mkdir(exist_ok=True)
    for name in ASSETS:
        (out / "assets" / name).write_bytes((assets / name).read_bytes())
    (out / "index.html").write_bytes((assets / "index.html").read_bytes())


def _write_rows(corpus: Corpus, plan: RowPlan, parts: Partitions, out: Path, data: Path, media_root: Path | None,
                log: Callable[[str], None] | None) -> _Writers:
    writers = _Writers(data, plan)
    for k, (frame, details) in enumerate(slices(parts, plan)):
        writers.add_slice(frame, details, corpus, out, media_root)
        if log:
            log(f"report: partition {k + 1}/{parts.count}, {writers.rows.meta()['count']}/{plan.total} rows")
    return writers


def build_report(corpus_dir: Path | str, out_dir: Path | str, *, langs: str | Sequence[str] | None = None,
                 splits: str | Sequence[str] | None = None, limit: int | None = None,
                 media_root: Path | str | None = None, extremes: int = EXTREMES,
                 log: Callable[[str], None] | None = None) -> ReportSummary:
    """Write the report of ``corpus_dir`` into ``out_dir``; the Python twin of ``ccr report``.

    ``langs``, ``splits`` and ``limit`` narrow the rows (browser, worst/best, distributions); the
    overview and the failures always describe the whole corpus.
    """
    started = time.perf_counter()
    corpus = Corpus.open(corpus_dir)
    out, made = _prepare(Path(out_dir), corpus.root)
    work, data = out / ".work", out / ".data-new"
    for path in (work, data):
        shutil.rmtree(path, ignore_errors=True)
    data.mkdir()
    try:
        failures = corpus.failures()
        plan, parts = read_corpus(corpus, work, langs, splits, limit, set(failures["row_id"].to_list()))
        root = Path(media_root) if media_root else corpus.media_root  # read the manifest once, not per item
        writers = _write_rows(corpus, plan, parts, out, data, root, log)
        columns = writers.finish(data, extremes)
        failed = _write_failures(failures, parts.items, data)
    except BaseException:
        shutil.rmtree(made or data, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_js(data / "meta.js", "meta", {
        "title": corpus.root.resolve().name,
        "corpus": str(corpus.root.resolve()),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "ccr": __version__,
        "selection": {"lang": plan.langs, "split": plan.splits, "limit": plan.limit},
        "mode": plan.mode,
        "has": writers.has,
        "overview": overview(corpus),
        "rows": writers.rows.meta(), "text": writers.text.meta(), "details": writers.details.meta(),
        "problems": writers.problems.meta(), "failures": failed.meta(),
        "extremes": extremes,
        **columns,
    })
    shutil.rmtree(out / "data", ignore_errors=True)
    data.rename(out / "data")
    _install_page(out)
    n_problems = writers.problems.meta()["count"]
    return ReportSummary(index=out / "index.html", rows=writers.rows.meta()["count"], media=writers.thumbs,
                         media_problems=n_problems, failures=failed.meta()["count"],
                         seconds=time.perf_counter() - started)
