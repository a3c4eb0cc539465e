"""Which caption rows a report shows, read from the corpus in bounded memory.

A report row is an MT caption with its English parent, its back-translation, its media and its
scores (or, in a corpus without MT rows, any caption). Parents and back-translations share their
MT row's media_id, so the captions, media, descriptions and slots are spilled into partitions by
a hash of media_id, and each partition joins on its own. Side tables (``captions.STAGE``) carry
only caption_id, so they are spilled by a hash of caption_id next to a caption_id -> partition
map, joined there by ``corpus.join_side`` as ``Corpus.scan`` joins them (per side table the last
row of an id wins; a side table overrides only the rows it has), and the scores are spilled again
by media partition. Every step holds one batch or one partition, whatever the corpus size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.corpus.corpus import Corpus, join_side
from ccr.corpus.schema import BASE_COLUMNS, SPLIT_RULE, is_split
from ccr.corpus.views import SELECTION_DEFAULTS
from ccr.errors import CcrError
from ccr.report.spill import Spill, part_of, shard_batches, shard_columns

if TYPE_CHECKING:
    import polars as pl

# the scores stages write on MT rows (DESIGN.md, "Column names"), in the order the report shows them
NUMERIC_SCORES = ("mt_logprob", "len_ratio", "rt_sim", "xl_sim", "xm_sim", "dcot_conf", "weight")
CATEGORY_SCORES = ("keep", "is_copy", "noise_type")
MISSING = "(missing)"
BASE = BASE_COLUMNS["captions"]
MEDIA_TABLES = {
    "media": ("media_id", "modality", "path"),
    "descriptions": ("media_id", "description_id", "model", "prompt_id", "text"),
    "slots": ("media_id", "slot_id", "slot", "text", "size"),
}
PART_ROWS = 20_000  # caption rows (all origins) per partition


@dataclass
class RowPlan:
    mode: str  # "pairs" (MT rows) or "captions" (a corpus without MT rows)
    langs: list[str] | None
    splits: list[str] | None
    limit: int | None
    total: int  # rows the report shows (after --limit)
    numeric: list[str]  # score columns present, float
    categories: list[str]  # columns the page filters on: lang, split, ... and the categorical scores

    def where(self) -> pl.Expr:
        import polars as pl

        expr = pl.col("origin") == "mt" if self.mode == "pairs" else pl.lit(True)
        if self.langs:
            expr = expr & pl.col("lang").is_in(self.langs)
        if self.splits:
            expr = expr & pl.col("split").is_in(self.splits)
        return expr


@dataclass
class Partitions:
    """A corpus read into partition files; ``items`` holds what failure rows point at."""

    count: int
    captions: Spill
    scores: Spill | None
    media: dict[str, Spill]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)


def _values(text: str | Sequence[str] | None) -> list[str] | None:
    if text is None:
        return None
    items = [text] if isinstance(text, str) else list(text)
    return [x.strip() for item in items for x in item.split(",") if x.strip()] or None


def _columns(files: list[Path]) -> set[str]:
    return {c for f in files for c in shard_columns(f)}


def _total_rows(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in files)


def read_corpus(corpus: Corpus, work: Path, langs: str | Sequence[str] | None, splits: str | Sequence[str] | None,
                limit: int | None, lookup: set[str]) -> tuple[RowPlan, Partitions]:
    """Spill the corpus into partitions under ``work`` and check the narrowing against what it holds.

    ``lookup``: row ids (of failure rows) whose caption or media the report shows beside them.
    """
    import polars as pl

    from ccr.corpus.schema import column_types

    if limit is not None and limit < 1:
        raise CcrError(f"--limit {limit}: give a positive number of rows")
    wanted_langs, wanted_splits = _values(langs), _values(splits)
    for value in wanted_splits or []:
        if not is_split(value):
            raise CcrError(f"--split {value!r}: use one of {SPLIT_RULE}")
    types = column_types()
    files = corpus.files("captions")
    parts = max(1, math.ceil(_total_rows(files) / PART_ROWS))
    in_captions = _columns(files)
    schema = {c: types["captions"][c] for c in BASE + NUMERIC_SCORES + CATEGORY_SCORES
              if c in BASE or c in in_captions}
    captions = Spill(work / "captions", parts, schema)
    ids = Spill(work / "ids", parts, {"caption_id": pl.String, "part": pl.UInt32})
    counts: dict[tuple[bool, str, str], int] = {}
    items: dict[str, dict[str, Any]] = {}
    for path in files:
        for frame in shard_batches(path, schema):
            captions.add(frame, part_of("media_id", parts))
            ids.add(frame.select("caption_id", part_of("media_id", parts).alias("part")), part_of("caption_id", parts))
            grouped = frame.group_by(pl.col("origin") == "mt", "lang", pl.col("split").fill_null(MISSING)).len()
            for is_mt, lang, split, n in grouped.iter_rows():
                counts[(is_mt, lang, split)] = counts.get((is_mt, lang, split), 0) + n
            if lookup:
                for r in frame.filter(pl.col("caption_id").is_in(list(lookup))).iter_rows(named=True):
                    items.setdefault(r["caption_id"], {}).update(lang=r["lang"], text=r["text"], media=r["media_id"])
    captions.close()
    ids.close()
    media = {table: _spill_media_table(corpus, work, table, parts, types[table], lookup, items) for table in MEDIA_TABLES}
    scores, in_sides = _spill_scores(corpus, work, ids, parts, types["captions"])
    plan = _plan(counts, wanted_langs, wanted_splits, limit, in_captions | in_sides, corpus.root)
    return plan, Partitions(count=parts, captions=captions, scores=scores, media=media, items=items)


def _spill_media_table(corpus: Corpus, work: Path, table: str, parts: int, types: dict[str, Any], lookup: set[str],
                       items: dict[str, dict[str, Any]]) -> Spill:
    import polars as pl

    spill = Spill(work / table, parts, {c: types[c] for c in MEDIA_TABLES[table]})
    for path in corpus.files(table):
        for frame in shard_batches(path, spill.schema):
            spill.add(frame, part_of("media_id", parts))
            if table == "media" and lookup:
                for r in frame.filter(pl.col("media_id").is_in(list(lookup))).iter_rows(named=True):
                    items.setdefault(r["media_id"], {})["path"] = r["path"]
    spill.close()
    return spill


def _spill_scores(corpus: Corpus, work: Path, ids: Spill, parts: int,
                  types: dict[str, Any]) -> tuple[Spill | None, set[str]]:
    """Side-table scores joined onto caption ids, spilled again by media partition."""
    import polars as pl

    sides = []
    for name in corpus.side_tables("captions"):
        files = corpus.files(name)
        wanted = [c for c in NUMERIC_SCORES + CATEGORY_SCORES if c in _columns(files)]
        if not wanted:
            continue
        spill = Spill(work / name, parts, {"caption_id": pl.String, **{c: types[c] for c in wanted}})
        for path in files:
            for frame in shard_batches(path, spill.schema):
                spill.add(frame, part_of("caption_id", parts))
        spill.close()
        sides.append(spill)
    if not sides:
        return None, set()
    columns = [c for c in NUMERIC_SCORES + CATEGORY_SCORES if any(c in s.schema for s in sides)]
    scores = Spill(work / "scores", parts, {"caption_id": pl.String, **{c: types[c] for c in columns}})
    for q in range(parts):
        frame = ids.read(q)
        for side in sides:
            frame = join_side(frame, side.read(q).unique("caption_id", keep="last", maintain_order=True), "caption_id")
        scores.add(frame, pl.col("part"))
    scores.close()
    return scores, set(columns)


def _plan(counts: dict[tuple[bool, str, str], int], langs: list[str] | None, splits: list[str] | None,
          limit: int | None, columns: set[str], root: Path) -> RowPlan:
    has_mt = any(is_mt for is_mt, _, _ in counts)
    candidates = {(lang, split): n for (is_mt, lang, split), n in counts.items() if is_mt or not has_mt}
    what = "MT captions" if has_mt else "captions"
    for position, column, wanted in ((1, "split", splits), (0, "lang", langs)):
        present = sorted({key[position] for key in candidates})
        absent = [v for v in wanted or [] if v not in present]
        if absent:
            raise CcrError(f"no {what} with {column} {absent[0]!r} in {root}; present: {', '.join(present) or 'none'}")
    total = sum(n for (lang, split), n in candidates.items()
                if (not langs or lang in langs) and (not splits or split in splits))
    categories = ["lang", "split", "model"] + ([] if has_mt else ["origin"])
    return RowPlan(mode="pairs" if has_mt else "captions", langs=langs, splits=splits, limit=limit,
                   total=min(total, limit) if limit is not None else total,
                   numeric=[c for c in NUMERIC_SCORES if c in columns],
                   categories=categories + [c for c in CATEGORY_SCORES if c in columns])


def slices(parts: Partitions, plan: RowPlan) -> Iterator[tuple[pl.DataFrame, dict[str, dict[str, list[Any]]]]]:
    """Each partition's report rows, joined and sorted by media, with its media's descriptions and slots."""
    import polars as pl

    remaining = plan.total
    for index in range(parts.count):
        if remaining <= 0:
            return
        captions = parts.captions.read(index)
        if parts.scores is not None:
            scores = parts.scores.read(index)
            new = [c for c in scores.columns if c != "caption_id"]
            captions = captions.drop([c for c in new if c in captions.columns]).join(scores, on="caption_id", how="left")
        parents = captions.select(pl.col("caption_id").alias("parent_id"), pl.col("text").alias("src"),
                                  pl.col("lang").alias("src_lang"))
        back = (captions.filter(pl.col("origin") == "bt").sort("caption_id")
                .unique("parent_id", keep="first", maintain_order=True)
                .select(pl.col("parent_id").alias("caption_id"), pl.col("text").alias("bt")))
        media = parts.media["media"].read(index).unique("media_id", keep="last")
        rows = (captions.filter(plan.where())
                .join(parents, on="parent_id", how="left")
                .join(back, on="caption_id", how="left")
                .join(media, on="media_id", how="left")
                .sort("media_id", "caption_id")
                .head(remaining)
                .with_columns([pl.col(c).fill_null(v) for c, v in SELECTION_DEFAULTS.items() if c in plan.numeric + plan.categories]))
        remaining -= rows.height
        yield rows, media_details(parts, index, set(rows["media_id"].to_list()))


def media_details(parts: Partitions, index: int, media_ids: set[str]) -> dict[str, dict[str, list[Any]]]:
    """MLLM descriptions and semantic slots of these media items, where the corpus has them."""
    import polars as pl

    details: dict[str, dict[str, list[Any]]] = {}
    wanted = pl.col("media_id").is_in(list(media_ids))
    found = parts.media["descriptions"].read(index).filter(wanted).sort("media_id", "model", "prompt_id", "description_id")
    for r in found.iter_rows(named=True):
        entry = details.setdefault(r["media_id"], {"descriptions": [], "slots": []})
        entry["descriptions"].append({"model": r["model"], "prompt": r["prompt_id"], "text": r["text"]})
    found = parts.media["slots"].read(index).filter(wanted).sort("media_id", "slot", "slot_id")
    for r in found.iter_rows(named=True):
        entry = details.setdefault(r["media_id"], {"descriptions": [], "slots": []})
        entry["slots"].append({"slot": r["slot"], "text": r["text"], "size": r["size"]})
    return details
