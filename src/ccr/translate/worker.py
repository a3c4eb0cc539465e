"""The batch function both stages share: items in, caption rows (plus ``rt_sim`` side rows) out.

It runs where the models live (a local process or a Ray actor); ``setup`` loads exactly the
models the plan recorded in the manifest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ccr.config import runtime_field
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

    lang: tuple[str, ...] = runtime_field(())  # the non-English languages: --lang de,fr,cs
    model: tuple[str, ...] = runtime_field(())  # ID_OR_PATH (one language) or LANG=ID_OR_PATH; default: the model table
    prefix: tuple[str, ...] = runtime_field(())  # target token of a multi-target model: TOKEN or LANG=TOKEN
    tiny: bool = runtime_field(False)  # the tiny random stand-ins (tests, demo): outputs are meaningless
    aliases: dict[str, str] | None = runtime_field(None)  # model name -> local path (the TOML's [models] table)
    beam_size: int = 4  # OPUS-MT's own setting (CTranslate2's default would be 2); 1 = greedy
    max_length: int = 256  # most target tokens per caption
    min_length: int = 1  # fewest target tokens per caption
    # longer captions become failure rows, never truncated (Marian's position limit); it only decides which rows
    # fail, so raising it and rerunning with --retry-failed keeps everything else
    max_input_tokens: int = runtime_field(512)
    # auto = int8 on CPU, int8_float16 on CUDA; or float32, int8_float32, ... (the fingerprint holds the resolved
    # type, so auto and int8 on a CPU are the same run)
    compute_type: str = runtime_field("auto")
    device: str = runtime_field("auto")  # auto, cpu, cuda or cuda:N
    inter_threads: int = runtime_field(0)  # CTranslate2 replicas decoding in parallel; 0 = from the machine
    intra_threads: int = runtime_field(0)  # threads per replica; 0 = from the machine
    max_batch_tokens: int = runtime_field(512)  # source tokens per CTranslate2 sub-batch, x beam size (engine.MarianTranslator)

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
