"""``ccr select``: turn scores into the ``keep`` and ``weight`` the trainer reads (``captions.select``).

Policies, combinable, applied per language to the MT rows of one model:

- ``--threshold COLUMN=MIN`` (repeatable): keep rows whose COLUMN is at least MIN;
- ``--top P``: keep the best P percent of the rows by ``--by`` (default ``dcot_conf``); rows tied
  with the last one kept are kept too;
- ``--weighting``: ``none`` (1.0), ``score`` (the ``--by`` score clipped to [0, 1]), ``normalized``
  (the score over its mean among kept rows, negatives as 0, so kept rows average weight 1 and the
  loss keeps its scale) or ``rank`` (the row's percentile by score, in (0, 1]).

A row keeps only if every rule keeps it. The trainer drops ``keep == False`` and multiplies its
loss by ``weight``. Cut-offs and means are properties of a whole language, so they are worked out
when the stage plans, and the decisions themselves enter the fingerprint: rescoring and selecting
again rewrites exactly the rows whose decision changed (the newest row per id wins). A row
without a score the policy needs becomes a failure that names the stage to run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.views import chosen_mt_rows, selection_columns, target_languages
from ccr.errors import CcrError
from ccr.stages.runner import BatchResult, Failure, Plan, Stage, table_chunks

if TYPE_CHECKING:
    import polars as pl

SIDE_TABLE = "captions.select"
WEIGHTINGS = ("none", "score", "normalized", "rank")


@dataclass
class SelectConfig:
    by: str = option("dcot_conf", "the score --top and --weighting use")
    top: float | None = option(None, "keep the best P percent of each language's MT rows by --by")
    threshold: tuple[str, ...] = option((), "COLUMN=MIN: keep rows whose score is at least MIN, e.g. xl_sim=0.5 "
                                            "(repeatable)")
    weighting: str = option("none", "none, score (clipped to [0, 1]), normalized (mean 1 over kept rows) or rank",
                            choices=WEIGHTINGS)
    lang: tuple[str, ...] = option((), "only these MT languages, comma-separated (default: all)", runtime=True)
    mt_model: tuple[str, ...] = option((), "model key of the MT rows to read, where a language has several "
                                           "(repeatable)", runtime=True)


def parse_thresholds(specs: Sequence[str]) -> dict[str, float]:
    """``["xl_sim=0.5", "rt_sim>=0.6"]`` -> ``{"xl_sim": 0.5, "rt_sim": 0.6}``."""
    out: dict[str, float] = {}
    for spec in specs:
        column, sep, value = spec.replace(">=", "=").partition("=")
        try:
            out[column.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not column.strip():
            raise CcrError(f"--threshold {spec!r}: write COLUMN=MIN, e.g. --threshold xl_sim=0.5")
    return out


def _check(cfg: SelectConfig) -> dict[str, float]:
    thresholds = parse_thresholds(cfg.threshold)
    if cfg.weighting not in WEIGHTINGS:
        raise CcrError(f"--weighting {cfg.weighting!r}: use one of {', '.join(WEIGHTINGS)}")
    if cfg.top is not None and not 0 < cfg.top <= 100:
        raise CcrError(f"--top {cfg.top}: give a percentage in (0, 100], e.g. --top 80")
    if cfg.top is None and not thresholds and cfg.weighting == "none":
        raise CcrError("nothing to select by: pass --top P, --threshold COLUMN=MIN and/or --weighting normalized")
    return thresholds


def needed_columns(cfg: SelectConfig, thresholds: dict[str, float]) -> list[str]:
    """The score columns a policy reads: its thresholds, and ``by`` for --top and the weightings."""
    uses_by = cfg.top is not None or cfg.weighting != "none"
    return list(dict.fromkeys([*thresholds, *([cfg.by] if uses_by else [])]))


def decisions(rows: pl.DataFrame, cfg: SelectConfig, thresholds: dict[str, float]) -> pl.DataFrame:
    """``caption_id``, ``keep``, ``weight`` and ``missing`` (the first needed score a row lacks).

    ``rows`` holds one language's MT rows with every needed column.
    """
    import polars as pl

    by = pl.col(cfg.by)
    needed = needed_columns(cfg, thresholds)
    rows = rows.with_columns(pl.col(needed).cast(pl.Float64))
    lacking = pl.lit(None, pl.String)
    for column in reversed(needed):
        lacking = pl.when(pl.col(column).is_null() | pl.col(column).is_nan()).then(pl.lit(column)).otherwise(lacking)
    rows = rows.with_columns(lacking.alias("missing"))
    scored = rows.filter(pl.col("missing").is_null())
    keep = pl.lit(True)
    for column, minimum in thresholds.items():
        keep = keep & (pl.col(column) >= minimum)
    if cfg.top is not None and scored.height:
        count = max(1, math.ceil(scored.height * cfg.top / 100))
        keep = keep & (by >= scored[cfg.by].sort(descending=True)[count - 1])
    rows = rows.with_columns(keep.alias("keep"))
    if cfg.weighting == "none":
        weight = pl.lit(1.0)
    elif cfg.weighting == "score":
        weight = by.clip(0.0, 1.0)
    elif cfg.weighting == "rank":
        weight = by.rank("max") / scored.height if scored.height else pl.lit(1.0)
    else:
        kept = rows.filter(pl.col("missing").is_null() & pl.col("keep"))[cfg.by].clip(lower_bound=0.0)
        mean = float(kept.mean()) if kept.len() else 0.0
        weight = by.clip(lower_bound=0.0) / mean if mean > 0 else pl.lit(1.0)
    scored_rows = rows.filter(pl.col("missing").is_null()).with_columns(weight.cast(pl.Float64).alias("weight"))
    unscored = rows.filter(pl.col("missing").is_not_null()).with_columns(pl.lit(None, pl.Float64).alias("weight"))
    return pl.concat([scored_rows, unscored]).select("caption_id", "keep", "weight", "missing")


def plan(corpus: Corpus, cfg: SelectConfig) -> Plan:
    import polars as pl

    thresholds = _check(cfg)
    langs = target_languages(corpus.scan("captions", with_side_tables=False), cfg.lang)
    rows, keys = chosen_mt_rows(corpus, langs, cfg.mt_model, side_tables=True)
    present = rows.collect_schema()
    wanted = needed_columns(cfg, thresholds)
    numeric = sorted(c for c, t in present.items() if t.is_numeric())
    unknown = [c for c in wanted if c not in present]
    if unknown:
        raise CcrError(f"no column {unknown[0]!r} on the MT rows; scores present: {', '.join(numeric) or 'none'} "
                       f"(ccr score writes xl_sim, xm_sim, dcot_conf; ccr backtranslate rt_sim)")
    frame = rows.select("caption_id", "lang", *wanted).collect()
    table = pl.concat([decisions(frame.filter(pl.col("lang") == lang), cfg, thresholds) for lang in langs])
    digest = str(table.sort("caption_id").hash_rows().sum()) if table.height else "empty"
    return Plan(input_table="captions", chunks=table_chunks(table.lazy, "caption_id"), total=lambda: table.height,
                fingerprint_parts={"decisions": digest}, models={"mt_models": keys},
                id_of=lambda row: row["caption_id"])


def setup(corpus: Corpus, cfg: SelectConfig, plan_: Plan) -> None:
    return None


def process(batch: Sequence[dict[str, Any]], state: None, cfg: SelectConfig) -> BatchResult:
    out = BatchResult(rows={SIDE_TABLE: []})
    for r in batch:
        if r["missing"] is not None:
            out.failures.append(Failure(r["caption_id"], f"no {r['missing']} on this MT row; run the stage that "
                                                          f"writes it (ccr score / ccr backtranslate), then select again"))
        else:
            out.rows[SIDE_TABLE].append({"caption_id": r["caption_id"], "keep": r["keep"], "weight": r["weight"]})
    return out


def kept_summary(corpus_dir: str, langs: Sequence[str], mt_model: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per language: MT rows, rows kept and their mean weight, as the corpus now says."""
    import polars as pl

    corpus = Corpus.open(corpus_dir)
    langs = target_languages(corpus.scan("captions", with_side_tables=False), langs)
    rows, _ = chosen_mt_rows(corpus, langs, mt_model, side_tables=True)
    frame = rows.select("lang", *selection_columns(rows.collect_schema().names())).collect()
    return [{"lang": lang, "rows": part.height, "kept": int(part["keep"].sum()),
             "mean_weight": float(part.filter(pl.col("keep"))["weight"].mean() or 0.0)}
            for lang in langs for part in [frame.filter(pl.col("lang") == lang)]]


STAGE = Stage(name="select", version="1", config=SelectConfig, plan=plan, setup=setup, process=process,
              help="keep / weight MT rows by their scores (threshold, top percent, soft weights)",
              examples=("ccr select ccr-demo/corpus --top 80 --weighting normalized", "ccr select ccr-demo/corpus --threshold xl_sim=0.5 --lang de"),
              batch_size=4096, runner=("force",), needs=frozenset({"scores"}),
              provides={"selection": "keep/weight columns"})
