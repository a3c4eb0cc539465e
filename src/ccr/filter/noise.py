"""``ccr noise inject``: a copy of a corpus whose MT captions carry known, controlled noise.

How the noisy text reaches every reader. Tables are append-only and ids are stable, so noise
never rewrites an MT row: the stage adds a NEW MT row per MT row of the chosen model, made by
model ``{key}+noise`` (id ``{parent}|mt:{lang}:{key}+noise``, same parent, media and split), whose
text is the original or, for a share ``--rate`` of them, a corrupted one; the truth goes to the
side table ``captions.noise`` (``noise_type`` = none|swap|drop|replace|copy|truncate). The noisy
set is then an MT model like any other: ``ccr score``/``select``/``backtranslate``/``train`` take
``--mt-model {key}+noise``, ``export`` and ``report`` show it under its model key, and rows of
the original model stay as they were (with any scores they had) for comparison.

Rejected alternative: a side table with a ``text`` column. ``Corpus.scan`` replaces a base column
by a side table's column of the same name through a left join, so every row the side table does
not list (English captions, rows a later stage adds) would read back with ``text = null``, and
readers that skip side tables (translate, backtranslate) would still see the clean text.

The corpus is copied first (``ccr.corpus.copy``: data shards hard-linked where the file system
allows) and the manifest of the copy names its source;
the stage refuses to run on a corpus that is not such a copy, so noise never lands in place. A
copy holds one injection: its settings are recorded in the manifest and other settings are
refused (their rows would reuse the first injection's ids), which also means that a noisy corpus
is not noised again; inject into a new copy of the clean corpus instead.

Which rows and how, per language: the rows are ordered by a seeded hash of their ids; the first
``round(rate * n)`` are corrupted, the noise types taking turns in the order given; a row the
noise cannot change (a one-word caption to drop from) is recorded as ``none``, so the truth is
always what the text shows. A swap takes
the MT text of the next row in that order showing another media item; replace puts words of that
same row in place of a share ``word_rate`` of the words (never a word by itself); copy puts the English source in place of the translation (a known MT
failure); drop and truncate remove a share ``word_rate`` of the words (characters for text
without spaces). Everything is a function of the ids and the seed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr import paths
from ccr.config import option, semantic_dict
from ccr.corpus.copy import copy_corpus
from ccr.corpus.corpus import Corpus
from ccr.corpus.views import chosen_mt_rows, derived_id, target_languages
from ccr.errors import CcrError
from ccr.filter.common import seeded_order
from ccr.models import mt_languages
from ccr.stages.runner import (
    BatchResult,
    Failure,
    Plan,
    RunOptions,
    RunSummary,
    Stage,
    table_chunks,
)

if TYPE_CHECKING:
    import polars as pl

NOISE_TYPES = ("swap", "drop", "replace", "copy", "truncate")
SIDE_TABLE = "captions.noise"
SOURCE_FIELD = "noise_source"  # manifest field of a noisy copy: the corpus it was copied from
CONFIG_FIELD = "noise_config"  # ... and the settings of its one injection
SUFFIX = "+noise"


@dataclass
class NoiseConfig:
    rate: float = option(0.2, "share of each language's MT rows made noisy (exact, rounded)")
    types: tuple[str, ...] = option(("swap",), "noise types taking turns, comma-separated", choices=NOISE_TYPES,
                                    flag="--type")
    seed: int = option(0, "which rows, which partners, which words")
    word_rate: float = option(0.5, "share of a caption's words that drop, replace and truncate change")
    lang: tuple[str, ...] = option((), "only these MT languages, comma-separated (default: all)", runtime=True,
                                   known=mt_languages)
    mt_model: tuple[str, ...] = option((), "model key of the MT rows to read, where a language has several "
                                           "(repeatable)", runtime=True)


def noisy_key(key: str) -> str:
    return f"{key}{SUFFIX}"


def _check(cfg: NoiseConfig) -> None:
    if not 0.0 <= cfg.rate <= 1.0:
        raise CcrError(f"--rate {cfg.rate}: give a share in [0, 1], e.g. --rate 0.2")
    unknown = [t for t in cfg.types if t not in NOISE_TYPES]
    if unknown or not cfg.types:
        raise CcrError(f"--type {','.join(unknown) or '(none)'}: use one or more of {','.join(NOISE_TYPES)}")
    if not 0.0 < cfg.word_rate <= 1.0:
        raise CcrError(f"--set word_rate={cfg.word_rate}: give a share in (0, 1]")


def _units(text: str) -> tuple[list[str], str]:
    """Words, or characters for scripts written without spaces, and the separator to join them."""
    words = text.split()
    return (words, " ") if len(words) > 1 else (list(text.strip()), "")


def corrupt(kind: str, text: str, *, partner: str | None, source: str | None, rng: random.Random,
            word_rate: float) -> str:
    """``text`` with noise of one type; ``partner`` is another item's MT text, ``source`` the English."""
    if kind == "swap":
        return partner if partner is not None else text
    if kind == "copy":
        return source if source is not None else text
    units, sep = _units(text)
    n = len(units)
    if n < 2:
        return text
    k = min(n - 1, max(1, round(word_rate * n)))
    if kind == "truncate":
        return sep.join(units[:n - k])
    if kind == "drop":
        gone = set(rng.sample(range(n), k))
        return sep.join(u for i, u in enumerate(units) if i not in gone)
    pool = _units(partner)[0] if partner else []
    for i in rng.sample(range(n), k):
        others = [u for u in pool if u != units[i]]
        if others:
            units[i] = rng.choice(others)
    return sep.join(units)


