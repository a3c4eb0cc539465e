"""Retrieval scoring: embeddings, the similarity matrix and its metrics, for validation and ``ccr evaluate``.

Queries and gallery are embedded once each, in batches; the method's ``score`` turns the two
sets of named embeddings into one similarity matrix (a few matrix products), and
``ccr.train.eval.metrics`` does the ranking math on the whole matrix. Nothing loops over pairs.
Translate-test (NRCCR, reference/ccr_methods.md §1.4) scores the queries' English machine
translations against the same gallery and mixes the two min-max scaled matrices; it is an explicit
option for any method, never a default, so every method is scored under one protocol unless asked
otherwise, and the protocol is written beside the numbers (``ccr.train.eval.protocol``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train.data.batching import to_device
from ccr.train.eval.metrics import fuse_scores, retrieval_metrics
from ccr.train.model.inference import eval_mode

if TYPE_CHECKING:
    from ccr.train.data.batching import EvalData
    from ccr.train.model.methods.base import Outputs, RetrievalMethod


def _scatter(parts: list[tuple[np.ndarray, Outputs]], n: int) -> Outputs:
    """Per-batch outputs computed in length order -> tensors in the original query order."""
    out: Outputs = {}
    for pos, outputs in parts:
        for key, value in outputs.items():
            if key not in out:
                out[key] = value.new_empty((n, *value.shape[1:]))
            out[key][torch.from_numpy(pos)] = value
    return out


def encode_queries(model: RetrievalMethod, data: EvalData, *, batch_size: int, device: torch.device,
                   translated: bool = False) -> Outputs:
    parts = []
    with eval_mode(model):
        for pos, batch in data.query_batches(batch_size, translated=translated):
            parts.append((pos, model.encode_queries(to_device(batch, device))))
    return _scatter(parts, len(data.records.queries))


def encode_gallery(model: RetrievalMethod, data: EvalData, *, batch_size: int, device: torch.device) -> Outputs:
    chunks: list[Outputs] = []
    with eval_mode(model):
        for batch in data.gallery_batches(batch_size):
            chunks.append(model.encode_gallery(to_device(batch, device)))
    return {key: torch.cat([c[key] for c in chunks]) for key in chunks[0]}


def similarity(model: RetrievalMethod, data: EvalData, *, batch_size: int, device: torch.device,
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


def evaluate_model(model: RetrievalMethod, data: EvalData, *, batch_size: int, device: torch.device,
                   translate_test_weight: float | None = None) -> dict[str, float]:
    sim = similarity(model, data, batch_size=batch_size, device=device, translate_test_weight=translate_test_weight)
    return retrieval_metrics(sim, data.records.text_to_media)


def check_weight(weight: float | None) -> None:
    if weight is not None and not 0.0 <= weight <= 1.0:
        raise CcrError(f"--translate-test-weight {weight}: the xx->en MT queries' weight must lie in [0, 1]")
