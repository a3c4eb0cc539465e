"""``ccr.train.load(RUN_DIR)``: a trained run as two encoders, for use from Python.

A run directory is self-contained: the resolved configs (run.json), the text tower's config and
tokenizer (``text_tower/``) and the weights (checkpoints); loading needs neither the hub nor the
training corpus. The corpus is opened only to embed media by id or to evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccr.errors import CcrError
from ccr.train import legacy
from ccr.train.config import TrainConfig, resolve_configs
from ccr.train.data.batching import media_batch, to_device
from ccr.train.data.media import MediaSource, open_slots
from ccr.train.data.tokens import tokenize
from ccr.train.model.image_encoder import ClipInput, load_encoder, visual_source
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import BuildEnv, Method
from ccr.train.model.towers import load_text_encoder
from ccr.train.run import checkpoint as ckpt
from ccr.train.run import distributed


def instantiate(method_cls: type[Method], train_cfg: TrainConfig, method_cfg: Any, *, encoder: torch.nn.Module,
                env: dict[str, Any], image_encoder: torch.nn.Module | None = None) -> Method:
    """Build a method with the same parameter initialisation on every process (seeded).

    ``env`` is what a run records beside its configs: ``media_dim``, ``langs``, ``n_train`` and,
    for methods that read slot vectors, ``slots`` (the feature set) and ``slot_dim``. ``image_encoder``
    is the CLIP a run fine-tunes end to end (``image_encoder`` option), whose weights it then owns.
    """
    torch.manual_seed(train_cfg.seed)
    return method_cls(method_cfg, BuildEnv(train_cfg, env["media_dim"], encoder, env["langs"], env["n_train"],
                                           env.get("slot_dim", 0), image_encoder))


class TrainedModel:
    """``encode_text`` / ``encode_media`` return L2-normalised float32 arrays in the common space."""

    def __init__(self, run: ckpt.RunDir, method: Method, tokenizer: Any, train_cfg: TrainConfig, method_cfg: Any,
                 *, epoch: int, device: torch.device, corpus_path: Path | None, clip: ClipInput | None = None):
        self.run, self.method, self.tokenizer, self.clip = run, method, tokenizer, clip
        self.train_cfg, self.method_cfg, self.epoch, self.device = train_cfg, method_cfg, epoch, device
        self._corpus_path = corpus_path
        self._corpus: Any = None
        self._source: MediaSource | None = None
        self._slots: MediaSource | None = None

    def corpus(self) -> Any:
        from ccr.corpus.corpus import Corpus

        if self._corpus is None:
            if self._corpus_path is None or not Path(self._corpus_path).exists():
                raise CcrError(f"the run's corpus {self._corpus_path} is not here; pass --corpus PATH")
            self._corpus = Corpus.open(self._corpus_path)
        return self._corpus

    def source(self) -> MediaSource:
        if self._source is None:
            self._source = visual_source(self.corpus(), self.run.info()["visual"], self.clip)
        return self._source

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
        from ccr.train.eval.evaluate import eval_mode

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
        from ccr.train.eval.evaluate import eval_mode

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
    """A trained run's ``best`` (default) or ``last`` weights, ready to encode.

    A run made before an option was renamed loads with the old value converted, meaning kept, and
    ``log`` says so (``ccr.train.legacy``).
    """
    run = ckpt.RunDir(run_dir)
    info = run.info()
    if checkpoint not in ("best", "last"):
        raise CcrError(f"--checkpoint {checkpoint!r}: use best or last")
    recorded = info.get("corpus")
    recorded = recorded.get("path") if isinstance(recorded, dict) else None
    if corpus is None and not isinstance(recorded, str):
        raise CcrError(f"run file {run.run_json} names no corpus; give it: --corpus CORPUS")
    corpus_path = Path(corpus if corpus is not None else recorded)
    state = ckpt.load(run.best if checkpoint == "best" else run.last)
    method_cls = get_method(info["method"])
    note = legacy.upgrade_note(run.root, state["config"]["train"])
    if note:
        log(note)
    pinned = state["config"] | {"train": legacy.upgrade_train_config(state["config"]["train"])}
    train_cfg, method_cfg = resolve_configs(info["method"], method_cls.Config, pinned=pinned)
    encoder, tokenizer = load_text_encoder(run.text_tower, pretrained=False)
    clip = load_encoder(train_cfg, run.image_tower, pretrained=False, save=False) if train_cfg.image_encoder else None
    method = instantiate(method_cls, train_cfg, method_cfg, encoder=encoder, env=state["env"],
                         image_encoder=clip.encoder if clip else None)
    method.load_state_dict(state["model"])
    distributed.check_device(device, 0, 1, torch.cuda.device_count())
    dev = distributed.pick_device(device)
    return TrainedModel(run, method.to(dev), tokenizer, train_cfg, method_cfg, epoch=state["epoch"], device=dev,
                        corpus_path=corpus_path, clip=clip)
