"""What a corpus holds: counts per split x language x origin, stage history, failures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.pipeline.corpus import Corpus

if TYPE_CHECKING:
    import polars as pl


def grouped_counts(corpus: Corpus, table: str, keys: list[str], name: str) -> pl.DataFrame:
    """Rows of ``table`` per value of ``keys``, sorted; counted shard by shard.

    One scan over every shard at once holds buffers for each of them (a million-row corpus has
    about a thousand shards), so the card written after every run would grow with the corpus;
    per shard, memory stays that of one shard. A key a shard lacks counts as missing.
    """
    import polars as pl

    parts = []
    for path in corpus.files(table):
        present = set(pl.read_parquet_schema(path))
        shard = pl.scan_parquet(path).select(
            [pl.col(k) if k in present else pl.lit(None, dtype=pl.String).alias(k) for k in keys])
        parts.append(shard.group_by(keys).agg(pl.len().alias(name)).collect())
    if not parts:
        return pl.DataFrame(schema={**{k: pl.String for k in keys}, name: pl.UInt32})
    return (pl.concat(parts, how="vertical_relaxed").group_by(keys).agg(pl.col(name).sum())
            .sort(keys, nulls_last=False))


def caption_counts(corpus: Corpus) -> pl.DataFrame:
    """Rows per split x lang x origin (and MT model), sorted for reading."""
    return grouped_counts(corpus, "captions", ["split", "lang", "origin", "model"], "captions")


def media_counts(corpus: Corpus) -> pl.DataFrame:
    return grouped_counts(corpus, "media", ["split", "modality"], "media")


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
