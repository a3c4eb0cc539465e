"""``ccr.train.load(RUN_DIR)``: a trained retrieval run as two encoders, for use from Python.

Restoring the run is ``ccr.train.run.trained``'s; this adds what only retrieval offers, embeddings
of ad-hoc text and media. A grounding run has none: it predicts windows, scored by ``ccr evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train.data.batching import media_batch, to_device
from ccr.train.data.media import MediaSource, open_slots
from ccr.train.data.tokens import tokenize
from ccr.train.model.inference import eval_mode
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import RetrievalMethod
from ccr.train.run import checkpoint as ckpt
from ccr.train.run.trained import Trained
from ccr.train.search.query import search


class TrainedModel(Trained):
    """``encode_text`` / ``encode_media`` return L2-normalised float32 arrays in the common space;
    ``search`` ranks a split for one query (``ccr.train.search.query.search``)."""

    method: RetrievalMethod
    _slots: MediaSource | None = None
    search = search

    def gallery_keys(self) -> frozenset[str]:
        """What the method's gallery side reads besides the media (LECCR: descriptions or slots)."""
        return type(self.method).needed_gallery_keys(self.method_cfg)

    def slot_source(self) -> MediaSource | None:
        """The slot vectors the run was trained with, when its gallery side reads them."""
        if "slots" not in self.gallery_keys():
            return None
        if self._slots is None:
            self._slots = open_slots(self.corpus(), self.run.info()["env"]["slots"])
        return self._slots

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], *, lang: str | None = None, batch_size: int = 256) -> np.ndarray:
        """Embeddings of ad-hoc queries (the method's ``encode_queries``, its ``emb`` output)."""
        parts = []
        with eval_mode(self.method):
            for start in range(0, len(texts), batch_size):
                tokens = tokenize(self.tokenizer, list(texts[start:start + batch_size]), self.train_cfg.max_tokens)
                batch = to_device({"text": tokens, "lang": lang}, self.device)
                parts.append(self.method.encode_queries(batch)["emb"].float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.train_cfg.embed_dim), np.float32)

    @torch.no_grad()
    def encode_media(self, media: Sequence[str] | np.ndarray | Sequence[np.ndarray], *,
                     batch_size: int = 256) -> np.ndarray:
        """Media ids of the corpus, or features: ``[N, D]``, ``[N, T, D]`` or a list of ``[T, D]``."""
        parts = []
        with eval_mode(self.method):
            for start in range(0, len(media), batch_size):
                batch = self._media_batch(media[start:start + batch_size])
                parts.append(self.method.encode_gallery(to_device(batch, self.device))["emb"].float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.train_cfg.embed_dim), np.float32)

    def _media_batch(self, items: Sequence[Any]) -> dict[str, Any]:
        """A gallery batch: media by id (with any side information the method's gallery reads) or raw features."""
        from ccr.train.data.rows import descriptions

        keys = self.gallery_keys()
        if all(isinstance(m, str) for m in items):
            ids = list(items)
            batch = media_batch(self.source(), ids, self.train_cfg.max_frames)
            if "descriptions" in keys:
                batch["descriptions"] = tokenize(self.tokenizer, descriptions(self.corpus(), ids),
                                                 self.train_cfg.max_tokens)
            slots = self.slot_source()
            if slots is not None:
                batch |= media_batch(slots, ids, self.train_cfg.max_frames, key="slots")
            batch["media_ids"] = ids
            return batch
        if keys:
            raise CcrError(f"this method embeds media with their {', '.join(sorted(keys))}: pass media ids of the "
                           f"corpus, not feature arrays")
        arrays = [np.asarray(x, dtype=np.float32) for x in items]
        arrays = [x[None] if x.ndim == 1 else x[:self.train_cfg.max_frames] for x in arrays]
        t = max(len(x) for x in arrays)
        feats = np.zeros((len(arrays), t, arrays[0].shape[-1]), np.float32)
        mask = np.zeros((len(arrays), t), bool)
        for k, x in enumerate(arrays):
            feats[k, :len(x)], mask[k, :len(x)] = x, True
        return {"media": torch.from_numpy(feats), "media_mask": torch.from_numpy(mask), "media_ids": None}


def load(run_dir: Path | str, *, checkpoint: str = "best", device: str = "cpu",
         corpus: Path | str | None = None, log: Callable[[str], None] = print) -> TrainedModel:
    """A trained retrieval run's ``best`` (default) or ``last`` weights, ready to encode."""
    method = ckpt.RunDir(run_dir).info()["method"]
    task = get_method(method).task
    if task != "retrieval":
        raise CcrError(f"{run_dir} is a {method} run ({task}): it has no text and media encoders to load; "
                       f"score it with ccr evaluate {run_dir}")
    return TrainedModel.restore(run_dir, checkpoint=checkpoint, device=device, corpus=corpus, log=log)
