"""Loss plug-ins several methods share, built on the primitives of ``ccr.train.model.losses``.

``Alignment`` is the base objective of every method (reference/ccr_methods.md §6.1): align pairs
of embeddings of one training tuple, visual-English, visual-MT, English-MT, English-back-
translation, with the hardest-negative triplet (NRCCR) or multi-positive InfoNCE (LECCR). Each
pair becomes one named loss term; NRCCR, LECCR, CL2CM and DCOT reuse it for their base terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from ccr.train.model.losses import Temperature, info_nce, positives, triplet_hardest
from ccr.train.model.methods.base import LossPlugin, LossTerm, Outputs, StepInfo
from ccr.train.run.distributed import gather

if TYPE_CHECKING:
    from ccr.train.data.batching import Batch


@dataclass(frozen=True)
class Pair:
    """Align output ``a`` (rows: queries) with output ``b`` (columns) of the same tuples."""

    a: str
    b: str
    weight: float = 1.0
    weighted: bool = False  # multiply per-sample losses by the batch's corpus weights


class Alignment(LossPlugin):
    """Contrastive alignment of named output pairs, with negatives gathered from every process."""

    def __init__(self, pairs: dict[str, Pair], *, kind: Literal["triplet", "infonce"] = "triplet",
                 margin: float = 0.2, temperature: float = 0.07, learn_temperature: bool = True,
                 reduction: Literal["sum", "mean"] = "sum"):
        super().__init__()
        if kind not in ("triplet", "infonce"):
            raise ValueError(f"kind must be 'triplet' or 'infonce', got {kind!r}")
        self.pairs, self.kind, self.margin, self.reduction = pairs, kind, margin, reduction
        self.temperature = Temperature(temperature, learnable=learn_temperature) if kind == "infonce" else None

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        pos = positives(gather(batch["media_index"]))
        weights = gather(batch["weight"]) if any(p.weighted for p in self.pairs.values()) else None
        cache: dict[str, torch.Tensor] = {}

        def full(name: str) -> torch.Tensor:
            if name not in cache:
                cache[name] = gather(outputs[name])
            return cache[name]

        terms = {}
        for name, pair in self.pairs.items():
            sim = full(pair.a) @ full(pair.b).T
            w = weights if pair.weighted else None
            if self.temperature is None:
                value = triplet_hardest(sim, pos, margin=self.margin, weights=w, reduction=self.reduction)
            else:
                value = info_nce(sim, pos, self.temperature(), weights=w)
            terms[name] = LossTerm(value, pair.weight)
        return terms
