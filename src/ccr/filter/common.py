"""What the filter stages share: which MT rows they read, and seeded orders that depend only on ids.

Every random choice here (DCOT groups, which rows get noise, swap partners) is a function of the
row ids and a seed, never of row order, batch size or shard count: resuming, sharding and
rerunning a stage then give the same rows the same outcome.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ccr.errors import CcrError
from ccr.translate.routes import run_languages
from ccr.translate.select import choose_mt_models, mt_rows

if TYPE_CHECKING:
    import polars as pl

    from ccr.corpus.corpus import Corpus

# Per-pair scores where higher means "more likely a correct pair" (DESIGN.md, "Column names").
SCORES = ("xl_sim", "xm_sim", "dcot_conf", "rt_sim")


def seeded_key(seed: int, row_id: str) -> bytes:
    """A 64-bit pseudo-random key of one id; stable across processes, platforms and versions."""
    return hashlib.blake2b(f"{seed}\0{row_id}".encode(), digest_size=8).digest()


def seeded_order(ids: Iterable[str], seed: int) -> list[str]:
    """The ids in a random order that depends only on the set of ids and the seed."""
    return sorted(ids, key=lambda i: (seeded_key(seed, i), i))


def mt_languages(captions: pl.LazyFrame) -> list[str]:
    """Languages with MT rows made from English (``origin=mt``, not the English test queries)."""
    import polars as pl

    found = captions.filter((pl.col("origin") == "mt") & (pl.col("lang") != "en")).select("lang").unique().collect()
    return sorted(found["lang"].to_list())


def target_languages(captions: pl.LazyFrame, requested: Sequence[str]) -> list[str]:
    """``--lang`` if given, else every language that has MT rows."""
    if requested:
        return run_languages(requested)
    langs = mt_languages(captions)
    if not langs:
        raise CcrError("the corpus has no machine-translated captions; make them first: ccr translate CORPUS --lang cs")
    return langs


def chosen_mt_rows(corpus: Corpus, langs: Sequence[str], wanted: Sequence[str], *, side_tables: bool,
                   ignore: Sequence[str] = ()) -> tuple[pl.LazyFrame, dict[str, str]]:
    """The MT rows of ``langs`` from one model each (``--mt-model``, else the only one), and the keys.

    ``ignore``: model keys that are not candidates (a stage's own output when it resumes).
    """
    import polars as pl

    captions = corpus.scan("captions", with_side_tables=False).filter(~pl.col("model").is_in(list(ignore)))
    keys = choose_mt_models(captions, langs, wanted)
    source = corpus.scan("captions", with_side_tables=side_tables)
    return pl.concat([mt_rows(source, lang, keys[lang]) for lang in langs], how="diagonal_relaxed"), keys
