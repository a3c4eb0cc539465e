"""What a search ranks, and what it shows of each hit, read from the corpus tables.

A text or image query ranks media: ``captioned`` (the items of the split with a human caption in
the query language, as ``ccr evaluate`` scores by default) or ``split`` (every item of the split).
A media query ranks the split's human captions in the language. Only the ids are read to find the
gallery; captions and paths are read for the hits alone, so a 100k-item gallery costs two
filtered scans per search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccr.errors import CcrError
from ccr.train.data.rows import GALLERIES

if TYPE_CHECKING:
    import polars as pl

    from ccr.corpus.corpus import Corpus


def _human(corpus: Corpus, split: str, lang: str) -> pl.LazyFrame:
    import polars as pl

    return corpus.scan("captions", with_side_tables=False).filter(
        (pl.col("split") == split) & (pl.col("lang") == lang) & (pl.col("origin") == "human"))


def media_ids(corpus: Corpus, split: str, lang: str, kind: str) -> list[str]:
    """The gallery of a text or image query, sorted."""
    import polars as pl

    if kind not in GALLERIES:
        raise CcrError(f"--gallery {kind}: use captioned (the {split} items with {lang} captions) or split (every item)")
    if kind == "split":
        frame = corpus.scan("media", with_side_tables=False).filter(pl.col("split") == split)
    else:
        frame = _human(corpus, split, lang)
    ids = frame.select("media_id").unique().collect()["media_id"].sort().to_list()
    if not ids:
        _check_split(corpus, split)
        raise CcrError(f"no {split} media with human {lang} captions in {corpus.root}; rank every {split} item "
                       f"with --gallery split")
    return ids


def captions(corpus: Corpus, split: str, lang: str) -> pl.DataFrame:
    """``caption_id``, ``media_id``, ``text`` of the split's human ``lang`` captions, by id: a media query's gallery."""
    frame = _human(corpus, split, lang).select("caption_id", "media_id", "text").collect().sort("caption_id")
    if frame.height == 0:
        _check_split(corpus, split)
        raise CcrError(f"no human {lang} captions in the {split} split of {corpus.root} to rank; pick another --lang")
    return frame


def _check_split(corpus: Corpus, split: str) -> None:
    splits = corpus.scan("media", with_side_tables=False).select("split").unique().collect()["split"].sort()
    if split not in splits.to_list():
        raise CcrError(f"no {split} split in {corpus.root} (it has: {', '.join(splits)}); pick one with --split")


def media_rows(corpus: Corpus, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Split and file (resolved against the media root where it can be) of each media item found."""
    import polars as pl

    rows = (corpus.scan("media", with_side_tables=False).filter(pl.col("media_id").is_in(ids))
            .select("media_id", "split", "path").collect())
    found = {}
    for m, split, path in rows.iter_rows():
        where = corpus.resolve_media(path)
        found[m] = {"split": split, "path": str(where) if where else None}
    return found


def captions_of(corpus: Corpus, media: list[str], lang: str) -> dict[str, list[str]]:
    """Each item's human captions in ``lang``, else its English ones (an item of a ``split`` gallery may have none)."""
    import polars as pl

    rows = (corpus.scan("captions", with_side_tables=False)
            .filter(pl.col("media_id").is_in(media) & (pl.col("origin") == "human") & pl.col("lang").is_in([lang, "en"]))
            .select("media_id", "lang", "caption_id", "text").collect().sort("caption_id"))
    found: dict[str, list[str]] = {}
    for want in (lang, "en"):
        for m, texts in rows.filter(pl.col("lang") == want).group_by("media_id", maintain_order=True).agg("text").iter_rows():
            found.setdefault(m, texts)
    return found
