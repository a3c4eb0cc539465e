"""What a corpus holds: counts per split x language x origin, stage history, failures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.pipeline.corpus import Corpus

if TYPE_CHECKING:
    import polars as pl


def caption_counts(corpus: Corpus) -> pl.DataFrame:
    """Rows per split x lang x origin (and MT model), sorted for reading."""
    import polars as pl

    if not corpus.files("captions"):
        return pl.DataFrame(schema={"split": pl.String, "lang": pl.String, "origin": pl.String,
                                    "model": pl.String, "captions": pl.UInt32})
    return (corpus.scan("captions", with_side_tables=False)
            .group_by("split", "lang", "origin", "model").agg(pl.len().alias("captions"))
            .sort("split", "lang", "origin", "model", nulls_last=False).collect())


def media_counts(corpus: Corpus) -> pl.DataFrame:
    import polars as pl

    if not corpus.files("media"):
        return pl.DataFrame(schema={"split": pl.String, "modality": pl.String, "media": pl.UInt32})
    return (corpus.scan("media", with_side_tables=False).group_by("split", "modality")
            .agg(pl.len().alias("media")).sort("split", "modality").collect())


def failure_counts(corpus: Corpus) -> pl.DataFrame:
    import polars as pl

    df = corpus.failures()
    if df.height == 0:
        return pl.DataFrame(schema={"stage": pl.String, "table": pl.String, "reason": pl.String, "failures": pl.UInt32})
    short = pl.col("reason").str.split(":").list.first().str.slice(0, 60)
    return (df.with_columns(short.alias("reason")).group_by("stage", "table", "reason")
            .agg(pl.len().alias("failures")).sort("failures", descending=True))


def history(corpus: Corpus) -> list[dict[str, Any]]:
    """One line per stage run from the manifest."""
    rows = []
    for run in corpus.runs():
        models = ", ".join(f"{k}={v.get('id', v) if isinstance(v, dict) else v}" for k, v in run.get("models", {}).items())
        rows.append({
            "stage": run["stage"], "status": run.get("status", ""), "ended": run.get("ended", ""),
            "rows_in": run.get("rows_in", 0), "rows_out": sum(run.get("rows_out", {}).values()),
            "failed": run.get("rows_failed", 0), "seconds": run.get("seconds", 0.0), "models": models,
        })
    return rows


def _rich_table(title: str, df: pl.DataFrame) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in df.columns:
        table.add_column(col, justify="right" if df.schema[col].is_numeric() else "left")
    for row in df.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def show(corpus_dir: Path | str, console: Any, *, failures: bool = False) -> None:
    """Print what ``ccr info`` shows."""
    import polars as pl

    corpus = Corpus.open(corpus_dir)
    console.print(f"[bold]{corpus.root}[/] (schema {corpus.manifest()['schema_version']}, "
                  f"media root {corpus.media_root or 'unset'})", highlight=False)
    console.print(_rich_table("media", media_counts(corpus)))
    console.print(_rich_table("captions: split x language x origin", caption_counts(corpus)))
    runs = history(corpus)
    if runs:
        console.print(_rich_table("stage history", pl.DataFrame(runs)))
    fails = failure_counts(corpus)
    console.print(f"failures: {int(fails['failures'].sum()) if fails.height else 0}")
    if fails.height:
        console.print(_rich_table("failures by stage and reason", fails))
    if failures:
        console.print(_rich_table("failure rows", corpus.failures().select("stage", "table", "row_id", "source", "reason")))
    names = corpus.feature_names()
    console.print(f"features: {', '.join(names) if names else 'none'}")
