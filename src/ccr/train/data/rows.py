"""The wide training record as a view over the long ``captions`` table (DESIGN.md "Tables and ids").

Nothing here is stored: each run follows ``parent_id``/``origin``/``lang`` to line up, per English
human caption of the train split, its MT caption in the target language (``mt_text``), the MT
caption's back-translation (``bt_text``), and the corpus ``weight``; and, per val/test split and
language, the human target-language queries (``tgt_text_human``) with their machine translation
to English (``tgt2en_mt_text``) for translate-test. Rows with ``keep == False`` are left out;
the weight is read from the MT row, the pseudo pair a filter judges. Which MT model's rows to read
and what a missing ``keep``/``weight`` means are the corpus views' rules (``ccr.corpus.views``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ccr.corpus.views import choose_model, selection_columns
from ccr.errors import CcrError

if TYPE_CHECKING:
    import polars as pl

    from ccr.corpus.corpus import Corpus

TRANSLATE_TEST_HINT = "run ccr backtranslate --test-queries"


@dataclass
class TrainRecords:
    """One row per training tuple (English caption x target language)."""

    media_id: list[str]
    lang: list[str]
    texts: dict[str, list[str]]  # data key (en, mt, bt) -> text per tuple
    weight: np.ndarray  # (N,) float32

    def restrict(self, has_media: Callable[[str], bool]) -> tuple[TrainRecords, int]:
        """Drop tuples whose media item has no visual input; returns how many went."""
        keep = [i for i, m in enumerate(self.media_id) if has_media(m)]
        if not keep:
            raise CcrError("no training media item has visual input (features or a readable file)")
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
        texts = {k: pick(v) for k, v in self.texts.items()}
        return TrainRecords(pick(self.media_id), pick(self.lang), texts, self.weight[keep]), len(self.media_id) - len(keep)


@dataclass
class EvalRecords:
    """Queries of one split and language against that split's gallery."""

    split: str
    lang: str
    gallery: list[str]  # media ids, the similarity matrix's columns
    caption_ids: list[str]
    queries: list[str]  # human captions in ``lang``
    text_to_media: np.ndarray  # (n_queries,) column of each query's item
    translated: list[str] | None  # xx->en MT of each query, when asked for
    translate_model: str | None = None  # the model key of ``translated``

    def restrict(self, has_media: Callable[[str], bool]) -> tuple[EvalRecords, int]:
        """Drop gallery items without visual input, and their queries; returns how many queries went."""
        gallery = [m for m in self.gallery if has_media(m)]
        if len(gallery) == len(self.gallery):
            return self, 0
        column = {m: i for i, m in enumerate(gallery)}
        keep = [i for i, c in enumerate(self.text_to_media) if self.gallery[c] in column]
        if not keep:
            raise CcrError(f"no {self.split} media item with captions in {self.lang} has visual input")
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
        return replace(self, gallery=gallery, caption_ids=pick(self.caption_ids), queries=pick(self.queries),
                       text_to_media=np.array([column[self.gallery[self.text_to_media[i]]] for i in keep]),
                       translated=pick(self.translated) if self.translated is not None else None
                       ), len(self.queries) - len(keep)


def captions(corpus: Corpus) -> pl.DataFrame:
    """The captions table with ``keep`` and ``weight`` filled in."""
    df = corpus.table("captions")
    return df.with_columns(selection_columns(df.columns))


def translated_languages(corpus: Corpus) -> set[str]:
    """Languages that have MT captions in the train split (what ``--lang`` can train on)."""
    import polars as pl

    caps = corpus.table("captions")
    rows = caps.filter((pl.col("split") == "train") & (pl.col("origin") == "mt") & (pl.col("lang") != "en"))
    return set(rows["lang"].unique().to_list())


