"""Retrieval: rank a gallery of media for every query (and the other way round), scored by recall and SumR.

Training data are (visual, English, MT, back-translation, description) tuples joined from the corpus
(``ccr.train.data.rows``); validation and ``ccr evaluate`` embed the queries and the gallery of one
split per language and score the whole similarity matrix (``ccr.train.eval.retrieval``). Every
method is scored the same way unless asked: native queries, the run's ``gallery`` setting, SumR over
both directions; translate-test fusion is an explicit option for any method.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccr.corpus import atomic
from ccr.errors import CcrError
from ccr.models import cache_dir
from ccr.train.api import TrainedModel
from ccr.train.config import TrainConfig
from ccr.train.data.batching import build_eval_data, build_train_data
from ccr.train.data.media import open_slots
from ccr.train.data.rows import eval_records, train_records
from ccr.train.eval import protocol
from ccr.train.eval.metrics import METRIC_KEYS
from ccr.train.eval.retrieval import evaluate_model
from ccr.train.eval.table import write_table
from ccr.train.model.image_encoder import ClipPixelSource, load_encoder, visual_source
from ccr.train.model.methods.base import Method, RetrievalMethod
from ccr.train.model.video.encoders import ENCODERS
from ccr.train.run import checkpoint as ckpt
from ccr.train.run.distributed import cpu_threads
from ccr.train.run.setup import Prepared, open_run, record_start, text_encoder
from ccr.train.tasks.base import EvalRequest, Metrics


def val_fusion(cfg: TrainConfig, lang: str) -> float | None:
    """The xx->en MT queries' weight in validation's translate-test fusion; English queries need no translation."""
    return cfg.val_translate_test_weight if lang != "en" and cfg.val_translate_test_weight else None


class Retrieval:
    name = "retrieval"

    def prepare(self, corpus_dir: Path | str, run: ckpt.RunDir, method: str, method_cls: type[Method], *,
                config: Path | None, sets: list[str] | None, overrides: dict[str, Any] | None, fresh: bool,
                log: Callable[[str], None]) -> Prepared:
        assert issubclass(method_cls, RetrievalMethod)
        opened = open_run(corpus_dir, run, method, method_cls, config=config, sets=sets, overrides=overrides,
                          fresh=fresh, log=log, select_keys=METRIC_KEYS)
        cfg, method_cfg, world, state, corpus, fp, log = (opened.cfg, opened.method_cfg, opened.world, opened.state,
                                                          opened.corpus, opened.fingerprint, opened.log)
        if cfg.image_encoder and not ENCODERS[cfg.video_encoder].takes_image_encoder:
            raise CcrError(f"image_encoder fine-tunes CLIP in front of the pooling tower; video_encoder="
                           f"{cfg.video_encoder} reads stored frame features: drop --set image_encoder or use "
                           f"--set video_encoder=pool with another method")
        clip = (load_encoder(cfg, run.image_tower, pretrained=state is None, save=state is None and world.main)
                if cfg.image_encoder else None)
        source = visual_source(corpus, cfg.visual, clip)
        keys, gallery_keys = method_cls.needed_keys(method_cfg), method_cls.needed_gallery_keys(method_cfg)
        slots = open_slots(corpus, cfg.slot_features) if "slots" in keys | gallery_keys else None
        records = train_records(corpus, cfg.lang, keys, mt_model=cfg.mt_model, log=log)
        val_records = [eval_records(corpus, cfg.val_split, lang, translated=val_fusion(cfg, lang) is not None,
                                    gallery=cfg.gallery) for lang in cfg.lang]
        method_cls.check_input(method_cfg, source, records.media_id, image_encoder=clip is not None)
        encoder, tokenizer, provenance = text_encoder(cfg, run, state, world)  # after the data checks: it is slow
        common = {"tokenizer": tokenizer, "source": source, "max_tokens": cfg.max_tokens,
                  "max_frames": cfg.max_frames, "cache": cache_dir() / "tokens", "log": log, "slots": slots}
        train_source = source.augmented() if isinstance(source, ClipPixelSource) and cfg.image_augment else source
        data = build_train_data(corpus, records, keys, use_weights=cfg.use_weights,
                                **(common | {"source": train_source}))
        val = [build_eval_data(corpus, r, gallery_keys, **common) for r in val_records] if world.main else []
        env = {"media_dim": source.dim, "langs": data.langs, "n_train": len(data), "visual": source.name}
        if slots is not None:
            env |= {"slots": slots.name, "slot_dim": slots.dim}
        if clip is not None:  # the CLIP a run started from; a resumed run rebuilds it from image_tower/
            env["image_tower"] = clip.provenance or state["env"].get("image_tower", {})
        record_start(run, method, opened, provenance, env)
        log(f"{method}: {len(data)} training tuples ({', '.join(data.langs)}) over {len(data.media_ids)} media "
            f"items, visual input {source.name} ({source.dim}-d), {world.size} process(es) on {world.device}")
        return Prepared(run, method, cfg, method_cfg, world, state, fp, encoder, clip, data, val, env, log)

    def validate(self, prep: Prepared, model: Method) -> Metrics:
        """Per language; with ``val_translate_test_weight``, fused with the queries' English MT."""
        assert isinstance(model, RetrievalMethod)
        cfg = prep.cfg
        return {d.records.lang: evaluate_model(model, d, batch_size=cfg.eval_batch_size, device=prep.world.device,
                                               translate_test_weight=val_fusion(cfg, d.records.lang))
                for d in prep.val}

    def evaluate(self, run_dir: Path | str, request: EvalRequest) -> Metrics:
        """Per language: native queries, or fused with their xx->en MT at ``translate_test_weight``
        (NRCCR's image test: 0.5); ``sumr="t2v"`` makes SumR text-to-video only (RIVRL's README)."""
        if request.queries is not None:
            raise CcrError("--queries applies to grounding runs only; drop it for this run")
        r, log = request, request.log
        model = TrainedModel.restore(run_dir, checkpoint=r.checkpoint, device=r.device, corpus=r.corpus, log=log)
        cfg = model.train_cfg
        gallery = r.gallery or cfg.gallery
        results: Metrics = {}
        for lang in r.langs or cfg.lang:
            start = time.perf_counter()
            weight = r.translate_test_weight if lang != "en" and r.translate_test_weight else None  # en needs no MT
            records = eval_records(model.corpus(), r.split, lang, translated=weight is not None,
                                   translate_model=r.mt_model, gallery=gallery)
            data = build_eval_data(model.corpus(), records, model.gallery_keys(), tokenizer=model.tokenizer,
                                   source=model.source(), max_tokens=cfg.max_tokens, max_frames=cfg.max_frames,
                                   cache=None, log=log, slots=model.slot_source())
            with cpu_threads(cfg.threads):
                metrics = evaluate_model(model.method, data, batch_size=r.batch_size or cfg.eval_batch_size,
                                         device=model.device, translate_test_weight=weight)
            results[lang] = metrics
            n_queries, n_gallery = len(data.records.queries), len(data.records.gallery)
            block = protocol.retrieval(translate_test_weight=weight, translate_model=data.records.translate_model,
                                       gallery=gallery, n_queries=n_queries, n_gallery=n_gallery, sumr=r.sumr)
            log(f"{lang}: {protocol.describe(block)}")
            atomic.write_json(model.run.eval_file(r.split, lang), {
                "split": r.split, "lang": lang, "checkpoint": r.checkpoint, "epoch": model.epoch,
                "n_queries": n_queries, "n_gallery": n_gallery, "protocol": block,
                "seconds": round(time.perf_counter() - start, 3), "metrics": metrics,
            })
        write_table(model.run, r.split, results, type(model.method), log)
        return results
