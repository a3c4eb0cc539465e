"""``ccr slots``: LECCR's multi-view semantic slots from the MLLM descriptions, by clustering.

The original LECCR learns K slot queries over description tokens (ccr_methods.md §2.2); this stage
gives the trainer's ``--slots corpus`` mode fixed slots instead. Per media item: the selected
descriptions are split into sentences (newlines, sentence ends, list bullets; segments with fewer
than ``min_chars`` letters or digits and repeats are dropped), embedded with a sentence-transformers
model, and grouped into K clusters by spherical k-means with a deterministic start (the most central
segment, then repeatedly the segment farthest from all chosen ones), so the same descriptions always
give the same slots, whatever else shares their batch.

Rules when there are few segments:
- no usable segment: the item is a failure row (its descriptions are empty or noise);
- at most K distinct segments: each is its own slot, no clustering;
- fewer than K slots: the rest are filler slots with ``size`` 0, empty text and the mean of all of
  the item's segments as their vector, so consumers always get ``[K, D]`` and can mask by size.

Slots are ordered by where their first segment appears. A slot's vector is the unit-length mean of
its segments, its text the segment nearest that mean. Vectors go to
``features/slots-k{K}-{embedder}/`` (``[K, D]`` float16), texts and sizes to ``slots/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ccr.caption.prompts import PROMPT_SETS
from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.feature_store import store_stem
from ccr.corpus.views import chosen_descriptions, slot_id
from ccr.models import resolve
from ccr.stages.checks import at_least
from ccr.stages.device import torch_device
from ccr.stages.runner import BatchResult, Failure, Plan, Stage, table_chunks

TIE = 1e-6  # scores this close count as equal, so float noise between batchings cannot change a choice
_BREAK = re.compile(r"\n+|(?<=[.!?;])\s+|(?<=[。！？；])")
_BULLET = re.compile(r"^(?:[-*•]+|\d+[.)])\s*")


@dataclass
class SlotsConfig:
    k: int = option(4, "slots per item (LECCR: 4 for images, 2 for video)")
    embedder: str = option("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers id, path, alias or "
                                                                     "tiny/minilm")
    mllm: str | None = option(None, "model key of the descriptions to use, where several models described the "
                                    "corpus", flag="--description-model")
    prompts: list[str] = option(help="only descriptions made with this prompt id (repeatable) (default: all)",
                                factory=list, flag="--description-prompt")
    min_chars: int = option(3, "segments with fewer letters or digits are dropped")
    max_iter: int = option(100, "k-means iterations at most")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", runtime=True)
    encode_batch: int = option(64, "sentences per embedder call", runtime=True)
    aliases: dict[str, str] = option(help="model name -> local path (the TOML's [models] table)", factory=dict,
                                     runtime=True, cli=False)


def segments(texts: Sequence[str], min_chars: int = 3) -> list[str]:
    """Sentences of the texts in order, bullets stripped, short and repeated ones dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        for piece in _BREAK.split(text or ""):
            seg = _BULLET.sub("", piece.strip()).strip()
            key = seg.casefold()
            if sum(ch.isalnum() for ch in seg) < min_chars or key in seen:
                continue
            seen.add(key)
            out.append(seg)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _first_best(scores: np.ndarray) -> np.ndarray | int:
    """Index of the first score within ``TIE`` of the best, along the last axis."""
    best = scores >= scores.max(axis=-1, keepdims=True) - TIE
    return np.argmax(best, axis=-1) if scores.ndim > 1 else int(np.argmax(best))


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    order = {label: rank for rank, label in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[label] for label in labels.tolist()], dtype=np.int64)


def _same_points(x: np.ndarray) -> np.ndarray:
    """Group ids of points that coincide (cosine within ``TIE`` of 1), numbered by first appearance."""
    firsts: list[int] = []
    groups = np.empty(len(x), dtype=np.int64)
    for i in range(len(x)):
        match = next((g for g, j in enumerate(firsts) if x[i] @ x[j] >= 1 - TIE), None)
        if match is None:
            firsts.append(i)
            match = len(firsts) - 1
        groups[i] = match
    return groups


def _farthest_first(x: np.ndarray, k: int) -> np.ndarray:
    """The most central point, then repeatedly the point least similar to every chosen one."""
    chosen = [int(_first_best(x @ _unit(x.mean(axis=0))))]
    nearest = x @ x[chosen[0]]
    while len(chosen) < k:
        nxt = int(_first_best(-nearest))
        chosen.append(nxt)
        nearest = np.maximum(nearest, x @ x[nxt])
    return x[chosen].copy()


