"""Batches for training and evaluation, built only from the data keys a method declares.

Training batch (a dict; keys present only when the method's ``data_keys`` ask for them):

* ``media`` ``[B, T, D]`` float, ``media_mask`` ``[B, T]`` bool: visual input (always present);
* ``media_index`` ``[B]`` long: the media item's id in this run, identical for captions of one
  item, so losses treat them as positives and never as each other's negatives;
* ``index`` ``[B]`` long: the tuple's position in the training set (per-sample state, e.g. DCOT);
* ``lang`` ``[B]`` long: index into ``TrainData.langs``;
* ``en``, ``mt``, ``bt``, ``descriptions``: token batches ``{"input_ids", "attention_mask"}``;
* ``weight`` ``[B]`` float: corpus weights (1.0 where missing, or when ``use_weights`` is off);
* ``slots`` ``[B, K, D]`` float, ``slots_mask`` ``[B, K]`` bool: the item's slot vectors from
  ``ccr slots`` (feature set ``slot_features``), training and gallery side alike.

The sampler shuffles tuples by (seed, epoch), cuts them into global batches and gives each DDP
process a contiguous slice, so a run on N processes sees the same global batches as on one, and
a resumed epoch can skip the batches it already did. Whatever the data path draws at random (LECCR's
crops and flips) comes from a stream of the batch's own (``EpochCollate``), so a batch is the same
whether it is built in this process or in a loader worker, in an uninterrupted epoch or after a resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train.data.media import MediaSource, frames_batch
from ccr.train.data.rows import EvalRecords, TrainRecords, descriptions
from ccr.train.data.tokens import TokenTable

if TYPE_CHECKING:
    from ccr.corpus.corpus import Corpus

Batch = dict[str, Any]


def media_batch(source: MediaSource, media_ids: list[str], max_frames: int, key: str = "media") -> Batch:
    """``key`` ``[B, T, D]`` and ``{key}_mask`` ``[B, T]`` from a feature source (media, or slot vectors)."""
    feats, mask = frames_batch(source, media_ids, max_frames)
    return {key: torch.from_numpy(feats), f"{key}_mask": torch.from_numpy(mask)}


@dataclass
class TrainData:
    records: TrainRecords
    media_ids: list[str]  # distinct items; ``media_index`` points here
    media_index: np.ndarray
    langs: list[str]
    lang_index: np.ndarray
    texts: TokenTable
    text_rows: dict[str, np.ndarray]  # data key -> table row per tuple
    description_rows: np.ndarray | None  # table row per media item
    source: MediaSource
    max_frames: int
    slots: MediaSource | None = None  # slot vectors, when the method reads the ``slots`` key

    def __len__(self) -> int:
        return len(self.media_index)

    def collate(self, indices: list[int]) -> Batch:
        idx = np.asarray(indices)
        groups = self.media_index[idx]
        ids = [self.media_ids[g] for g in groups]
        batch = media_batch(self.source, ids, self.max_frames)
        if self.slots is not None:
            batch |= media_batch(self.slots, ids, self.max_frames, key="slots")
        batch["media_index"] = torch.from_numpy(groups)
        batch["index"] = torch.from_numpy(idx)
        batch["lang"] = torch.from_numpy(self.lang_index[idx])
        batch["weight"] = torch.from_numpy(self.records.weight[idx])
        for key, rows in self.text_rows.items():
            batch[key] = self.texts.batch(rows[idx])
        if self.description_rows is not None:
            batch["descriptions"] = self.texts.batch(self.description_rows[groups])
        return batch


def build_train_data(corpus: Corpus, records: TrainRecords, keys: frozenset[str], *, tokenizer: Any,
                     source: MediaSource, max_tokens: int, max_frames: int, use_weights: bool,
                     cache: Path | None, log: Callable[[str], None], slots: MediaSource | None = None) -> TrainData:
    slots = slots if "slots" in keys else None
    records, dropped = records.restrict(_has_inputs(source, slots))
    if dropped:
        log(f"{dropped} training tuples have no {_input_names(source, slots)} input and are left out")
    if not use_weights:
        records.weight = np.ones_like(records.weight)
    media_ids = sorted(set(records.media_id))
    group = {m: i for i, m in enumerate(media_ids)}
    langs = sorted(set(records.lang))
    desc = descriptions(corpus, media_ids) if "descriptions" in keys else []
    texts = TokenTable.build([t for v in records.texts.values() for t in v] + desc, tokenizer, max_tokens, cache)
    return TrainData(
        records=records,
        media_ids=media_ids,
        media_index=np.array([group[m] for m in records.media_id], dtype=np.int64),
        langs=langs,
        lang_index=np.array([langs.index(lang) for lang in records.lang], dtype=np.int64),
        texts=texts,
        text_rows={k: texts.rows(v) for k, v in records.texts.items()},
        description_rows=texts.rows(desc) if desc else None,
        source=source,
        max_frames=max_frames,
        slots=slots,
    )


def _has_inputs(source: MediaSource, slots: MediaSource | None) -> Callable[[str], bool]:
    return source.has if slots is None else (lambda m: source.has(m) and slots.has(m))


def _input_names(source: MediaSource, slots: MediaSource | None) -> str:
    return source.name if slots is None else f"{source.name} or {slots.name}"


@dataclass
class EvalData:
    records: EvalRecords
    texts: TokenTable
    query_rows: np.ndarray
    translated_rows: np.ndarray | None
    description_rows: np.ndarray | None  # per gallery item
    source: MediaSource
    max_frames: int
    slots: MediaSource | None = None  # slot vectors, when the gallery needs the ``slots`` key

    def query_batches(self, batch_size: int, *, translated: bool = False) -> Iterator[tuple[np.ndarray, Batch]]:
        """(positions, batch) in length order, so padding stays short; callers scatter by position."""
        rows = self.translated_rows if translated else self.query_rows
        assert rows is not None
        order = np.argsort(self.texts.lengths(rows), kind="stable")
        lang = "en" if translated else self.records.lang
        for start in range(0, len(order), batch_size):
            pos = order[start:start + batch_size]
            yield pos, {"text": self.texts.batch(rows[pos]), "lang": lang}

    def gallery_batches(self, batch_size: int) -> Iterator[Batch]:
        ids = self.records.gallery
        for start in range(0, len(ids), batch_size):
            batch = media_batch(self.source, ids[start:start + batch_size], self.max_frames)
            if self.slots is not None:
                batch |= media_batch(self.slots, ids[start:start + batch_size], self.max_frames, key="slots")
            batch["media_ids"] = ids[start:start + batch_size]
            if self.description_rows is not None:
                batch["descriptions"] = self.texts.batch(self.description_rows[start:start + batch_size])
            yield batch


def build_eval_data(corpus: Corpus, records: EvalRecords, gallery_keys: frozenset[str], *, tokenizer: Any,
                    source: MediaSource, max_tokens: int, max_frames: int, cache: Path | None,
                    log: Callable[[str], None], slots: MediaSource | None = None) -> EvalData:
    slots = slots if "slots" in gallery_keys else None
    records, dropped = records.restrict(_has_inputs(source, slots))
    if dropped:
        log(f"{records.split}/{records.lang}: {dropped} queries whose item has no {_input_names(source, slots)} "
            f"input are left out")
    desc = descriptions(corpus, records.gallery) if "descriptions" in gallery_keys else []
    texts = TokenTable.build(records.queries + (records.translated or []) + desc, tokenizer, max_tokens, cache)
    return EvalData(records, texts, texts.rows(records.queries),
                    texts.rows(records.translated) if records.translated is not None else None,
                    texts.rows(desc) if desc else None, source, max_frames, slots)


class EpochSampler(torch.utils.data.Sampler[list[int]]):
    """This process's slice of every full global batch of a (seed, epoch) shuffle."""

    def __init__(self, n: int, batch_size: int, *, rank: int = 0, world: int = 1, seed: int = 0):
        if batch_size % world:
            raise CcrError(f"batch_size {batch_size} must be divisible by the number of processes ({world})")
        if n < batch_size:
            raise CcrError(f"only {n} training tuples, fewer than batch_size {batch_size}; lower --batch-size")
        self.n, self.batch_size, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.epoch, self.skip = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        local = self.batch_size // self.world
        for b in range(self.skip, self.batches_per_epoch):
            start = b * self.batch_size + self.rank * local
            yield order[start:start + local]


def batch_seed(seed: int, epoch: int, first: int = -1) -> int:
    """A 32-bit seed for (run seed, epoch, a batch's first tuple); -1 stands for the epoch as a whole."""
    return int(np.random.SeedSequence([seed % 2**32, epoch, first + 1]).generate_state(1)[0])


class EpochCollate:
    """``collate`` under torch's generator forked and seeded by (seed, epoch, the batch's first tuple).

    The first tuple names a batch within an epoch (the order is a permutation, and DDP processes
    hold disjoint slices), so the draws of a batch never depend on the batches before it: the
    training step's own stream (dropout) neither feeds nor is fed by the data path, and a resumed
    epoch, or a loader whose workers take the batches in another order, builds the same batches.
    """

    def __init__(self, collate: Callable[[list[int]], Batch], seed: int):
        self.collate, self.seed, self.epoch = collate, seed, 0

    def __call__(self, indices: list[int]) -> Batch:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_seed(self.seed, self.epoch, int(indices[0])))
            return self.collate(indices)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch
