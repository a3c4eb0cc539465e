"""The corpus as its readers see it (DESIGN.md, "Tables and ids", "Column names", "Descriptions").

Every stage, the trainer and the report read the long tables through these rules, so that each
rule exists once:

- derived ids: a translated row is ``{parent_id}|{origin}:{lang}:{model_key}``, a description
  ``{media_id}|{prompt_id}|{model_key}``, a slot ``{media_id}|{feature set}|{i}``;
- which model's rows to read where several models made rows for one language (or described the
  media): the one asked for (``--mt-model KEY``, ``--description-model KEY``), else the only one, else an error
  listing the choices;
- what a missing ``keep`` or ``weight`` means (kept, weight 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from ccr import languages
from ccr.errors import CcrError

if TYPE_CHECKING:
    import polars as pl

    from ccr.corpus.corpus import Corpus

# The contract's meaning of a missing value (DESIGN.md, "Column names"): rows are kept, at weight 1.
SELECTION_DEFAULTS = {"keep": True, "weight": 1.0}


class DerivedId(NamedTuple):
    parent_id: str
    origin: str
    lang: str
    model_key: str


def derived_suffix(origin: str, lang: str, model_key: str) -> str:
    """What a derived row's id adds to its parent's: lets a polars expression build ids column-wise."""
    return f"|{origin}:{lang}:{model_key}"


def derived_id(parent_id: str, origin: str, lang: str, model_key: str) -> str:
    """The id of the row ``model_key`` made from ``parent_id``: two models' rows of one language coexist."""
    return parent_id + derived_suffix(origin, lang, model_key)


def parse_derived_id(caption_id: str) -> DerivedId | None:
    """The parts of a derived id; None for a human row's id. The parent may itself be derived (a bt row's)."""
    parent, sep, tail = caption_id.rpartition("|")
    parts = tail.split(":", 2)
    if not sep or len(parts) != 3:
        return None
    return DerivedId(parent, *parts)


def description_id(media_id: str, prompt_id: str, model_key: str) -> str:
    """One description per item, prompt and model, so that models and prompts live side by side."""
    return f"{media_id}|{prompt_id}|{model_key}"


def slot_id(media_id: str, feature_set: str, slot: int) -> str:
    return f"{media_id}|{feature_set}|{slot}"


def selection_columns(present: Iterable[str]) -> list[pl.Expr]:
    """``keep`` and ``weight`` as every reader takes them, whether or not ``ccr select`` has run."""
    import polars as pl

    names = set(present)
    return [(pl.col(name).fill_null(default) if name in names else pl.lit(default)).alias(name)
            for name, default in SELECTION_DEFAULTS.items()]


# ---- which model's rows -------------------------------------------------------------------------


def choose_models(found: Mapping[str, Iterable[str | None]], wanted: Sequence[str], *, what: str, option: str,
                  make: str) -> dict[str, str]:
    """Per group (a language), the model key whose rows to read.

    ``found``: the model keys present per group; ``wanted``: the keys the user asked for, each of
    which may belong to any group. ``what`` names one group's rows and ``make`` says how to make
    them; both may hold ``{group}``.
    """
    keys = {group: sorted({k for k in ks if k}) for group, ks in found.items()}
    for group, ks in keys.items():
        if not ks:
            raise CcrError(f"the corpus has no {what.format(group=group)}; {make.format(group=group)}")
    available = [k for ks in keys.values() for k in ks]
    unknown = [k for k in wanted if k not in available]
    if unknown:
        raise CcrError(f"{option} {', '.join(map(repr, unknown))}: no {what.format(group=' or '.join(keys))} from it; "
                       f"available: {', '.join(available)}")
    chosen: dict[str, str] = {}
    for group, ks in keys.items():
        picked = list(dict.fromkeys(k for k in wanted if k in ks)) or ks
        if len(picked) > 1:
            raise CcrError(f"several models made {what.format(group=group)}: {', '.join(picked)}; "
                           f"pick one with {option} KEY")
        chosen[group] = picked[0]
    return chosen


def choose_model(rows: pl.DataFrame, requested: str | None, what: str) -> str:
    """The MT model key of ``rows`` (one kind of MT rows, described by ``what``) to read."""
    found = {what: rows["model"].unique().to_list()}
    return choose_models(found, [requested] if requested is not None else [], what=what, option="--mt-model",
                         make="run ccr translate first")[what]


def mt_rows(captions: pl.LazyFrame, lang: str, key: str) -> pl.LazyFrame:
    """The ``origin=mt`` rows of ``lang`` that model ``key`` made."""
    import polars as pl

    return captions.filter((pl.col("origin") == "mt") & (pl.col("lang") == lang) & (pl.col("model") == key))


def choose_mt_models(captions: pl.LazyFrame, langs: Sequence[str], wanted: Sequence[str] = ()) -> dict[str, str]:
    """The model key to read for each language in ``langs`` (``wanted`` = the ``--mt-model`` keys)."""
    import polars as pl

    found = (captions.filter((pl.col("origin") == "mt") & pl.col("lang").is_in(list(langs)))
             .select("lang", "model").unique().collect())
    return choose_models({lang: found.filter(pl.col("lang") == lang)["model"].to_list() for lang in langs}, wanted,
                         what="machine-translated {group} captions", option="--mt-model",
                         make="make them first: ccr translate CORPUS --lang {group}")


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


# ---- which languages ----------------------------------------------------------------------------


def run_languages(codes: Sequence[str]) -> list[str]:
    """The non-English languages of a run, checked, in the order given: English is the pivot."""
    if not codes:
        raise CcrError("no language given: pass e.g. --lang cs or --lang de,fr,cs")
    langs = [languages.check(c) for c in dict.fromkeys(codes)]
    if "en" in langs:
        raise CcrError("--lang en: English is the pivot; name the other languages, e.g. --lang de,fr")
    return langs


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


# ---- descriptions -------------------------------------------------------------------------------


def read_descriptions(corpus: Corpus) -> pl.LazyFrame:
    """The descriptions table with one row per id: a later run of one model and prompt supersedes."""
    return corpus.scan("descriptions").unique(subset=["description_id"], keep="last", maintain_order=True)


def chosen_descriptions(corpus: Corpus, mllm: str | None, prompt_ids: Sequence[str]) -> tuple[pl.LazyFrame, str]:
    """The descriptions of one model (``--description-model``, else the only one) and of ``prompt_ids`` (all if
    empty), and that model's key."""
    import polars as pl

    descriptions = read_descriptions(corpus)
    found = descriptions.select("model").unique().collect()["model"].to_list()
    key = choose_models({"descriptions": found}, [mllm] if mllm is not None else [], what="descriptions",
                        option="--description-model", make="run ccr caption CORPUS first")["descriptions"]
    mine = descriptions.filter(pl.col("model") == key)
    if prompt_ids:
        present = mine.select("prompt_id").unique().collect()["prompt_id"].sort().to_list()
        missing = sorted(set(prompt_ids) - set(present))
        if missing:
            raise CcrError(f"no {key} descriptions with prompt {', '.join(missing)}; present: {', '.join(present)}")
        mine = mine.filter(pl.col("prompt_id").is_in(list(prompt_ids)))
    return mine, key
