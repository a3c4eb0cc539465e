"""Grounding runs inside the shared trainer: the ``Prepared`` session, predictions, ``ccr evaluate``.

``prepare`` mirrors retrieval's (``ccr.train.run.setup``): same config layers, resume rules, corpus
fingerprint, text tower and ``run.json``; only the samples (queries with moments over clip
features) and the validation (grounding metrics on the validation split, never test) differ.
Predictions follow the QVHighlights submission format (reference/video_methods.md §2.5):
``qid``, ``query``, ``vid``, ``pred_relevant_windows`` ([start, end, score] in seconds, sorted
by score, start and end rounded to whole clips as the QVHighlights post-processing does),
``pred_saliency_scores`` (one per clip); ``ccr.train.eval.grounding_metrics`` scores them. No NMS
unless ``nms_threshold`` > 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train.data.batching import to_device
from ccr.train.data.grounding import (
    GroundingEvalData,
    build_eval_data,
    build_train_data,
    clip_length,
    qid_value,
    query_rows,
)
from ccr.train.eval.grounding_metrics import (
    evaluate_qvhighlights,
    evaluate_single_window,
    write_predictions,
)
from ccr.train.model.grounding.spans import cw_to_se, nms, round_windows
from ccr.train.run import checkpoint as ckpt
from ccr.train.run import distributed
from ccr.train.run.setup import Prepared

if TYPE_CHECKING:
    from ccr.train.model.methods.base import Method
    from ccr.train.model.methods.rgtr import Rgtr

SELECT_KEYS = ("MR-full-mAP", "MR-full-mAP@0.5", "MR-full-mAP@0.75", "MR-full-R1@0.5", "MR-full-R1@0.7")
WINDOW_DECIMALS = 4  # seconds and scores in the predictions file (as Moment-DETR writes them)


@dataclass
class GroundingPrepared(Prepared):
    val: list[GroundingEvalData]  # type: ignore[assignment]  # grounding sets, main process only

    def validate(self, model: Method) -> dict[str, dict[str, float]]:
        """The standard grounding metrics per validation language (``brief`` keys)."""
        batch, device = self.cfg.eval_batch_size, self.world.device
        return {d.name: score(predict(model, d, batch_size=batch, device=device), d)[0]  # type: ignore[arg-type]
                for d in self.val}


def prepare(corpus_dir: Path | str, run: ckpt.RunDir, method: str, method_cls: type[Method], *,
            config: Path | None, sets: list[str] | None, overrides: dict[str, Any] | None, fresh: bool,
            log: Callable[[str], None]) -> GroundingPrepared:
    from ccr.models import cache_dir
    from ccr.train.data.media import open_source
    from ccr.train.run.setup import already_done, open_run, text_encoder, write_info

    opened = open_run(corpus_dir, run, method, method_cls, config=config, sets=sets, overrides=overrides,
                      fresh=fresh, log=log, select_keys=SELECT_KEYS)
    cfg, mcfg, world, state, corpus, fp, log = (opened.cfg, opened.method_cfg, opened.world, opened.state,
                                                opened.corpus, opened.fingerprint, opened.log)
    if cfg.image_encoder:
        raise CcrError("image_encoder: rgtr reads stored clip features; drop --set image_encoder")
    source = open_source(corpus, cfg.visual)
    clip_len = clip_length(mcfg.clip_length, source)
    train_parts = [query_rows(corpus, "train", lang, queries=mcfg.queries, mt_model=cfg.mt_model) for lang in cfg.lang]
    val_parts = [query_rows(corpus, cfg.val_split, lang, queries=mcfg.queries, mt_model=cfg.mt_model)
                 for lang in cfg.lang]
    encoder, tokenizer, provenance = text_encoder(cfg, run, state, world)  # after the data checks: it is slow
    common = {"source": source, "tokenizer": tokenizer, "max_tokens": cfg.max_tokens, "max_frames": cfg.max_frames,
              "clip_len": clip_len, "normalize": mcfg.normalize_video, "cache": cache_dir() / "tokens", "log": log}
    data, skips = build_train_data(train_parts, max_windows=mcfg.max_windows, **common)
    val = [build_eval_data(q, **common) for q in val_parts] if world.main else []
    env = {"media_dim": source.dim, "langs": data.langs, "n_train": len(data), "visual": source.name,
           "clip_length": clip_len, "skipped": skips.as_dict()}
    if world.main and not already_done(state, cfg):
        write_info(run, method, cfg, mcfg, corpus, fp, provenance, env, world, resumed=state is not None)
        run.write_history(state["counters"]["history"] if state is not None else [])
    log(f"{method}: {len(data)} training queries ({', '.join(data.langs)}) over {len(data.media_ids)} videos, "
        f"clip features {source.name} ({source.dim}-d, {clip_len:g} s per clip), {world.size} process(es) on "
        f"{world.device}")
    return GroundingPrepared(run=run, method=method, cfg=cfg, method_cfg=mcfg, world=world, state=state,
                             corpus_fingerprint=fp, encoder=encoder, clip=None, data=data, val=val, env=env, log=log)


def predict(model: Rgtr, data: GroundingEvalData, *, batch_size: int, device: torch.device) -> list[dict[str, Any]]:
    """Submission rows for every query of ``data``, windows in seconds sorted by score."""
    from ccr.train.eval.evaluate import eval_mode

    threshold = model.cfg.nms_threshold
    q, rows = data.queries, []
    with eval_mode(model):
        for idx, batch in data.batches(batch_size):
            out = model.predict(to_device(batch, device))
            spans = cw_to_se(out["spans"]).clamp(0, 1).float().cpu().numpy()
            scores = out["scores"].float().cpu().numpy()
            saliency = out["saliency"].float().cpu().numpy()
            for k, i in enumerate(idx):
                line = data.lines[i]
                windows = np.concatenate([spans[k] * line.seconds, scores[k][:, None]], axis=1).astype(np.float64)
                windows = round_windows(windows, data.clip_len, line.seconds)
                windows = windows[np.argsort(-windows[:, 2], kind="stable")]
                if threshold > 0:
                    windows = nms(windows, threshold)
                clip_scores = saliency[k, :line.clips].astype(np.float64)
                rows.append({"qid": qid_value(q.qid[i]), "query": q.text[i], "vid": q.media_id[i],
                             "pred_relevant_windows": np.round(windows, WINDOW_DECIMALS).tolist(),
                             "pred_saliency_scores": np.round(clip_scores, WINDOW_DECIMALS).tolist()})
    return rows


def score(rows: list[dict[str, Any]], data: GroundingEvalData) -> tuple[dict[str, float], dict[str, Any]]:
    """(brief, detail): the QVHighlights metrics; with one moment per query also R1@0.3 and mIoU."""
    gts = data.ground_truth()
    qvh = evaluate_qvhighlights(rows, gts, clip_length=data.clip_len)
    brief, detail = dict(qvh["brief"]), {"qvhighlights": qvh}
    if all(len(g["relevant_windows"]) == 1 for g in gts):
        single = evaluate_single_window(rows, gts)
        brief |= single["brief"]
        detail["single_window"] = single
    return brief, detail


def evaluate_run(run_dir: Path | str, *, split: str = "test", langs: list[str] | None = None,
                 checkpoint: str = "best", corpus: Path | None = None, batch_size: int | None = None,
                 device: str = "auto", queries: str | None = None, mt_model: str | None = None,
                 log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Predict and score ``split`` per language; writes ``eval/{split}.{lang}.json``, the predictions
    ``eval/{split}.{lang}.submission.jsonl`` and ``eval/{split}.md``.

    ``queries`` (human or mt) picks the rows of a non-English language; the results and files are
    then labelled ``{lang}-{queries}``, so human and translated queries of one run sit side by side.
    ``mt_model`` picks the MT queries' model where a language has several (default: the run's).
    Each result records its ``protocol`` (``ccr.train.eval.protocol``).
    """
    import time

    from ccr.corpus import atomic
    from ccr.train.api import load
    from ccr.train.eval import protocol
    from ccr.train.eval.evaluate import write_table

    if queries not in (None, "auto", "human", "mt"):
        raise CcrError(f"--queries {queries!r}: use human, mt or auto")
    model = load(run_dir, checkpoint=checkpoint, device=device, corpus=corpus, log=log)
    cfg, mcfg = model.train_cfg, model.method_cfg
    clip_len = float(model.run.info()["env"]["clip_length"])
    results: dict[str, dict[str, float]] = {}
    (model.run.root / "eval").mkdir(parents=True, exist_ok=True)
    for lang in langs or cfg.lang:
        start = time.perf_counter()
        label = lang if queries in (None, "auto") or lang == "en" else f"{lang}-{queries}"
        q = query_rows(model.corpus(), split, lang, queries=queries or mcfg.queries,
                       mt_model=mt_model or cfg.mt_model)
        data = build_eval_data(q, source=model.source(), tokenizer=model.tokenizer, max_tokens=cfg.max_tokens,
                               max_frames=cfg.max_frames, clip_len=clip_len, normalize=mcfg.normalize_video,
                               cache=None, log=log)
        with distributed.cpu_threads(cfg.threads):
            rows = predict(model.method, data, batch_size=batch_size or cfg.eval_batch_size,  # type: ignore[arg-type]
                           device=model.device)
        brief, detail = score(rows, data)
        submission = model.run.root / "eval" / f"{split}.{label}.submission.jsonl"
        write_predictions(submission, rows)
        results[label] = brief
        block = protocol.grounding(queries=query_source(lang, q.caption_id), query_model=mt_key(q.caption_id),
                                   n_queries=len(rows), n_videos=len({r['vid'] for r in rows}), clip_length=clip_len,
                                   metrics="+".join(detail))
        log(f"{label}: {protocol.describe(block)}")
        atomic.write_json(model.run.eval_file(split, label), {
            "split": split, "lang": lang, "queries": queries or mcfg.queries, "checkpoint": checkpoint,
            "epoch": model.epoch, "n_queries": len(rows), "protocol": block,
            "skipped": data.skips.as_dict(), "predictions": submission.name,
            "seconds": round(time.perf_counter() - start, 3), "metrics": brief, "detail": detail,
        })
    write_table(model.run, split, results, type(model.method), log)
    return results


def mt_key(caption_ids: list[str]) -> str | None:
    """The MT model of translated queries, from their derived ids ``{parent}|mt:{lang}:{model_key}``."""
    keys = {c.rsplit("|", 1)[1].split(":", 2)[2] for c in caption_ids if "|mt:" in c}
    return ",".join(sorted(keys)) or None


def query_source(lang: str, caption_ids: list[str]) -> str:
    """english, human (captions written in ``lang``) or mt (machine-translated from English)."""
    if lang == "en":
        return "english"
    return "mt" if all("|mt:" in c for c in caption_ids) else "human"