def assign(rows: pl.DataFrame, cfg: NoiseConfig) -> pl.DataFrame:
    """``caption_id``, ``noise_type`` and ``partner_id`` for one language's MT rows (see the module doc)."""
    import polars as pl

    media = dict(zip(rows["caption_id"].to_list(), rows["media_id"].to_list()))
    order = seeded_order(media, cfg.seed)
    n_noisy = round(cfg.rate * len(order))
    types = [cfg.types[p % len(cfg.types)] for p in range(n_noisy)] + ["none"] * (len(order) - n_noisy)
    partners: list[str | None] = [None] * len(order)
    for position in range(n_noisy):
        later = (order[(position + step) % len(order)] for step in range(1, len(order)))
        partners[position] = next((o for o in later if media[o] != media[order[position]]), None)
    return pl.DataFrame({"caption_id": order, "noise_type": types, "partner_id": partners},
                        schema={"caption_id": pl.String, "noise_type": pl.String, "partner_id": pl.String})


def _claim(corpus: Corpus, cfg: NoiseConfig) -> None:
    """Record the settings in the copy's manifest before any row is written; refuse other settings.

    A second injection with other settings would reuse the first one's row ids. The record is
    written before the first commit, so even a killed run leaves it behind.
    """
    current = semantic_dict(cfg)
    before = corpus.manifest().get(CONFIG_FIELD)
    if before is None:
        corpus.update_manifest(**{CONFIG_FIELD: current})
    elif before != current:
        raise CcrError(f"{corpus.root} already holds noise injected with {before}; inject into a new copy "
                       f"of the clean corpus instead: ccr noise inject SOURCE --out NEW_DIR")


def _made_here(corpus: Corpus) -> list[str]:
    """Model keys of the noisy rows already in the corpus: not candidates when a run resumes."""
    import polars as pl

    if SIDE_TABLE not in corpus.side_tables("captions"):
        return []
    noisy = corpus.scan(SIDE_TABLE).select("caption_id")
    rows = corpus.scan("captions", with_side_tables=False).join(noisy, on="caption_id", how="semi")
    return rows.select(pl.col("model").unique()).collect()["model"].to_list()


def plan(corpus: Corpus, cfg: NoiseConfig) -> Plan:
    import polars as pl

    _check(cfg)
    if not corpus.manifest().get(SOURCE_FIELD):
        raise CcrError(f"{corpus.root} is not a noisy copy; noise never goes into a corpus in place: "
                       f"ccr noise inject {corpus.root} --out NEW_DIR")
    _claim(corpus, cfg)
    captions = corpus.scan("captions", with_side_tables=False)
    langs = target_languages(captions, cfg.lang)
    mt, keys = chosen_mt_rows(corpus, langs, cfg.mt_model, side_tables=False, ignore=_made_here(corpus))
    base = mt.select("caption_id", "media_id", "split", "lang", "parent_id", "text", "model").unique(
        subset=["caption_id"], keep="first").collect()
    plan_ = pl.concat([assign(base.filter(pl.col("lang") == lang), cfg) for lang in langs])
    texts = base.select(pl.col("caption_id").alias("partner_id"), pl.col("text").alias("partner_text"))
    english = captions.select(pl.col("caption_id").alias("parent_id"), pl.col("text").alias("source_text"))
    items = (base.join(plan_, on="caption_id", how="left").join(texts, on="partner_id", how="left")
             .join(english.filter(pl.col("parent_id").is_in(base["parent_id"].drop_nulls().unique().implode()))
                   .unique(subset=["parent_id"], keep="first").collect(), on="parent_id", how="left"))
    return Plan(input_table="captions", chunks=table_chunks(items.lazy, "caption_id"), total=lambda: items.height,
                models={"mt_models": keys, "noisy_models": {lang: noisy_key(k) for lang, k in keys.items()},
                        "source": corpus.manifest()[SOURCE_FIELD]},
                id_of=lambda row: row["caption_id"])


