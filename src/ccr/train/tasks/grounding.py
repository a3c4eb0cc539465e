"""Grounding: find the moments of a video that a query describes, scored by the QVHighlights metrics.

``prepare`` mirrors retrieval's: same config layers, resume rules, corpus fingerprint, text tower
and ``run.json``; only the samples (queries with moments over clip features) and the validation
(grounding metrics on the validation split, never test) differ. ``evaluate`` writes the
predictions in the QVHighlights submission format beside the metrics (``ccr.train.eval.grounding``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccr.corpus import atomic
from ccr.errors import CcrError
from ccr.models import cache_dir
from ccr.train.data.grounding import (
    build_eval_data,
    build_train_data,
    clip_length,
    query_rows,
)
from ccr.train.data.media import open_source
from ccr.train.eval import protocol
from ccr.train.eval.grounding import SELECT_KEYS, mt_key, predict, query_source, score
from ccr.train.eval.grounding_metrics import write_predictions
from ccr.train.eval.table import write_table
from ccr.train.model.methods.base import GroundingMethod, Method
from ccr.train.run import checkpoint as ckpt
from ccr.train.run import distributed
from ccr.train.run.setup import Prepared, open_run, record_start, text_encoder
from ccr.train.run.trained import Trained
from ccr.train.tasks.base import EvalRequest, Metrics

QUERIES = (None, "auto", "human", "mt")


class Grounding:
    name = "grounding"

    def prepare(self, corpus_dir: Path | str, run: ckpt.RunDir, method: str, method_cls: type[Method], *,
                config: Path | None, sets: list[str] | None, overrides: dict[str, Any] | None, fresh: bool,
                log: Callable[[str], None]) -> Prepared:
        opened = open_run(corpus_dir, run, method, method_cls, config=config, sets=sets, overrides=overrides,
                          fresh=fresh, log=log, select_keys=SELECT_KEYS)
        cfg, mcfg, world, state, corpus, fp, log = (opened.cfg, opened.method_cfg, opened.world, opened.state,
                                                    opened.corpus, opened.fingerprint, opened.log)
        if cfg.image_encoder:
            raise CcrError(f"image_encoder: {method} reads stored clip features; drop --set image_encoder")
        source = open_source(corpus, cfg.visual)
        clip_len = clip_length(mcfg.clip_length, source)
        train_parts = [query_rows(corpus, "train", lang, queries=mcfg.queries, mt_model=cfg.mt_model)
                       for lang in cfg.lang]
        val_parts = [query_rows(corpus, cfg.val_split, lang, queries=mcfg.queries, mt_model=cfg.mt_model)
                     for lang in cfg.lang]
        encoder, tokenizer, provenance = text_encoder(cfg, run, state, world)  # after the data checks: it is slow
        common = {"source": source, "tokenizer": tokenizer, "max_tokens": cfg.max_tokens,
                  "max_frames": cfg.max_frames, "clip_len": clip_len, "normalize": mcfg.normalize_video,
                  "cache": cache_dir() / "tokens", "log": log}
        data, skips = build_train_data(train_parts, max_windows=mcfg.max_windows, **common)
        val = [build_eval_data(q, **common) for q in val_parts] if world.main else []
        env = {"media_dim": source.dim, "langs": data.langs, "n_train": len(data), "visual": source.name,
               "clip_length": clip_len, "skipped": skips.as_dict()}
        record_start(run, method, opened, provenance, env)
        log(f"{method}: {len(data)} training queries ({', '.join(data.langs)}) over {len(data.media_ids)} videos, "
            f"clip features {source.name} ({source.dim}-d, {clip_len:g} s per clip), {world.size} process(es) on "
            f"{world.device}")
        return Prepared(run, method, cfg, mcfg, world, state, fp, encoder, None, data, val, env, log)

    def validate(self, prep: Prepared, model: Method) -> Metrics:
        """The standard grounding metrics per validation language (``brief`` keys)."""
        assert isinstance(model, GroundingMethod)
        batch, device = prep.cfg.eval_batch_size, prep.world.device
        return {d.name: score(predict(model, d, batch_size=batch, device=device), d)[0] for d in prep.val}

    def evaluate(self, run_dir: Path | str, request: EvalRequest) -> Metrics:
        """Predict and score per language; the predictions go to ``eval/{split}.{label}.submission.jsonl``.

        ``queries`` (human or mt) picks the rows of a non-English language; the results and files are
        then labelled ``{lang}-{queries}``, so human and translated queries of one run sit side by side.
        ``mt_model`` picks the MT queries' model where a language has several (default: the run's).
        """
        r, log = request, request.log
        if r.translate_test_weight is not None or r.gallery is not None or r.sumr != "both":
            raise CcrError("--translate-test-weight, --gallery and --sumr apply to retrieval runs only; "
                           "drop them for this run")
        if r.queries not in QUERIES:
            raise CcrError(f"--queries {r.queries!r}: use human, mt or auto")
        model = Trained.restore(run_dir, checkpoint=r.checkpoint, device=r.device, corpus=r.corpus, log=log)
        assert isinstance(model.method, GroundingMethod)
        cfg, mcfg = model.train_cfg, model.method_cfg
        clip_len = float(model.run.info()["env"]["clip_length"])
        results: Metrics = {}
        (model.run.root / "eval").mkdir(parents=True, exist_ok=True)
        for lang in r.langs or cfg.lang:
            start = time.perf_counter()
            label = lang if r.queries in (None, "auto") or lang == "en" else f"{lang}-{r.queries}"
            q = query_rows(model.corpus(), r.split, lang, queries=r.queries or mcfg.queries,
                           mt_model=r.mt_model or cfg.mt_model)
            data = build_eval_data(q, source=model.source(), tokenizer=model.tokenizer, max_tokens=cfg.max_tokens,
                                   max_frames=cfg.max_frames, clip_len=clip_len, normalize=mcfg.normalize_video,
                                   cache=None, log=log)
            with distributed.cpu_threads(cfg.threads):
                rows = predict(model.method, data, batch_size=r.batch_size or cfg.eval_batch_size,
                               device=model.device)
            brief, detail = score(rows, data)
            submission = model.run.root / "eval" / f"{r.split}.{label}.submission.jsonl"
            write_predictions(submission, rows)
            results[label] = brief
            block = protocol.grounding(queries=query_source(lang, q.caption_id), query_model=mt_key(q.caption_id),
                                       n_queries=len(rows), n_videos=len({row["vid"] for row in rows}),
                                       clip_length=clip_len, metrics="+".join(detail))
            log(f"{label}: {protocol.describe(block)}")
            atomic.write_json(model.run.eval_file(r.split, label), {
                "split": r.split, "lang": lang, "queries": r.queries or mcfg.queries, "checkpoint": r.checkpoint,
                "epoch": model.epoch, "n_queries": len(rows), "protocol": block,
                "skipped": data.skips.as_dict(), "predictions": submission.name,
                "seconds": round(time.perf_counter() - start, 3), "metrics": brief, "detail": detail,
            })
        write_table(model.run, r.split, results, type(model.method), log)
        return results
