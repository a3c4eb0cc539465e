"""What a translation run owes and in what order.

Each owed row is an *item*: the id of the row it will become (``{parent}|{origin}:{lang}:{key}``),
the text to translate and the route that translates it. Done-ness is per item id, and the id
names language and model, so adding a language later owes only that language's rows.

Items are ordered by (route, length, text): every batch holds sentences of similar length
(little padding), and identical captions sit next to each other, so the worker translates each
distinct text once even when a run of duplicates crosses a batch boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ccr.corpus.corpus import Corpus
from ccr.corpus.views import derived_suffix, parse_derived_id
from ccr.errors import CcrError
from ccr.stages.runner import Chunk, DoneState, RunOptions, chunk_key
from ccr.translate.routes import Route

if TYPE_CHECKING:
    import polars as pl

ITEM_COLUMNS = ("caption_id", "parent_id", "media_id", "split", "lang", "origin", "model", "route", "text",
                "reference")
SORT_WINDOW = 10_000  # items sorted together; larger windows sort better and hold more in memory


def items_from(rows: pl.LazyFrame, route: Route, origin: str, reference: pl.Expr | None = None) -> pl.LazyFrame:
    """Items that translate ``rows`` (caption rows: caption_id, media_id, split, text) along ``route``.

    ``reference`` is the English text a back-translation is compared with (``rt_sim``).
    """
    import polars as pl

    return rows.select(
        caption_id=pl.col("caption_id") + derived_suffix(origin, route.tgt, route.model.key),
        parent_id=pl.col("caption_id"),
        media_id=pl.col("media_id"),
        split=pl.col("split"),
        lang=pl.lit(route.tgt),
        origin=pl.lit(origin),
        model=pl.lit(route.model.key),
        route=pl.lit(route.name),
        text=pl.col("text"),
        reference=reference if reference is not None else pl.lit(None, dtype=pl.String),
    )


def owed_chunks(stage: str, items: Callable[[], pl.LazyFrame], total: Callable[[], int]
                ) -> Callable[[Corpus, DoneState, RunOptions], Iterator[Chunk]]:
    """The runner's ``Plan.chunks`` for items: what the run owes, sorted, refused if it would duplicate rows, cut.

    The runner's rule decides what is owed (``DoneState.limit_to`` sees every item id, so
    ``--limit`` is the first N ids of the whole plan). Items are then sorted in windows of about
    ``SORT_WINDOW``, each window one hash bucket of the text, so the text stays out of memory as
    the corpus grows while identical captions still meet. ``total`` counts the items (the plan's
    own count, computed once).
    """

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        import polars as pl

        lazy = items()
        ids = lazy.select("caption_id").collect(engine="streaming")["caption_id"]
        done.limit_to(ids)
        done.count_owed(ids)
        del ids
        refuse_existing(corpus, stage, lazy, done)
        buckets = max(1, -(-total() // SORT_WINDOW))
        for bucket in range(buckets):
            window = lazy if buckets == 1 else lazy.filter(pl.col("text").hash(seed=0) % buckets == bucket)
            frame = window.collect(engine="streaming")
            frame = frame.filter(pl.Series([done.owes(i) for i in frame["caption_id"]], dtype=pl.Boolean)).sort(
                [pl.col("route"), pl.col("text").str.len_chars(), pl.col("text"), pl.col("caption_id")])
            for start in range(0, frame.height, options.chunk_rows):
                part = frame.slice(start, options.chunk_rows)
                ids = part["caption_id"].to_list()
                yield Chunk(key=chunk_key(ids), items=part.to_dicts(), ids=ids)

    return chunks


def refuse_existing(corpus: Corpus, stage: str, items: pl.LazyFrame, done: DoneState) -> None:
    """Owed rows that the corpus already holds were made by a run with other settings (beam,
    compute type, ...): writing them again would give two rows one id, so stop and say why.

    Joining every owed id against every caption id holds both in memory, so it runs only when
    counts show rows this fingerprint did not make among the run's kinds (origin, language, model).
    """
    if not _foreign_rows(corpus, items, done):
        return
    existing = corpus.scan("captions", with_side_tables=False).select("caption_id")
    held = items.select("caption_id").join(existing, on="caption_id", how="semi").collect()["caption_id"]
    clash = [i for i in held if done.owes(i)]
    if clash:
        raise CcrError(
            f"{len(clash)} rows this {stage} run would write already exist (e.g. {clash[0]!r}), made by an "
            f"earlier {stage} run with other settings; a corpus keeps one row per caption, language and model: "
            "repeat the earlier settings, or run the new ones on a copy of the corpus (cp -r CORPUS NEW)")


def _foreign_rows(corpus: Corpus, items: pl.LazyFrame, done: DoneState) -> bool:
    """Whether the corpus holds rows of the items' kinds beyond those this fingerprint committed."""
    from ccr.corpus.info import grouped_counts

    keys = ["origin", "lang", "model"]
    kinds = items.select(keys).unique().collect()
    held = grouped_counts(corpus, "captions", keys, "rows").join(kinds, on=keys, how="semi")["rows"].sum()
    wanted = set(kinds.iter_rows())
    mine = sum(1 for i in done.done_ids if (d := parse_derived_id(i)) and (d.origin, d.lang, d.model_key) in wanted)
    return held > mine
