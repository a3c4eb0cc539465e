"""What a corpus holds: counts per split x language x origin, stage history, failures.

Every value shown comes from data (ids, languages, reasons, paths) and is printed as plain text,
never as rich markup: a caption id like ``[/x]`` must print as itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.corpus import counts
from ccr.corpus import runs as run_records
from ccr.corpus.corpus import Corpus
from ccr.printing import print_table

if TYPE_CHECKING:
    import polars as pl


def grouped_counts(corpus: Corpus, table: str, keys: list[str], name: str) -> pl.DataFrame:
    """Rows of ``table`` per value of ``keys``, sorted: summed from the counts commit markers keep
    (``ccr.corpus.counts``), each shard without them recounted. A key a shard lacks counts as missing."""
    shards = [(c.counts, corpus.root / c.files[table]) for c in corpus.commits() if table in c.files]
    return counts.summed(shards, table, keys, name)


def caption_counts(corpus: Corpus) -> pl.DataFrame:
    """Rows per split x lang x origin (and MT model), sorted for reading."""
    return grouped_counts(corpus, "captions", list(counts.GROUPS["captions"]), "captions")


def media_counts(corpus: Corpus) -> pl.DataFrame:
    return grouped_counts(corpus, "media", list(counts.GROUPS["media"]), "media")


# A quoted value (an id, a split, a language) unless the quote is part of a word (doesn't).
_QUOTED = re.compile(r"(?<!\w)(?:'[^']*'|\"[^\"]*\")(?!\w)")
_FIELD = re.compile(r"[A-Za-z_]\w*")
# A path (absolute, ./ ~/, or relative with a file name), or a file:place; trailing punctuation stays.
_PATH = re.compile(r"""(?<![^\s(])(?:(?:~|\.{1,2})?/[^\s'"]*[^\s'",;:.)]"""
                   r"""|[^\s'"/]+(?:/[^\s'"/]+)+\.\w+(?::[^\s'"]*[^\s'",;:.)])?"""
                   r"""|[^\s'"/]+\.[A-Za-z]\w*:[^\s'"]*[^\s'",;:.)])""")
_NUMBERS = re.compile(r"\[(?:[\s\d.,+-]|nan|inf)*\]", re.IGNORECASE)  # a list of numbers: a window, a shape
# A number standing alone: not part of a word (UTF-8, fp16), a setting (max_chars=10000) or a
# bound (0 <= start, >= 0), which say the same in every row.
_NUMBER = re.compile(r"(?<![\w.=<>-])(?<![<>]=\s)(?<![<>]\s)-?\d+(?:\.\d+)?(?!\.?\w)(?!\s*[<>])")
_EXCEPTION = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Warning): ")


def reason_kind(reason: str) -> str:
    """What a failure reason says without the values that differ row by row.

    ``its media 'a' failed: file not found: /x/a.jpg`` and the same for media ``b`` are one kind
    (``its media '…' failed: file not found: …``), so a thousand cascaded failures read as one
    line with a count. Only values go (quoted ids and names, paths and places, numbers standing
    alone): the words stay whole, and so does the advice at the end, which says how to fix them all.
    A quoted field name that a reason starts with (``'relevant_windows' holds …``) is no value.
    An exception's message ends at its next ``: ``, after which Python's messages and ours put the
    value (``No such file or directory: '/x'``, ``stars are not allowed: m0065#en#0``).
    """
    text = _QUOTED.sub(_quoted_value, reason or "")
    text = " ".join(_NUMBER.sub("N", _NUMBERS.sub("[…]", _PATH.sub("…", text))).split())
    raised = _EXCEPTION.search(text)
    end = text.find(": ", raised.end()) if raised else -1
    return text[:end] if end >= 0 else text


def _quoted_value(match: re.Match[str]) -> str:
    start, end, text = match.start(), match.end(), match.string
    subject = start == 0 or text[start - 2:start] == ": "
    if subject and _FIELD.fullmatch(match.group()[1:-1]) and text[end:end + 1] == " ":
        return match.group()
    return "'…'"


def _failures_by_kind(corpus: Corpus) -> pl.DataFrame:
    import polars as pl

    df = corpus.failures()
    return df.with_columns(pl.Series("reason", [reason_kind(r) for r in df["reason"].to_list()], dtype=pl.String))


def failure_counts(corpus: Corpus) -> pl.DataFrame:
    """Outstanding failures per stage, table and kind of reason, most frequent first."""
    import polars as pl

    df = _failures_by_kind(corpus)
    if df.height == 0:
        return pl.DataFrame(schema={"stage": pl.String, "table": pl.String, "reason": pl.String, "failures": pl.UInt32})
    return (df.group_by("stage", "table", "reason").agg(pl.len().alias("failures"))
            .sort(["failures", "stage", "table", "reason"], descending=[True, False, False, False]))


def failure_groups(corpus: Corpus, examples: int = 3) -> pl.DataFrame:
    """``failure_counts`` with a few example row ids each (and their ``file:line`` where known)."""
    import polars as pl

    df = _failures_by_kind(corpus)
    if df.height == 0:
        return failure_counts(corpus).with_columns(pl.lit("").alias("examples"))
    grouped = (df.sort("row_id").group_by("stage", "table", "reason")
               .agg(pl.len().alias("failures"), pl.col("row_id").head(examples), pl.col("source").head(examples)))
    shown = [", ".join(f"{i} ({src})" if src and src != i else str(i) for i, src in zip(ids, sources))
             for ids, sources in zip(grouped["row_id"].to_list(), grouped["source"].to_list())]
    return (grouped.drop("row_id", "source").with_columns(pl.Series("examples", shown, dtype=pl.String))
            .sort(["failures", "stage", "table", "reason"], descending=[True, False, False, False]))


def history(corpus: Corpus) -> list[dict[str, Any]]:
    """One line per stage run from the manifest (a run killed mid-way as ``killed``)."""
    rows = []
    for run in run_records.shown(corpus):
        models = ", ".join(f"{k}={v.get('id', v) if isinstance(v, dict) else v}" for k, v in run.get("models", {}).items())
        rows.append({
            "stage": run["stage"], "status": run.get("status", ""), "ended": run.get("ended", ""),
            "rows_in": run.get("rows_in", 0), "rows_out": sum(run.get("rows_out", {}).values()),
            "failed": run.get("rows_failed", 0), "seconds": run.get("seconds", 0.0), "models": models,
        })
    return rows


def _rich_table(title: str, df: pl.DataFrame) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for col in df.columns:
        table.add_column(col, justify="right" if df.schema[col].is_numeric() else "left")
    for row in df.iter_rows():
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    return table


def show(corpus_dir: Path | str, console: Any, *, failures: bool = False) -> None:
    """Print what ``ccr info`` shows; ``failures`` adds example rows for each kind of failure."""
    import polars as pl
    from rich.text import Text

    corpus = Corpus.open(corpus_dir)
    header = Text(str(corpus.root), style="bold")
    header.append(f" (schema {corpus.manifest()['schema_version']}, media root {corpus.media_root or 'unset'})",
                  style="")
    console.print(header, highlight=False)
    print_table(console, _rich_table("media", media_counts(corpus)))
    print_table(console, _rich_table("captions: split x language x origin", caption_counts(corpus)))
    runs = history(corpus)
    if runs:
        print_table(console, _rich_table("stage history", pl.DataFrame(runs)))
    fails = failure_groups(corpus) if failures else failure_counts(corpus)
    console.print(f"failures: {int(fails['failures'].sum()) if fails.height else 0}", markup=False)
    if fails.height:
        print_table(console, _rich_table("failures by stage and reason" + (", with examples" if failures else ""), fails))
    names = corpus.feature_names()
    console.print(f"features: {', '.join(names) if names else 'none'}", markup=False, highlight=False)
