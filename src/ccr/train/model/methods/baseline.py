"""``baseline``: two towers aligned on (visual, English) and (visual, MT caption).

The shared core of all four CCR methods (reference/ccr_methods.md §6.1) with nothing on top:
NRCCR without its teacher, discriminator and back-translation terms, or LECCR without slots and
softened matching. Defaults follow NRCCR (hardest-negative triplet, margin 0.2, summed; the MT
term weighted 0.6); ``--set loss=infonce`` gives LECCR's multi-positive InfoNCE with a learnable
temperature. Corpus weights multiply the per-sample (visual, MT) terms, the pairs a filter judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ccr.train.config import MethodConfig
from ccr.train.model.methods.base import LossPlugin, RetrievalMethod
from ccr.train.model.objectives import Alignment, Pair
from ccr.train.ranges import NON_NEGATIVE, POSITIVE, Range


@dataclass
class BaselineConfig(MethodConfig):
    loss: Literal["triplet", "infonce"] = "triplet"  # NRCCR: triplet; LECCR: infonce
    margin: float = 0.2  # triplet margin (NRCCR, RIVRL: 0.2)
    reduction: Literal["sum", "mean"] = "sum"  # triplet reduction over the batch (NRCCR: sum)
    temperature: float = 0.07  # InfoNCE initial temperature (LECCR: 0.07)
    learn_temperature: bool = True  # InfoNCE temperature is a parameter (LECCR: yes)
    w_en: float = 1.0  # weight of align(visual, English)
    w_mt: float = 0.6  # weight of align(visual, MT caption) (NRCCR tri_alpha: 0.6); 0 = English only

    ranges: ClassVar[dict[str, Range]] = {"margin": NON_NEGATIVE, "temperature": POSITIVE, "w_en": NON_NEGATIVE,
                                          "w_mt": NON_NEGATIVE}
    loss_weights: ClassVar[tuple[str, ...]] = ("w_en", "w_mt")


class Baseline(RetrievalMethod):
    name = "baseline"
    Config = BaselineConfig
    data_keys = frozenset({"en", "mt"})

    @classmethod
    def needed_keys(cls, cfg: BaselineConfig) -> frozenset[str]:
        return cls.data_keys if cfg.w_mt > 0 else frozenset({"en"})

    def build_losses(self) -> list[LossPlugin]:
        pairs = {"ve": Pair("e", "v", self.cfg.w_en)}
        if self.cfg.w_mt > 0:
            pairs["vt"] = Pair("t", "v", self.cfg.w_mt, weighted=True)
        return [Alignment(pairs, kind=self.cfg.loss, margin=self.cfg.margin, temperature=self.cfg.temperature,
                          learn_temperature=self.cfg.learn_temperature, reduction=self.cfg.reduction)]
