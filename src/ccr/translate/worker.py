"""The batch function both stages share: items in, caption rows (plus ``rt_sim`` side rows) out.

It runs where the models live (a local process or a Ray actor); ``setup`` loads exactly the
models the plan recorded in the manifest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ccr import models
from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.stages.checks import at_least, not_above
from ccr.stages.runner import BatchResult, Failure, Plan
from ccr.translate import signals
from ccr.translate.engine import (
    Decoding,
    MarianTranslator,
    Translation,
    ct2_device,
    resolve_compute_type,
)
from ccr.translate.routes import from_provenance
from ccr.translate.schedule import owed_chunks

if TYPE_CHECKING:
    import polars as pl

SIDE_TABLE = "captions.backtranslate"
EMBEDDER = "embedder"  # the provenance record of the rt_sim embedder; every other record is a route


@dataclass
class MarianOptions:
    """Options both translation stages share.

    Fields that only select *which* rows a run makes (languages, models, splits) stay out of the
    fingerprint: each row's id already names its language and model key (id + revision).
    """

    lang: tuple[str, ...] = option((), "the non-English language(s), comma-separated: cs or de,fr,cs", runtime=True,
                                   known=models.mt_languages)
    model: tuple[str, ...] = option((), "Marian (OPUS-MT) hub id or local path; LANG=ID_OR_PATH with several "
                                        "languages (repeatable) (default: ccr models)", runtime=True)
    prefix: tuple[str, ...] = option((), "target token of a multi-target model, e.g. '>>ces<<'; LANG=TOKEN with "
                                         "several languages", runtime=True)
    tiny: bool = option(False, "the tiny random stand-ins (--models random): outputs are meaningless", runtime=True,
                        cli=False)
    aliases: dict[str, str] | None = option(None, "model name -> local path (the TOML's [models] table)",
                                            runtime=True, cli=False)
    beam_size: int = option(4, "beam size; 1 = greedy (OPUS-MT's own setting is 4; CTranslate2's would be 2)")
    max_length: int = option(256, "most target tokens per caption")
    min_length: int = option(1, "fewest target tokens per caption")
    max_input_tokens: int = option(512, "longer captions become failure rows, never truncated (Marian's position "
                                        "limit); raising it and rerunning with --retry-failed keeps everything else",
                                   runtime=True)
    compute_type: str = option("auto", "auto (int8 on CPU, int8_float16 on CUDA), int8, float32, int8_float32, ... "
                                       "(the fingerprint holds the resolved type: auto and int8 on a CPU are one run)",
                               runtime=True)
    device: str = option("auto", "auto, cpu, cuda or cuda:N", runtime=True)
    inter_threads: int = option(0, "CTranslate2 replicas decoding in parallel; 0 = from the machine", runtime=True)
    intra_threads: int = option(0, "threads per replica; 0 = from the machine", runtime=True)
    max_batch_tokens: int = option(512, "source tokens per CTranslate2 sub-batch, times the beam size", runtime=True)

    def decoding(self) -> Decoding:
        return Decoding(self.beam_size, self.max_length, self.min_length, self.max_input_tokens)


def check(cfg: MarianOptions) -> None:
    """Decoding options CTranslate2 would reject on every row (``Stage.check``)."""
    at_least(cfg, beam_size=1, max_length=1, min_length=0, max_input_tokens=1, max_batch_tokens=1, inter_threads=0,
             intra_threads=0)
    not_above(cfg, "min_length", "max_length")


def make_plan(stage: str, items: Callable[[], pl.LazyFrame], models: dict[str, Any], cfg: MarianOptions,
              extra_fingerprint: dict[str, Any] | None = None) -> Plan:
    """A runner plan over items, which stay lazy: the runner's chunks read them bucket by bucket.

    ``models`` is the manifest's provenance: one record per route (``routes.provenance``) and,
    for back-translation, the ``embedder``; ``setup`` loads exactly these.
    """
    @functools.cache
    def total() -> int:
        import polars as pl

        return items().select(pl.len()).collect().item()

    compute_type = resolve_compute_type(cfg.compute_type, ct2_device(cfg.device))
    return Plan(
        input_table="captions",
        chunks=owed_chunks(stage, items, total),
        total=total,
        fingerprint_parts={"compute_type": compute_type, **(extra_fingerprint or {})},
        models=models,
        id_of=lambda item: item["caption_id"],
    )


@dataclass
class WorkerState:
    translators: dict[str, MarianTranslator]
    embedder: Any = None
    recent: dict[str, dict[str, Translation]] = field(default_factory=dict)  # route -> last batch's results


def setup(corpus: Corpus, cfg: MarianOptions, plan: Plan) -> WorkerState:
    compute_type = plan.fingerprint_parts["compute_type"]
    translators = {
        name: MarianTranslator(model, compute_type=compute_type, device=cfg.device, inter_threads=cfg.inter_threads,
                               intra_threads=cfg.intra_threads, max_batch_tokens=cfg.max_batch_tokens)
        for name, model in from_provenance({k: v for k, v in plan.models.items() if k != EMBEDDER}).items()
    }
    embedder = None
    if EMBEDDER in plan.models:
        from sentence_transformers import SentenceTransformer

        embedder = SentenceTransformer(plan.models[EMBEDDER]["path"], device=ct2_device(cfg.device))
    return WorkerState(translators, embedder)


def _translate(state: WorkerState, route: str, texts: list[str], decoding: Decoding) -> list[Translation]:
    """Each distinct text once; the previous batch's results cover duplicates split across batches."""
    known = state.recent.get(route, {})
    unique = list(dict.fromkeys(texts))
    results = {t: known[t] for t in unique if t in known}
    missing = [t for t in unique if t not in results]
    results.update(zip(missing, state.translators[route].translate(missing, decoding)))
    state.recent[route] = results
    return [results[t] for t in texts]


def process(batch: Sequence[dict[str, Any]], state: WorkerState, cfg: MarianOptions) -> BatchResult:
    out = BatchResult(rows={"captions": []})
    routes: dict[str, list[dict[str, Any]]] = {}
    for item in batch:
        routes.setdefault(item["route"], []).append(item)
    round_trips: list[tuple[dict[str, Any], str]] = []
    for route, items in routes.items():
        for item, tr in zip(items, _translate(state, route, [i["text"] for i in items], cfg.decoding())):
            if tr.error:
                out.failures.append(Failure(item["caption_id"], tr.error))
                continue
            out.rows["captions"].append({
                "caption_id": item["caption_id"], "media_id": item["media_id"], "split": item["split"],
                "lang": item["lang"], "text": tr.text, "origin": item["origin"], "parent_id": item["parent_id"],
                "model": item["model"], "mt_logprob": tr.logprob,
                "len_ratio": signals.length_ratio(tr.source_tokens, tr.target_tokens),
                "is_copy": signals.is_copy(item["text"], tr.text),
            })
            if item["reference"] is not None and state.embedder is not None:
                round_trips.append((item, tr.text))
    if round_trips:
        sims = signals.round_trip_similarity(state.embedder, [i["reference"] for i, _ in round_trips],
                                             [text for _, text in round_trips])
        out.rows[SIDE_TABLE] = [{"caption_id": i["parent_id"], "rt_sim": s} for (i, _), s in zip(round_trips, sims)]
    return out
