"""The plug-in interface: what a training method is, and everything the trainer calls on it.

The trainer core (``ccr.train.run.loop``) never asks which method it is running. It asks the
method's task (``ccr.train.tasks``: retrieval or grounding) for the data and the validation, calls
``forward(batch, step)`` (through DDP when distributed), sums the weighted loss terms that come
back, steps the optimizers and calls the hooks. A method is a ``RetrievalMethod`` (validation and
``ccr evaluate`` call ``encode_queries`` / ``encode_gallery`` / ``score``) or a ``GroundingMethod``
(they call ``predict``); ``Method`` is what both share. A new method (NRCCR, CL2CM, DCOT, LECCR,
RIVRL...) is one module in ``ccr/train/model/methods/`` plus one line in ``METHODS``
(``ccr/train/model/methods/__init__.py``).

What a method module defines
----------------------------
1. ``Config``: a dataclass subclassing ``MethodConfig``, one commented default per field (the
   papers' values). ``--set key=value`` reaches it; names must differ from ``TrainConfig``'s. Mark
   fields that shape parameters with ``arch_field`` (resume and evaluation take them from the
   checkpoint).
2. A ``RetrievalMethod`` (or ``GroundingMethod``) subclass that sets ``name`` and ``Config`` and
   implements ``build_losses``. Everything else has a default:

   ``data_keys``      training batch fields beyond ``media`` (see ``ccr.train.data.batching``):
                      ``en``, ``mt``, ``bt``, ``descriptions``, ``slots``; ``needed_keys(cfg)``
                      may narrow them by config (the baseline drops ``mt`` when its weight is 0).
   ``gallery_keys``   retrieval: side information the gallery needs at inference (LECCR:
                      ``descriptions``, or ``slots``); ``needed_gallery_keys(cfg)`` may choose them
                      by config.
   ``proposal``       for a method with no released code (CL2CM, DCOT, RGTR), the section of the
                      reference notes whose proposal ours follows; results mark it (run.json,
                      ``ccr evaluate``, ``--compare``). Empty for reproductions of released code.
   ``build_text_tower`` / ``build_media_tower``  the towers; the visual one is the class the
                      ``video_encoder`` option names (``pool`` or ``rivrl``), for every method.
   ``embed(batch)``   forward outputs: a dict of named embeddings (``v``, ``e``, ``t``, ``b``, ...)
                      plus token states ``tok_v``/``tok_e``/``tok_t``/``tok_b`` and their masks
                      ``mask_*`` (reference/ccr_methods.md §6.2). Add ``cross``, ``slots``... here;
                      ``embed_media(batch)`` is its visual half, for methods whose visual
                      embedding reads more of the batch than the media (LECCR's descriptions).
   ``build_losses()`` a list of ``LossPlugin`` modules; each gets ``(outputs, batch, step)`` and
                      returns named ``LossTerm(value, weight)``; the total is the weighted sum.
   ``check_input(cfg, source, media_ids, image_encoder=...)``  refuses unusable training input in
                      one line before the run directory is written (LECCR: single-token features).
   hooks              ``on_train_start(data)``, ``on_epoch_start(step)``, ``on_step_end(result,
                      batch, step)``, ``on_epoch_end(step, val_metrics)``: curricula (DCOT),
                      teacher refreshes (CL2CM), warm-ups (LECCR) live here, never in the loop.
   ``aux_objectives()`` extra optimizers for sub-modules trained on their own loss (NRCCR's
                      language discriminator): excluded from the main optimizer and from DDP.
   ``encode_queries(batch)`` / ``encode_gallery(batch)`` / ``score(q, g)``  retrieval inference:
                      named embeddings per side, and the full similarity matrix from them (score
                      fusion, e.g. LECCR video's 0.9 global + 0.1 slot, or RIVRL's four spaces).
   ``predict(batch)`` grounding inference: ranked windows and per-clip saliency.

Every method is evaluated under one protocol (native queries by default; translate-test fusion is
``ccr evaluate``'s explicit option for any method, never a method's own default), so a method has no
say in how its results are scored.

Cross-device negatives: losses call ``ccr.train.run.distributed.gather`` on embeddings, group ids and
weights; it is the identity in one process, so a method needs no DDP-specific code.

A minimal method, worked out: ARCHITECTURE.md, "How to add a method".
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import torch
from torch import nn

from ccr.train.config import MethodConfig
from ccr.train.model.towers import TextTower, media_tower_class

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig
    from ccr.train.data.batching import Batch, TrainData
    from ccr.train.data.media import MediaSource

Outputs = dict[str, torch.Tensor]
TEXT_OUTPUTS = {"en": "e", "mt": "t", "bt": "b"}  # batch key -> output name


@dataclass(frozen=True)
class StepInfo:
    """Where training stands, for curricula and warm-ups."""

    epoch: int  # 0-based
    step: int  # optimizer steps already taken (global, across epochs)
    total_steps: int
    steps_per_epoch: int

    @property
    def fraction(self) -> float:
        return self.step / max(self.total_steps, 1)


class LossTerm(NamedTuple):
    value: torch.Tensor  # scalar; a detached value with weight 0 is logged but not optimised
    weight: float = 1.0


class LossPlugin(nn.Module):
    """One loss component; a module so it can own parameters (temperatures, heads)."""

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        raise NotImplementedError


@dataclass
class StepResult:
    terms: dict[str, LossTerm]
    outputs: Outputs

    def total(self) -> torch.Tensor:
        weighted = [t.value * t.weight for t in self.terms.values() if t.weight]
        if not weighted:
            raise ValueError("no loss term has a non-zero weight")
        return functools.reduce(operator.add, weighted)


@dataclass
class AuxObjective:
    """A sub-module with its own optimizer and loss, stepped after every main step.

    ``loss`` gets the step's outputs detached from the main graph. The module must be a
    sub-module of the method (so checkpoints include it); its gradients are averaged across
    processes by hand, since DDP is told to ignore it.
    """

    name: str
    module: nn.Module
    loss: Callable[[Outputs, Batch, StepInfo], torch.Tensor]
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class BuildEnv:
    """What a method may need to know to build itself, besides its own config."""

    train: TrainConfig
    media_dim: int
    text_encoder: nn.Module
    langs: list[str] = field(default_factory=list)
    n_train: int = 0  # training tuples (per-sample state, e.g. confidences); as trained when loaded
    slot_dim: int = 0  # width of the `slots` data key's vectors; 0 when the method does not read them
    image_encoder: nn.Module | None = None  # a CLIP fine-tuned end to end in front of the visual tower


class Method(nn.Module):
    """What every method shares, whatever its task: configs, towers, losses, the training forward, hooks."""

    name: ClassVar[str] = ""
    task: ClassVar[str] = ""  # the ``ccr.train.tasks`` entry that prepares, validates and evaluates its runs
    Config: ClassVar[type] = MethodConfig
    data_keys: ClassVar[frozenset[str]] = frozenset({"en", "mt"})
    proposal: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A method written for the old ``translate_test`` default (a native share) fails at once, never silently."""
        super().__init_subclass__(**kwargs)
        if "translate_test" in vars(cls):
            raise TypeError(f"{cls.__name__}.translate_test: methods no longer pick their evaluation protocol; every "
                            f"method is scored on native queries, translate-test fusion is ccr evaluate "
                            f"--translate-test-weight W (W = the xx->en MT share, 1 - the old value)")

    def __init__(self, cfg: Any, env: BuildEnv):
        super().__init__()
        self.cfg = cfg
        self.train_cfg = env.train
        self.text = self.build_text_tower(env)
        self.media = self.build_media_tower(env)
        self.objectives = nn.ModuleList(self.build_losses())

    @classmethod
    def needed_keys(cls, cfg: Any) -> frozenset[str]:
        return cls.data_keys

    @classmethod
    def check_input(cls, cfg: Any, source: MediaSource, media_ids: Sequence[str], *, image_encoder: bool) -> None:
        """Refuse training data the method cannot learn from, with one line, before the run writes a file."""

    def build_text_tower(self, env: BuildEnv) -> nn.Module:
        return TextTower(env.text_encoder, env.train)

    def build_media_tower(self, env: BuildEnv) -> nn.Module:
        if env.image_encoder is not None:
            from ccr.train.model.image_encoder import build_tower

            return build_tower(env.image_encoder, media_tower_class(env.train), env.train)
        return media_tower_class(env.train)(env.media_dim, env.train)

    def build_losses(self) -> list[LossPlugin]:
        raise NotImplementedError(f"{type(self).__name__} must define build_losses()")

    def embed_media(self, batch: Batch) -> Outputs:
        v = self.media(batch["media"], batch["media_mask"])
        return {"v": v.emb, "tok_v": v.tokens, "mask_v": v.mask}

    def embed(self, batch: Batch) -> Outputs:
        out = self.embed_media(batch)
        for key, short in TEXT_OUTPUTS.items():
            if key in batch:
                x = self.text(batch[key])
                out |= {short: x.emb, f"tok_{short}": x.tokens, f"mask_{short}": x.mask}
        return out

    def forward(self, batch: Batch, step: StepInfo) -> StepResult:
        """The training forward: outputs, then every plug-in's loss terms (names must not clash)."""
        outputs = self.embed(batch)
        terms: dict[str, LossTerm] = {}
        for plugin in self.objectives:
            for name, term in plugin(outputs, batch, step).items():
                if name in terms:
                    raise ValueError(f"two loss plug-ins of {self.name} both return {name!r}")
                terms[name] = term
        return StepResult(terms, outputs)

    # --- hooks ---------------------------------------------------------------------------

    def on_train_start(self, data: TrainData) -> None:
        """Once, before the first step (also on resume)."""

    def on_epoch_start(self, step: StepInfo) -> None:
        """Before every epoch's first batch."""

    def on_step_end(self, result: StepResult, batch: Batch, step: StepInfo) -> None:
        """After the optimizer steps; outputs are still attached to the (freed) graph: detach."""

    def on_epoch_end(self, step: StepInfo, val_metrics: dict[str, dict[str, float]]) -> None:
        """After validation; ``val_metrics`` maps each validation set to its task's metric dict."""

    def aux_objectives(self) -> list[AuxObjective]:
        return []


