"""Embedding, scoring and retrieval metrics for validation and ``ccr evaluate``.

Queries and gallery are embedded once each, in batches; the method's ``score`` turns the two
sets of named embeddings into one similarity matrix (a few matrix products), and
``ccr.train.eval.metrics`` does the ranking math on the whole matrix. Nothing loops over pairs.
Translate-test (NRCCR, reference/ccr_methods.md §1.4) scores the queries' English machine
translations against the same gallery and mixes the two min-max scaled matrices; it is an explicit
option for any method, never a default, so every method is scored under one protocol unless asked
otherwise, and the protocol is written beside the numbers (``ccr.train.eval.protocol``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train.data.batching import to_device
from ccr.train.eval import protocol
from ccr.train.eval.metrics import format_table, fuse_scores, retrieval_metrics
from ccr.train.eval.protocol import SUMR_DIRECTIONS, SumR
from ccr.train.run.distributed import cpu_threads

if TYPE_CHECKING:
    from ccr.train.data.batching import EvalData
    from ccr.train.model.methods.base import Method, Outputs
    from ccr.train.run.checkpoint import RunDir


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
               translate_test_weight: float | None = None) -> np.ndarray:
    """The ``(n_queries, n_gallery)`` matrix, fused with the xx->en MT queries at the given weight."""
    gallery = encode_gallery(model, data, batch_size=batch_size, device=device)
    with eval_mode(model):
        native = model.score(encode_queries(model, data, batch_size=batch_size, device=device), gallery)
        if not translate_test_weight:
            return native.float().cpu().numpy()
        queries = encode_queries(model, data, batch_size=batch_size, device=device, translated=True)
        translated = model.score(queries, gallery)
    return fuse_scores(native.float().cpu().numpy(), translated.float().cpu().numpy(),
                       translated_weight=translate_test_weight)


def evaluate_model(model: Method, data: EvalData, *, batch_size: int, device: torch.device,
                   translate_test_weight: float | None = None) -> dict[str, float]:
    sim = similarity(model, data, batch_size=batch_size, device=device, translate_test_weight=translate_test_weight)
    return retrieval_metrics(sim, data.records.text_to_media)


def check_weight(weight: float | None) -> None:
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise CcrError(f"--translate-test-weight {weight}: the xx->en MT queries' weight must lie in [0, 1]")


def evaluate_run(run_dir: Path | str, *, split: str = "test", langs: list[str] | None = None,
                 translate_test_weight: float | None = None, checkpoint: str = "best", corpus: Path | None = None,
                 batch_size: int | None = None, device: str = "auto", queries: str | None = None,
                 gallery: str | None = None, mt_model: str | None = None, sumr: SumR = "both",
                 log: Callable[[str], None] = print) -> dict[str, dict[str, float]]:
    """Score a trained run on one split, per language; writes ``eval/{split}.{lang}.json`` and ``eval/{split}.md``.

    Every method is scored the same way unless asked: native queries, the run's ``gallery`` setting
    (``captioned`` by default), SumR over both directions. ``translate_test_weight`` in [0, 1] fuses
    the queries' English MT at that weight (NRCCR's image test: 0.5), for any method; ``sumr="t2v"``
    makes SumR text-to-video only (RIVRL's README). Each result records this ``protocol``. A method
    class with its own ``evaluate_run`` (RGTR: grounding metrics and a predictions file) scores its
    runs; ``queries`` (human, mt or auto) picks its query rows. ``mt_model`` picks the model of the
    queries' English translations (translate-test) or of grounding's MT queries where there are several.
    """
    from ccr.corpus import atomic
    from ccr.train.api import load
    from ccr.train.data.batching import build_eval_data
    from ccr.train.data.rows import eval_records
    from ccr.train.model.methods import get as get_method
    from ccr.train.run.checkpoint import RunDir

    check_weight(translate_test_weight)
    if sumr not in SUMR_DIRECTIONS:
        raise CcrError(f"--sumr {sumr!r}: use both (t2v + v2t recalls) or t2v (text-to-video only)")
    own = getattr(get_method(RunDir(run_dir).info()["method"]), "evaluate_run", None)
    if own is not None:
        if translate_test_weight is not None or gallery is not None or sumr != "both":
            raise CcrError("--translate-test-weight, --gallery and --sumr apply to retrieval runs only; "
                           "drop them for this run")
        return own(run_dir, split=split, langs=langs, checkpoint=checkpoint, corpus=corpus, batch_size=batch_size,
                   device=device, queries=queries, mt_model=mt_model, log=log)
    if queries is not None:
        raise CcrError("--queries applies to grounding runs only; drop it for this run")
    model = load(run_dir, checkpoint=checkpoint, device=device, corpus=corpus, log=log)
    cfg = model.train_cfg
    gallery = gallery or cfg.gallery
    results: dict[str, dict[str, float]] = {}
    for lang in langs or cfg.lang:
        start = time.perf_counter()
        weight = translate_test_weight if lang != "en" and translate_test_weight else None  # English needs no MT
        records = eval_records(model.corpus(), split, lang, translated=weight is not None,
                               translate_model=mt_model, gallery=gallery)
        data = build_eval_data(model.corpus(), records, model.gallery_keys(), tokenizer=model.tokenizer,
                               source=model.source(), max_tokens=cfg.max_tokens, max_frames=cfg.max_frames,
                               cache=None, log=log, slots=model.slot_source())
        with cpu_threads(cfg.threads):
            metrics = evaluate_model(model.method, data, batch_size=batch_size or cfg.eval_batch_size,
                                     device=model.device, translate_test_weight=weight)
        results[lang] = metrics
        n_queries, n_gallery = len(data.records.queries), len(data.records.gallery)
        block = protocol.retrieval(translate_test_weight=weight, translate_model=data.records.translate_model,
                                   gallery=gallery, n_queries=n_queries, n_gallery=n_gallery, sumr=sumr)
        log(f"{lang}: {protocol.describe(block)}")
        atomic.write_json(model.run.eval_file(split, lang), {
            "split": split, "lang": lang, "checkpoint": checkpoint, "epoch": model.epoch,
            "n_queries": n_queries, "n_gallery": n_gallery, "protocol": block,
            "seconds": round(time.perf_counter() - start, 3), "metrics": metrics,
        })
    write_table(model.run, split, results, type(model.method), log)
    return results


def write_table(run: RunDir, split: str, results: dict[str, dict[str, float]], method_cls: type[Method],
                log: Callable[[str], None]) -> None:
    """``eval/{split}.md``: the metrics per language, and the proposal label where the method has one."""
    from ccr.corpus import atomic
    from ccr.train.model.methods.base import proposal_note

    table = format_table(results)
    note = proposal_note(method_cls)
    if note:
        log(note)
        table += f"\n{note}\n"
    atomic.write_bytes(run.root / "eval" / f"{split}.md", table.encode("utf-8"))
