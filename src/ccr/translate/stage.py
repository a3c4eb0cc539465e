"""``ccr translate``: every English human caption gets an ``origin=mt`` row per target language.

Row id ``{english id}|mt:{lang}:{model key}``, ``parent_id`` the English row, ``model`` the model
key (file-safe, so the NRCCR exporter can name files with it; the manifest maps it to the model
id and revision), plus ``mt_logprob``, ``len_ratio`` and ``is_copy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.schema import SPLIT_RULE, is_split
from ccr.corpus.views import run_languages
from ccr.errors import CcrError
from ccr.stages.runner import Plan, Stage
from ccr.translate import worker
from ccr.translate.routes import provenance, resolve_routes
from ccr.translate.schedule import items_from

if TYPE_CHECKING:
    import polars as pl


@dataclass
class TranslateConfig(worker.MarianOptions):
    split: tuple[str, ...] = option((), "only English captions of these splits, comma-separated (default: all)",
                                    runtime=True)


def plan(corpus: Corpus, cfg: TranslateConfig) -> Plan:
    langs = run_languages(cfg.lang)
    unknown = [s for s in cfg.split if not is_split(s)]
    if unknown:
        raise CcrError(f"--split {','.join(unknown)}: use one or more of {SPLIT_RULE}")
    routes = resolve_routes([("en", lang) for lang in langs], models=cfg.model, prefixes=cfg.prefix, tiny=cfg.tiny,
                            aliases=cfg.aliases)

    def items() -> pl.LazyFrame:
        import polars as pl

        english = corpus.scan("captions", with_side_tables=False).filter(
            (pl.col("origin") == "human") & (pl.col("lang") == "en"))
        if cfg.split:
            english = english.filter(pl.col("split").is_in(list(cfg.split)))
        return pl.concat([items_from(english, route, "mt") for route in routes])

    return worker.make_plan("translate", items, provenance(routes), cfg)


STAGE = Stage(name="translate", version="1", config=TranslateConfig, plan=plan, setup=worker.setup,
              process=worker.process, help="machine-translate English captions (Marian through CTranslate2)",
                                      examples=("ccr translate ccr-demo/corpus --lang de,fr,cs --models toy", "ccr translate ccr-demo/corpus --lang de,fr,cs --num-shards 2 --shard-index 1 --models toy"),
              check=worker.check, batch_size=1024, needs=frozenset({"captions"}), provides={"mt": "MT captions"},
              smoke={"tiny": True, "max_length": 16})  # random weights never stop on their own