class RetrievalMethod(Method):
    """A method scored by ranking a gallery for each query: two sets of embeddings and a score matrix."""

    task = "retrieval"
    gallery_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def needed_gallery_keys(cls, cfg: Any) -> frozenset[str]:
        return cls.gallery_keys

    def encode_queries(self, batch: Batch) -> Outputs:
        """``batch``: ``text`` (token batch) and ``lang``; returns named query embeddings."""
        return {"emb": self.text(batch["text"]).emb}

    def encode_gallery(self, batch: Batch) -> Outputs:
        """``batch``: ``media``, ``media_mask``, ``media_ids`` and any ``gallery_keys``."""
        return {"emb": self.media(batch["media"], batch["media_mask"]).emb}

    def score(self, queries: Outputs, gallery: Outputs) -> torch.Tensor:
        """The full ``(n_queries, n_gallery)`` similarity matrix; higher is more similar."""
        return queries["emb"] @ gallery["emb"].T


class GroundingMethod(Method):
    """A method scored by the moments it finds in a video for a query; it has no retrieval embeddings."""

    task = "grounding"
    data_keys = frozenset()

    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``spans`` [B, K, 2] (centre, width; fractions of the video), ranking ``scores`` [B, K], ``saliency`` [B, T]."""
        raise NotImplementedError(f"{type(self).__name__} must define predict()")


def proposal_note(method_cls: type[Method]) -> str | None:
    """The label of results from a method that follows a proposal, not released code; None otherwise."""
    if not method_cls.proposal:
        return None
    return f"(proposal) {method_cls.name} has no released code: ccr follows the proposal in {method_cls.proposal}"