def setup(corpus: Corpus, cfg: NoiseConfig, plan_: Plan) -> None:
    return None


def process(batch: Sequence[dict[str, Any]], state: None, cfg: NoiseConfig) -> BatchResult:
    out = BatchResult(rows={"captions": [], SIDE_TABLE: []})
    for r in batch:
        if r["parent_id"] is None or r["source_text"] is None:
            out.failures.append(Failure(r["caption_id"], "MT row without its English parent caption in the corpus; "
                                                          "noise rows are named after the parent"))
            continue
        rng = random.Random(f"{cfg.seed}\0{r['caption_id']}")
        original = r["text"] or ""
        text = original if r["noise_type"] == "none" else corrupt(
            r["noise_type"], original, partner=r["partner_text"], source=r["source_text"], rng=rng,
            word_rate=cfg.word_rate)
        kind = r["noise_type"] if text != original else "none"  # a one-word caption cannot lose a word
        key = noisy_key(r["model"])
        new_id = derived_id(r["parent_id"], "mt", r["lang"], key)
        out.rows["captions"].append({"caption_id": new_id, "media_id": r["media_id"], "split": r["split"],
                                     "lang": r["lang"], "text": text, "origin": "mt", "parent_id": r["parent_id"],
                                     "model": key})
        out.rows[SIDE_TABLE].append({"caption_id": new_id, "noise_type": kind})
    return out


def open_copy(src: Path, cfg: NoiseConfig, arguments: Mapping[str, Any]) -> Corpus:
    """The corpus noise writes: a copy of ``src`` at ``out``, made on the first run and resumed after;
    without ``out``, ``src`` itself, which ``plan`` accepts only if it is such a copy."""
    source = Corpus.open(src)
    if arguments.get("out") is None:
        return source
    out = Path(arguments["out"])
    if out.resolve() == source.root.resolve():
        raise CcrError("--out is the corpus itself; noise goes into a new directory: --out NEW_DIR")
    made = paths.output_dir(out, "--out")
    if any(out.iterdir()):
        existing = Corpus.open(out)
        if existing.manifest().get(SOURCE_FIELD) != str(source.root.resolve()):
            raise CcrError(f"{out} is not empty; give the noisy corpus a new directory: --out NEW_DIR")
        return existing
    try:
        return copy_corpus(source, out, {SOURCE_FIELD: str(source.root.resolve())})
    except BaseException:
        paths.discard(made)
        raise


STAGE = Stage(name="noise", version="1", config=NoiseConfig, plan=plan, setup=setup, process=process,
              help="copy a corpus and add noisy MT rows (model KEY+noise) with the truth in noise_type",
              examples=("ccr noise inject ccr-demo/corpus --out ccr-demo/noisy-10 --rate 0.1 --type swap,drop --lang de",),
              check=_check, batch_size=4096, runner=(), needs=frozenset({"mt"}),
              provides={"noise": "planted noise"}, open=open_copy,
              arguments={"out": "the noisy copy (a new directory; rerun to resume)"})


def inject(src: Path | str, out: Path | str, *, config: Path | None = None, sets: list[str] | None = None,
           overrides: dict[str, Any] | None = None, options: RunOptions | None = None,
           on_config: Any = None) -> tuple[RunSummary, dict[str, str]]:
    """Copy ``src`` to ``out`` and add its noisy MT rows; rerun on the same pair to resume.

    Returns the stage summary and, per language, the model key of the noisy rows.
    """
    from ccr.stages.table import run

    summary = run("noise", src, config=config, sets=sets, overrides=overrides, options=options,
                  arguments={"out": out}, on_config=on_config)
    return summary, noisy_models(out)


def noisy_models(corpus_dir: Path | str) -> dict[str, str]:
    """Per language, the model key of a noisy copy's noisy MT rows: what later steps on it score."""
    runs = [r for r in Corpus.open(corpus_dir).runs() if r.get("stage") == "noise"]
    return runs[-1].get("models", {}).get("noisy_models", {}) if runs else {}
