"""Embedding, scoring and retrieval metrics for validation and ``ccr evaluate``.

Queries and gallery are embedded once each, in batches; the method's ``score`` turns the two
sets of named embeddings into one similarity matrix (a few matrix products), and
``ccr.train.metrics`` does the ranking math on the whole matrix. Nothing loops over pairs.
Translate-test (NRCCR, reference/ccr_methods.md §1.4) scores the queries' English machine
translations against the same gallery and mixes the two min-max scaled matrices.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train.batching import to_device
from ccr.train.distributed import cpu_threads
from ccr.train.metrics import format_table, fuse_scores, retrieval_metrics

if TYPE_CHECKING:
    from ccr.train.batching import EvalData
    from ccr.train.methods.base import Method, Outputs


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _scatter(parts: list[tuple[np.ndarray, Outputs]], n: int) -> Outputs:
    """Per-batch outputs computed in length order -> tensors in the original query order."""
    out: Outputs = {}
    for pos, outputs in parts:
        for key, value in outputs.items():
            if key not in out:
                out[key] = value.new_empty((n, *value.shape[1:]))
            out[key][torch.from_numpy(pos)] = value
    return out


def encode_queries(model: Method, data: EvalData, *, batch_size: int, device: torch.device,
                   translated: bool = False) -> Outputs:
    parts = []
    with eval_mode(model):
        for pos, batch in data.query_batches(batch_size, translated=translated):
            parts.append((pos, model.encode_queries(to_device(batch, device))))
    return _scatter(parts, len(data.records.queries))


def encode_gallery(model: Method, data: EvalData, *, batch_size: int, device: torch.device) -> Outputs:
    chunks: list[Outputs] = []
    with eval_mode(model):
        for batch in data.gallery_batches(batch_size):
            chunks.append(model.encode_gallery(to_device(batch, device)))
    return {key: torch.cat([c[key] for c in chunks]) for key in chunks[0]}


def similarity(model: Method, data: EvalData, *, batch_size: int, device: torch.device,
               translate_test: float | None = None) -> np.ndarray:
    """The ``(n_queries, n_gallery)`` matrix, fused with translate-test when a weight is given."""
    gallery = encode_gallery(model, data, batch_size=batch_size, device=device)
    with eval_mode(model):
        native = model.score(encode_queries(model, data, batch_size=batch_size, device=device), gallery)
        if translate_test is None:
            return native.float().cpu().numpy()
        queries = encode_queries(model, data, batch_size=batch_size, device=device, translated=True)
        translated = model.score(queries, gallery)
    return fuse_scores(native.float().cpu().numpy(), translated.float().cpu().numpy(), translate_test)


def evaluate_model(model: Method, data: EvalData, *, batch_size: int, device: torch.device,
                   translate_test: float | None = None) -> dict[str, float]:
    sim = similarity(model, data, batch_size=batch_size, device=device, translate_test=translate_test)
    return retrieval_metrics(sim, data.records.text_to_media)


def evaluate_run(run_dir: Path | str, *, split: str = "test", langs: list[str] | None = None,
                 translate_test: float | None = None, checkpoint: str = "best", corpus: Path | None = None,
                 batch_size: int | None = None, device: str = "auto", queries: str | None = None,
                 gallery: str | None = None, mt_model: str | None = None,
                 log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Score a trained run on one split, per language; writes ``eval/{split}.{lang}.json`` and ``eval/{split}.md``.

    ``langs`` defaults to the languages the run was trained on; ``translate_test`` (the native
    share, in [0, 1]) defaults to the method's own (none for the baseline). A method class with
    its own ``evaluate_run`` (RGTR: grounding metrics and a predictions file) scores its runs;
    ``queries`` (human, mt or auto) picks its query rows. ``gallery`` (captioned or split)
    defaults to the run's ``gallery`` setting. ``mt_model`` picks the model of the queries' English
    translations (translate-test) or of grounding's MT queries where there are several.
    """
    from ccr.pipeline import atomic
    from ccr.train.api import load
    from ccr.train.batching import build_eval_data
    from ccr.train.checkpoint import RunDir
    from ccr.train.data import eval_records
    from ccr.train.methods import get as get_method

    if translate_test is not None and not 0.0 <= translate_test <= 1.0:
        raise CcrError(f"--translate-test {translate_test}: the native share must lie in [0, 1]")
    own = getattr(get_method(RunDir(run_dir).info()["method"]), "evaluate_run", None)
    if own is not None:
        if translate_test is not None or gallery is not None:
            raise CcrError("--translate-test and --gallery apply to retrieval runs only; drop them for this run")
        return own(run_dir, split=split, langs=langs, checkpoint=checkpoint, corpus=corpus, batch_size=batch_size,
                   device=device, queries=queries, mt_model=mt_model, log=log)
    if queries is not None:
        raise CcrError("--queries applies to grounding runs only; drop it for this run")
    model = load(run_dir, checkpoint=checkpoint, device=device, corpus=corpus)
    weight = translate_test if translate_test is not None else model.method.translate_test
    cfg = model.train_cfg
    gallery = gallery or cfg.gallery
    results: dict[str, dict[str, float]] = {}
    for lang in langs or cfg.lang:
        start = time.perf_counter()
        fusion = weight if lang != "en" else None  # English queries need no translation
        records = eval_records(model.corpus(), split, lang, translated=fusion is not None,
                               translate_model=mt_model, gallery=gallery)
        data = build_eval_data(model.corpus(), records, model.gallery_keys(), tokenizer=model.tokenizer,
                               source=model.source(), max_tokens=cfg.max_tokens, max_frames=cfg.max_frames,
                               cache=None, log=log, slots=model.slot_source())
        with cpu_threads(cfg.threads):
            metrics = evaluate_model(model.method, data, batch_size=batch_size or cfg.eval_batch_size,
                                     device=model.device, translate_test=fusion)
        results[lang] = metrics
        record: dict[str, Any] = {
            "split": split, "lang": lang, "checkpoint": checkpoint, "epoch": model.epoch,
            "n_queries": len(data.records.queries), "n_gallery": len(data.records.gallery),
            "translate_test": fusion, "gallery": gallery, "seconds": round(time.perf_counter() - start, 3),
            "metrics": metrics,
        }
        atomic.write_json(model.run.eval_file(split, lang), record)
    table = format_table(results)
    atomic.write_bytes(model.run.root / "eval" / f"{split}.md", table.encode("utf-8"))
    return results