def cluster(embeddings: np.ndarray, k: int, max_iter: int = 100) -> np.ndarray:
    """Spherical k-means labels, numbered by first appearance; no randomness anywhere."""
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    distinct = _same_points(x)
    if distinct.max(initial=-1) + 1 <= k:
        return distinct
    centers = _farthest_first(x, k)
    labels = np.full(len(x), -1)
    for _ in range(max_iter):
        sims = x @ centers.T
        new = _first_best(sims)
        for c in range(k):  # an emptied cluster takes the point that fits its own cluster worst
            if not (new == c).any():
                counts = np.bincount(new, minlength=k)
                fit = np.where(counts[new] > 1, sims[np.arange(len(x)), new], np.inf)
                new[int(_first_best(-fit))] = c
        if np.array_equal(new, labels):
            break
        labels = new
        centers = _unit(np.stack([x[labels == c].mean(axis=0) for c in range(k)]))
    return _by_first_appearance(labels)


@dataclass
class Slot:
    vector: np.ndarray
    text: str
    size: int  # segments in the slot; 0 = filler


def make_slots(texts: Sequence[str], embeddings: np.ndarray, k: int, max_iter: int = 100) -> list[Slot]:
    """K slots from an item's segments and their embeddings (see the module notes for the rules)."""
    if not len(texts):
        raise ValueError("no segments to make slots from")
    x = _unit(np.asarray(embeddings, dtype=np.float64))
    labels = cluster(x, k, max_iter)
    slots = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        centroid = _unit(x[members].mean(axis=0))
        slots.append(Slot(centroid, texts[int(members[_first_best(x[members] @ centroid)])], len(members)))
    filler = _unit(x.mean(axis=0))
    return slots + [Slot(filler, "", 0) for _ in range(k - len(slots))]


def plan(corpus: Corpus, cfg: SlotsConfig) -> Plan:
    import polars as pl

    prompt_ids = [pid for name in cfg.prompts for pid in PROMPT_SETS.get(name, (name,))]
    mine, model_key = chosen_descriptions(corpus, cfg.mllm, prompt_ids)
    embedder = resolve(cfg.embedder, aliases=cfg.aliases)
    name = f"slots-k{cfg.k}-{store_stem(embedder.key)}"

    def rows() -> pl.LazyFrame:
        return (mine.sort("description_id").group_by("media_id", maintain_order=True)
                .agg(pl.col("text").alias("texts")))

    return Plan(input_table="media", chunks=table_chunks(rows, "media_id"),
                total=lambda: rows().select(pl.len()).collect().item(),
                fingerprint_parts={"embedder": embedder.provenance(), "descriptions": model_key,
                                   "prompts": sorted(prompt_ids)},
                models={"embedder": embedder.provenance(), "descriptions": model_key, "features": name},
                id_of=lambda row: row["media_id"])


@dataclass
class _State:
    model: Any
    name: str


def setup(corpus: Corpus, cfg: SlotsConfig, plan_: Plan) -> _State:
    """Load the embedder and claim the store; its dimension is known only once the model is loaded."""
    from sentence_transformers import SentenceTransformer

    device = torch_device(cfg.device)
    embedder = resolve(cfg.embedder, aliases=cfg.aliases)
    model = SentenceTransformer(str(embedder.path), device=device)
    name = plan_.models["features"]
    meta = {"model": embedder.id, "revision": embedder.revision, "dim": model.get_embedding_dimension(),
            "dtype": "float16", "variant": f"slots-k{cfg.k}", "k": cfg.k, "normalized": True,
            "descriptions": plan_.models["descriptions"]}
    corpus.features(name).claim(meta, fix="remove that folder or use another embedder")
    return _State(model=model, name=name)


def process(batch: Sequence[dict[str, Any]], state: _State, cfg: SlotsConfig) -> BatchResult:
    table = f"features/{state.name}"
    result = BatchResult(rows={table: [], "slots": []})
    items = []
    for row in batch:
        segs = segments(row["texts"], cfg.min_chars)
        if segs:
            items.append((row["media_id"], segs))
        else:
            result.failures.append(Failure(row["media_id"], "no usable sentence in its descriptions "
                                                            f"(each has fewer than {cfg.min_chars} letters or digits)"))
    flat = [s for _, segs in items for s in segs]
    vectors = state.model.encode(flat, batch_size=cfg.encode_batch, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False) if flat else None
    start = 0
    for media_id, segs in items:
        slots = make_slots(segs, vectors[start:start + len(segs)], cfg.k, cfg.max_iter)
        start += len(segs)
        result.rows[table].append({"media_id": media_id,
                                   "features": np.stack([s.vector for s in slots]).astype(np.float16)})
        result.rows["slots"] += [{"slot_id": slot_id(media_id, state.name, i), "media_id": media_id, "slot": i,
                                  "text": s.text, "size": s.size} for i, s in enumerate(slots)]
    return result


def _check(cfg: SlotsConfig) -> None:
    at_least(cfg, k=1, max_iter=1, min_chars=0, encode_batch=1)


STAGE = Stage(name="slots", version="1", config=SlotsConfig, plan=plan, setup=setup, process=process,
              help="cluster each item's description sentences into K semantic slots (LECCR)", check=_check,
              examples=("ccr slots ccr-demo/corpus --k 4 --models toy",),
              needs=frozenset({"descriptions"}), provides={"slots": "slots"}, smoke={"embedder": "tiny/minilm"})
