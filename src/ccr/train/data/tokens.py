"""Captions tokenized once per (tokenizer, max length, text set), cached across epochs and runs.

Every distinct text is tokenized a single time and stored as one flat id array with offsets; a
batch is a handful of slices padded to its longest member. The cache key covers the tokenizer's
vocabulary and class, the length limit and the texts themselves, so a changed corpus or tokenizer
never reuses stale ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccr.corpus import atomic

CHUNK = 4096


def tokenizer_fingerprint(tokenizer: Any) -> str:
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    for token, i in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        h.update(f"{i}\t{token}\n".encode())
    h.update(repr(sorted(tokenizer.special_tokens_map.items())).encode())
    return h.hexdigest()[:16]


class TokenTable:
    """Token ids of a fixed set of texts; ``rows`` maps texts to table rows, ``batch`` pads rows."""

    def __init__(self, texts: list[str], ids: np.ndarray, offsets: np.ndarray, pad_id: int):
        self.index = {t: i for i, t in enumerate(texts)}
        self.ids, self.offsets, self.pad_id = ids, offsets, pad_id

    @classmethod
    def build(cls, texts: Iterable[str], tokenizer: Any, max_tokens: int, cache: Path | None = None) -> TokenTable:
        unique = sorted(set(texts))
        key = hashlib.sha256(f"{tokenizer_fingerprint(tokenizer)}|{max_tokens}".encode())
        for t in unique:
            key.update(t.encode("utf-8") + b"\0")
        path = cache / f"tokens-{key.hexdigest()[:20]}.npz" if cache is not None else None
        if path is not None and path.exists():
            with np.load(path) as z:
                return cls(unique, z["ids"], z["offsets"], tokenizer.pad_token_id)
        pieces: list[list[int]] = []
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start:start + CHUNK]
            pieces += tokenizer(chunk, truncation=True, max_length=max_tokens)["input_ids"]
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.fromiter((i for p in pieces for i in p), dtype=np.int32, count=int(offsets[-1]))
        if path is not None:
            atomic.write_with(path, lambda tmp: _save(tmp, ids, offsets))
        return cls(unique, ids, offsets, tokenizer.pad_token_id)

    def rows(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.index[t] for t in texts], dtype=np.int64)

    def lengths(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        return self.offsets[rows + 1] - self.offsets[rows]

    def batch(self, rows: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` for these rows, padded to the longest."""
        rows = np.asarray(rows)
        lengths = self.lengths(rows)
        ids = np.full((len(rows), int(lengths.max())), self.pad_id, dtype=np.int64)
        for k, (r, n) in enumerate(zip(rows, lengths, strict=True)):
            ids[k, :n] = self.ids[self.offsets[r]:self.offsets[r] + n]
        mask = np.arange(ids.shape[1])[None, :] < lengths[:, None]
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


def _save(tmp: Path, ids: np.ndarray, offsets: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.savez(f, ids=ids, offsets=offsets)


def tokenize(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Texts straight to a padded batch, for ad-hoc queries (``ccr.train.load(...).encode_text``)."""
    table = TokenTable.build(texts, tokenizer, max_tokens)
    return table.batch(table.rows(texts))
