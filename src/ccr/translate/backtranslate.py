"""``ccr backtranslate``: MT rows back into English, and target-language test queries into English.

- every MT row of a language gets an ``origin=bt``, ``lang=en`` row (``parent_id`` = the MT row),
  and the MT row gets ``rt_sim``, the cosine between its English source and that back-translation,
  in the side table ``captions.backtranslate`` (NRCCR's consistency signal);
- ``--test-queries``: human val/test captions of the language get an ``origin=mt``, ``lang=en`` row
  (``parent_id`` = the human row), the queries of NRCCR's translate-test fusion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.schema import EVAL_SPLIT
from ccr.corpus.views import choose_mt_models, mt_rows, run_languages
from ccr.errors import CcrError
from ccr.models import ResolvedModel, resolve, resolve_entry, role_entry
from ccr.stages.runner import Plan, Stage
from ccr.translate import worker
from ccr.translate.routes import provenance, resolve_routes
from ccr.translate.schedule import items_from

if TYPE_CHECKING:
    import polars as pl



@dataclass
class BacktranslateConfig(worker.MarianOptions):
    mt_model: tuple[str, ...] = option((), "model key of the MT rows to back-translate, where a language has several "
                                           "(repeatable)", runtime=True)
    test_queries: bool = option(False, "also translate the human val/test captions of these languages into English",
                                runtime=True)
    embedder: str = option("", "sentence-transformers id or path for rt_sim (default: ccr models, role embedder)",
                           runtime=True)


def _embedder(cfg: BacktranslateConfig) -> ResolvedModel:
    model = (resolve(cfg.embedder, aliases=cfg.aliases) if cfg.embedder
             else resolve_entry(role_entry("embedder", tiny=cfg.tiny), cfg.aliases))
    if not (model.path / "modules.json").exists():
        raise CcrError(f"{model.id} is not a sentence-transformers model (no modules.json); "
                       "pass one with --embedder ID_OR_PATH")
    return model


def plan(corpus: Corpus, cfg: BacktranslateConfig) -> Plan:
    langs = run_languages(cfg.lang)
    routes = resolve_routes([(lang, "en") for lang in langs], models=cfg.model, prefixes=cfg.prefix, tiny=cfg.tiny,
                            aliases=cfg.aliases)
    captions = corpus.scan("captions", with_side_tables=False)
    keys = choose_mt_models(captions, langs, cfg.mt_model)
    embedder = _embedder(cfg)

    def items() -> pl.LazyFrame:
        import polars as pl

        human = pl.col("origin") == "human"
        english = captions.filter(human & (pl.col("lang") == "en")).select(
            pl.col("caption_id").alias("_source_id"), pl.col("text").alias("_source_text"))
        parts = []
        for route in routes:
            mt = mt_rows(captions, route.src, keys[route.src]).join(
                english, left_on="parent_id", right_on="_source_id", how="left")
            parts.append(items_from(mt, route, "bt", reference=pl.col("_source_text")))
            if cfg.test_queries:
                queries = captions.filter(human & (pl.col("lang") == route.src)
                                          & pl.col("split").str.contains(f"^{EVAL_SPLIT}$"))
                parts.append(items_from(queries, route, "mt"))
        return pl.concat(parts)

    return worker.make_plan(
        "backtranslate", items,
        {**provenance(routes, reads=keys), worker.EMBEDDER: {**embedder.provenance(), "path": str(embedder.path)}},
        cfg, extra_fingerprint={"embedder": {"id": embedder.id, "revision": embedder.revision}},
    )


STAGE = Stage(name="backtranslate", version="1", config=BacktranslateConfig, plan=plan, setup=worker.setup,
              process=worker.process, help="back-translate MT captions to English (rt_sim) and, with "
                                           "--test-queries, translate target-language test captions",
              examples=("ccr backtranslate ccr-demo/corpus --lang de,fr,cs --test-queries --models toy",),
              check=worker.check, batch_size=1024, needs=frozenset({"mt"}), provides={"bt": "back-translations"},
              smoke={"tiny": True, "max_length": 16})
