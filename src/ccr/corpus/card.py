"""The dataset card (``CORPUS/README.md``) with Hugging Face YAML metadata.

Regenerated after every stage run, so the card never disagrees with the tables: ``datasets`` can
load the corpus straight from the directory with the ``configs`` it declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccr.corpus import atomic, locks
from ccr.corpus.corpus import STATE, Corpus
from ccr.corpus.info import caption_counts, failure_counts, history, media_counts

if TYPE_CHECKING:
    import polars as pl


def markdown_table(df: object) -> str:
    """A frame as a Markdown table (``_none_`` when it has no rows), for the cards."""
    rows = df.rows()  # type: ignore[attr-defined]
    cols = df.columns  # type: ignore[attr-defined]
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


TAGS = ("ccr", "cross-lingual", "cross-modal-retrieval")


def languages(counts: pl.DataFrame) -> list[str]:
    """The caption languages of ``caption_counts``, for a card's ``language`` metadata."""
    return sorted({r for r in counts["lang"].to_list() if r})


def statistics(corpus: Corpus, counts: pl.DataFrame, media: pl.DataFrame | None = None) -> list[str]:
    """The sections that count what a corpus holds (media, captions, outstanding failures), as card lines;
    ``counts`` and ``media`` (default: the whole corpus's) may count a part of it."""
    return ["## Media", "", markdown_table(media_counts(corpus) if media is None else media),
            "## Captions (split x language x origin)", "", markdown_table(counts),
            "## Failures", "", markdown_table(failure_counts(corpus))]


def render_card(corpus: Corpus) -> str:
    counts = caption_counts(corpus)
    tables = [t for t in ("media", "captions", "descriptions", "slots", "failures") if corpus.files(t)]
    yaml = ["---", "language:"] + [f"- {lang}" for lang in languages(counts)] + ["configs:"]
    for t in tables:
        yaml += [f"- config_name: {t}", f"  data_files: \"{t}/*.parquet\""]
    yaml += ["tags:", *(f"- {tag}" for tag in TAGS), "---", ""]
    runs = history(corpus)
    hist = "\n".join(
        f"| {r['stage']} | {r['status']} | {r['ended']} | {r['rows_in']} | {r['rows_out']} | {r['failed']} | {r['models']} |"
        for r in runs)
    body = [
        "# ccr corpus", "",
        ("A cross-lingual cross-modal corpus written by `ccr`. Tables are append-only Parquet shards; "
         "columns added by later stages live in side tables (`captions.STAGE/`) joined on `caption_id` "
         "by `ccr.corpus.corpus.Corpus.table`. Load it with `Corpus.open(PATH).dataset('captions')`, "
         "or export it for the Hub with `ccr export PATH --out DIR --format hf`."), "",
        *statistics(corpus, counts),
        "## Stage history", "",
        "| stage | status | ended | rows in | rows out | failed | models |", "|---|---|---|---|---|---|---|",
        hist or "| | | | | | | |", "",
        "Features: " + (", ".join(corpus.feature_names()) or "none") + "", "",
    ]
    return "\n".join(yaml + body)


CARD = "README.md"


def write_card(corpus: Corpus) -> None:
    """Write the card; workers finishing together take turns, and a killed writer's temporary goes."""
    with locks.exclusive(corpus.root / STATE / "card.lock"):
        atomic.remove_temporaries(corpus.root, lambda name: name == CARD)
        atomic.write_bytes(corpus.root / CARD, render_card(corpus).encode("utf-8"))
