"""Which MT rows a consumer reads when a language may have several MT models (DESIGN.md, "Tables and ids").

The rule every consumer shares: ``--mt-model KEY`` when several models made rows for a language,
else the only one, else an error listing the choices. ``backtranslate``, ``score`` and ``noise``
(through ``ccr.filter.common``) call these two functions; the trainer applies the same rule to its
own tables with ``ccr.train.data.rows.choose_model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ccr.errors import CcrError

if TYPE_CHECKING:
    import polars as pl


def mt_rows(captions: pl.LazyFrame, lang: str, key: str) -> pl.LazyFrame:
    """The ``origin=mt`` rows of ``lang`` that model ``key`` made from English captions."""
    import polars as pl

    return captions.filter((pl.col("origin") == "mt") & (pl.col("lang") == lang) & (pl.col("model") == key))


def choose_mt_models(captions: pl.LazyFrame, langs: Sequence[str], wanted: Sequence[str] = ()) -> dict[str, str]:
    """The model key to read for each language in ``langs`` (``wanted`` = the ``--mt-model`` keys)."""
    import polars as pl

    found = (captions.filter((pl.col("origin") == "mt") & pl.col("lang").is_in(list(langs)))
             .select("lang", "model").unique().collect())
    keys = {lang: sorted(k for k in found.filter(pl.col("lang") == lang)["model"].to_list() if k) for lang in langs}
    for lang in langs:
        if not keys[lang]:
            raise CcrError(f"the corpus has no machine-translated {lang} captions; make them first: "
                           f"ccr translate CORPUS --lang {lang}")
    unknown = [k for k in wanted if not any(k in keys[lang] for lang in langs)]
    if unknown:
        available = ", ".join(k for lang in langs for k in keys[lang])
        raise CcrError(f"--mt-model {', '.join(unknown)} matches no MT model of {', '.join(langs)}; "
                       f"available: {available}")
    chosen: dict[str, str] = {}
    for lang in langs:
        picked = [k for k in wanted if k in keys[lang]] or keys[lang]
        if len(picked) > 1:
            raise CcrError(f"several MT models made {lang} captions: {', '.join(picked)}; "
                           "pick one with --mt-model KEY")
        chosen[lang] = picked[0]
    return chosen
