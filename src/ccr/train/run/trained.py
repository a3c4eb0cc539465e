"""A trained run brought back: its configs, text tower and weights, for any task.

A run directory is self-contained: the resolved configs (run.json), the text tower's config and
tokenizer (``text_tower/``) and the weights (checkpoints); restoring needs neither the hub nor the
training corpus. The corpus is opened only when a caller reads media by id or evaluates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import torch

from ccr.errors import CcrError
from ccr.train import legacy
from ccr.train.config import TrainConfig, resolve_configs
from ccr.train.data.media import MediaSource
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


class Trained:
    """A run's method with its weights, configs and tokenizer, and the corpus and features it read."""

    def __init__(self, run: ckpt.RunDir, method: Method, tokenizer: Any, train_cfg: TrainConfig, method_cfg: Any,
                 *, epoch: int, device: torch.device, corpus_path: Path | None, checkpoint: Path,
                 checkpoint_stamp: list[int], clip: ClipInput | None = None):
        self.run, self.method, self.tokenizer, self.clip = run, method, tokenizer, clip
        # the file the weights came from, and its ``ckpt.stamp`` from before they were read
        self.checkpoint, self.checkpoint_stamp = checkpoint, checkpoint_stamp
        self.train_cfg, self.method_cfg, self.epoch, self.device = train_cfg, method_cfg, epoch, device
        self._corpus_path = corpus_path
        self._corpus: Any = None
        self._source: MediaSource | None = None

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

    @classmethod
    def restore(cls, run_dir: Path | str, *, checkpoint: str = "best", device: str = "cpu",
                corpus: Path | str | None = None, log: Callable[[str], None] = print) -> Self:
        """A run's ``best`` (default) or ``last`` weights on ``device``.

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
        path = run.best if checkpoint == "best" else run.last
        stamp = ckpt.stamp(path.stat()) if path.exists() else []  # taken first: a replacement after it shows
        state = ckpt.load(path)
        method_cls = get_method(info["method"])
        note = legacy.upgrade_note(run.root, state["config"]["train"])
        if note:
            log(note)
        pinned = state["config"] | {"train": legacy.upgrade_train_config(state["config"]["train"])}
        train_cfg, method_cfg = resolve_configs(info["method"], method_cls.Config, pinned=pinned)
        encoder, tokenizer = load_text_encoder(run.text_tower, pretrained=False)
        clip = (load_encoder(train_cfg, run.image_tower, pretrained=False, save=False)
                if train_cfg.image_encoder else None)
        method = instantiate(method_cls, train_cfg, method_cfg, encoder=encoder, env=state["env"],
                             image_encoder=clip.encoder if clip else None)
        method.load_state_dict(state["model"])
        distributed.check_device(device, 0, 1, torch.cuda.device_count())
        dev = distributed.pick_device(device)
        return cls(run, method.to(dev), tokenizer, train_cfg, method_cfg, epoch=state["epoch"], device=dev,
                   corpus_path=corpus_path, checkpoint=path, checkpoint_stamp=stamp, clip=clip)