def _english(caps: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    rows = caps.filter((pl.col("split") == "train") & (pl.col("lang") == "en") & (pl.col("origin") == "human"))
    if rows.height == 0:
        raise CcrError("no English human captions in the train split; training starts from English captions")
    return rows.filter(pl.col("keep")).select(pl.col("caption_id").alias("en_id"), "media_id", pl.col("text").alias("en"))


def _translations(caps: pl.DataFrame, en: pl.DataFrame, lang: str, mt_model: str | None) -> pl.DataFrame:
    import polars as pl

    if lang == "en":
        raise CcrError("--lang en: give the target language(s) of the MT captions, e.g. --lang de")
    rows = caps.filter((pl.col("split") == "train") & (pl.col("origin") == "mt") & (pl.col("lang") == lang)
                       & pl.col("parent_id").is_in(en["en_id"].implode()))
    model = choose_model(rows, mt_model, f"{lang} MT captions of the English train captions")
    return rows.filter((pl.col("model") == model) & pl.col("keep")).select(
        pl.col("caption_id").alias("mt_id"), pl.col("parent_id").alias("en_id"), pl.col("text").alias("mt"), "weight")


def _back_translations(caps: pl.DataFrame, mt: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    rows = caps.filter((pl.col("origin") == "bt") & (pl.col("lang") == "en")
                       & pl.col("parent_id").is_in(mt["mt_id"].implode()))
    return rows.sort("caption_id").unique("parent_id", keep="first", maintain_order=True).select(
        pl.col("parent_id").alias("mt_id"), pl.col("text").alias("bt"))


def train_records(corpus: Corpus, langs: list[str], keys: frozenset[str], *, mt_model: str | None = None,
                  log: Callable[[str], None] = print) -> TrainRecords:
    """Training tuples for the data keys a method asks for (``en``, ``mt``, ``bt``, ``weight``).

    Without ``mt`` a tuple is one English caption (English-only training); with it, one per
    English caption and language that has a kept MT caption.
    """
    import polars as pl

    caps = captions(corpus)
    en = _english(caps)
    if "mt" not in keys:
        frame = en.with_columns(pl.lit("en").alias("lang"), pl.lit(1.0).alias("weight"))
    else:
        parts = []
        for lang in langs:
            part = en.join(_translations(caps, en, lang, mt_model), on="en_id", how="inner")
            if "bt" in keys:
                with_bt = part.join(_back_translations(caps, part), on="mt_id", how="inner")
                if with_bt.height < part.height:
                    log(f"{part.height - with_bt.height} {lang} tuples have no back-translation and are left out "
                        f"(run ccr backtranslate)")
                part = with_bt
            parts.append(part.with_columns(pl.lit(lang).alias("lang")))
        frame = pl.concat(parts, how="diagonal")
    frame = frame.sort("lang", "en_id")
    if frame.height == 0:
        raise CcrError(f"no training tuples for {', '.join(langs)}: every row is filtered out (keep) or missing")
    texts = {key: frame[key].to_list() for key in ("en", "mt", "bt") if key in keys}
    return TrainRecords(frame["media_id"].to_list(), frame["lang"].to_list(), texts,
                        frame["weight"].cast(pl.Float32).to_numpy())


GALLERIES = ("captioned", "split")


def eval_records(corpus: Corpus, split: str, lang: str, *, translated: bool = False,
                 translate_model: str | None = None, gallery: str = "captioned") -> EvalRecords:
    """Human ``lang`` captions of ``split`` as queries against a gallery of the split's media.

    ``captioned`` (the papers' protocol): the items with a human ``lang`` caption, so MSCOCO's
    1k Japanese test set is scored against its 1k images, not the 5k Karpathy test split; ``split``:
    every item of the split (the others become distractors). Where every item has captions in
    every language (Multi30K, VATEX) the two are the same.
    """
    if gallery not in GALLERIES:
        raise CcrError(f"gallery {gallery!r}: use captioned (the items with {lang} captions) or split (every item)")
    import polars as pl

    caps = captions(corpus)
    queries = caps.filter((pl.col("split") == split) & (pl.col("lang") == lang) & (pl.col("origin") == "human"))
    if queries.height == 0:
        have = caps.filter((pl.col("split") == split) & (pl.col("origin") == "human"))["lang"].unique().sort()
        raise CcrError(f"no human {lang} captions in the {split} split (it has: {', '.join(have) or 'none'})")
    queries = queries.sort("caption_id")
    items = set(queries["media_id"].to_list())
    if gallery == "split":
        items |= set(corpus.table("media").filter(pl.col("split") == split)["media_id"].to_list())
    ordered = sorted(items)
    column = {m: i for i, m in enumerate(ordered)}
    tgt2en, model = _query_translations(caps, queries, translate_model) if translated else (None, None)
    return EvalRecords(split, lang, ordered, queries["caption_id"].to_list(), queries["text"].to_list(),
                       np.array([column[m] for m in queries["media_id"].to_list()], dtype=np.int64), tgt2en, model)


def _query_translations(caps: pl.DataFrame, queries: pl.DataFrame, model: str | None) -> tuple[list[str], str]:
    import polars as pl

    rows = caps.filter((pl.col("origin") == "mt") & (pl.col("lang") == "en")
                       & pl.col("parent_id").is_in(queries["caption_id"].implode()))
    if rows.height == 0:
        raise CcrError(f"translate-test needs English translations of the queries; {TRANSLATE_TEST_HINT}")
    chosen = choose_model(rows, model, "English translations of the queries")
    by_parent = dict(rows.filter(pl.col("model") == chosen).select("parent_id", "text").iter_rows())
    missing = [c for c in queries["caption_id"].to_list() if c not in by_parent]
    if missing:
        raise CcrError(f"{len(missing)} queries have no English translation (e.g. {missing[0]}); {TRANSLATE_TEST_HINT}")
    return [by_parent[c] for c in queries["caption_id"].to_list()], chosen


def descriptions(corpus: Corpus, media_ids: list[str]) -> list[str]:
    """One MLLM description per media item (the first by id), for methods that read them (LECCR)."""
    table = corpus.table("descriptions")
    first = dict(table.sort("description_id").unique("media_id", keep="first").select("media_id", "text").iter_rows())
    missing = [m for m in media_ids if m not in first]
    if missing:
        raise CcrError(f"{len(missing)} media items have no description (e.g. {missing[0]}); run ccr caption")
    return [first[m] for m in media_ids]
