"""``dcot``: Dual-view Curricular Optimal Transport (reference/ccr_methods.md §4).

Machine translation makes some (visual, MT caption) pairs wrong; trained as if they were right,
a model learns the noise. DCOT judges every pair of a batch by optimal transport in two views,
cross-lingual (English caption ↔ MT caption) and cross-modal (visual ↔ MT caption), and trains
the (visual, MT) alignment on those judgements: a pair the transport does not support counts
less. The views' weight follows a curriculum, because they mature at different speeds.

The paper's code is not public and its text gives no formulas, so the reference's proposal (§4.3)
is followed, and the details it leaves open are settled as follows:

* Confidences come ONLINE from the towers being trained, on the batch gathered from every
  process, without gradient (the plan is a label). ``ccr score`` computes the same quantity
  once, from fixed embedders and a fixed view weight, as a prior (``dcot_conf``); both call
  ``ccr.ot.dual_view_confidence`` with the settings of ``ccr.dcot_settings``.
* Cost ``C = λ z(1 - cos(e_i, t_j)) + (1 - λ) z(1 - cos(v_i, t_j))``, both views in one plan,
  each standardised over the batch (``z``: zero mean, unit spread) because the scale of a
  tower's cosines changes with its loss and stage while ``eps`` must mean one sharpness. Entropic
  Sinkhorn (``ccr.ot``, log domain), ``eps`` half a standard deviation (a plan graded enough that
  a half-trained tower's near misses are not all-or-nothing), 50 iterations (a label needs the
  plan's structure, not a converged plan), uniform marginals relaxed by a KL penalty
  (unbalanced OT, ``reg_m`` 1). Balanced OT must transport every row's mass somewhere: when a
  swapped caption's true partner is not in the batch, the orphaned English/visual row and the
  orphaned caption column are left to each other and look like a match. Relaxed, they may
  transport little instead.
* Confidence of tuple i: ``B · Σ_j T_ji`` over the anchors j (English caption and visual item)
  of i's own media item, i.e. the mass i's MT caption receives from its item, capped at 1. With
  one caption per item in the batch this is the reference's ``B · T_ii``; with several, the
  captions of one item are interchangeable and none is penalised for sharing its item's mass.
  It is read off the caption's column, not the item's row: an item whose other caption in the
  batch is right would otherwise vouch for a swapped one.
* λ (``view_weight``) decays from ``view_start`` to ``view_end`` over training progress on a
  half cosine: early on the cross-lingual view is the one to trust (a multilingual text tower
  starts with it); the cross-modal view takes over as the visual alignment matures.
* ``warmup_epochs`` (default 1) train with every confidence at 1: an untrained tower's plan is
  nearly uniform and its confidences say nothing yet (they are still computed and logged).
* ``confidence=weight``: the per-sample (visual, MT) loss is multiplied by the confidence relative
  to the batch mean, capped at 1 (``relative``), and by the corpus ``weight`` when ``use_weights``
  is on. ``confidence=soft``: the (visual, MT) InfoNCE takes the plan, normalised per row and per
  column, as its soft targets instead of the one-hot pairs (needs ``loss=infonce``). The (visual,
  English) term stays one-hot at full weight: English captions are clean.

Every tuple's latest confidence is kept in the ``confidence`` buffer (saved in checkpoints), so
a run can be checked against known noise or write its judgements back to the corpus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch

from ccr.dcot_settings import DCOT_EPS, DCOT_ITERS, DCOT_RELAX
from ccr.errors import CcrError
from ccr.ot import dual_view_confidence
from ccr.train.model.losses import positives, soft_cross_entropy
from ccr.train.model.methods.base import LossPlugin, LossTerm, Outputs, StepInfo
from ccr.train.model.methods.baseline import Baseline, BaselineConfig
from ccr.train.model.objectives import Alignment, Pair
from ccr.train.ranges import COUNT, NON_NEGATIVE, POSITIVE, SHARE, Range
from ccr.train.run.distributed import gather

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig
    from ccr.train.data.batching import Batch
    from ccr.train.model.methods.base import BuildEnv


@dataclass
class DcotConfig(BaselineConfig):
    confidence: Literal["weight", "soft"] = "weight"  # per-sample weights, or OT plan as soft targets (infonce)
    view_start: float = 0.9  # weight of the cross-lingual view at the start of training
    view_end: float = 0.1  # ... and at the end (the rest goes to the cross-modal view)
    warmup_epochs: int = 1  # epochs trained with every confidence at 1
    ot_eps: float = DCOT_EPS  # entropic regularisation, in standard deviations of the batch's costs
    ot_relax: float = DCOT_RELAX  # KL penalty on the marginals (unbalanced OT: an orphan may send less); 0 = balanced
    ot_iters: int = DCOT_ITERS  # Sinkhorn iterations at most

    ranges: ClassVar[dict[str, Range]] = BaselineConfig.ranges | {
        "w_mt": Range(0, low_open=True, why="dcot judges the (visual, MT) pairs"), "view_start": SHARE,
        "view_end": SHARE, "warmup_epochs": NON_NEGATIVE, "ot_eps": POSITIVE, "ot_relax": NON_NEGATIVE,
        "ot_iters": COUNT}

    def validate(self, train: TrainConfig) -> None:
        super().validate(train)
        if self.confidence == "soft" and self.loss != "infonce":
            raise CcrError("dcot: confidence=soft gives InfoNCE soft targets; set loss=infonce too")


def view_weight(progress: float, start: float = 0.9, end: float = 0.1) -> float:
    """The cross-lingual view's share λ of the transport cost at ``progress`` in [0, 1] of training.

    A half cosine from ``start`` to ``end``: it leaves the early cross-lingual trust slowly, moves
    fastest mid-training, and settles on the cross-modal view. ``ccr score`` has no training
    stage and uses one fixed λ instead.
    """
    p = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))


def relative(conf: torch.Tensor) -> torch.Tensor:
    """Per-sample weights from confidences: each over the batch mean, at most 1.

    A confidence's level also depends on the batch size, ``eps`` and how alike the batch's
    items are, so it says little on its own; its place within the batch is the judgement. Pairs at
    or above the batch's typical confidence keep the baseline's weight, the others count in
    proportion; a stage whose plans cannot tell pairs apart weighs them all near 1.
    """
    return (conf / conf.mean().clamp_min(torch.finfo(conf.dtype).tiny)).clamp(max=1.0)


def _local(full: torch.Tensor, n_local: int) -> torch.Tensor:
    """This process's slice of a tensor gathered in rank order (``ccr.train.run.distributed.gather``)."""
    from ccr.train.run.distributed import active

    rank = torch.distributed.get_rank() if active() else 0
    return full[rank * n_local:(rank + 1) * n_local]


class DualViewAlignment(LossPlugin):
    """The baseline's alignment terms with the (visual, MT) pairs judged by dual-view OT."""

    def __init__(self, cfg: DcotConfig, n_train: int):
        super().__init__()
        self.cfg = cfg
        pairs = {"ve": Pair("e", "v", cfg.w_en)}
        if cfg.confidence == "weight":
            pairs["vt"] = Pair("t", "v", cfg.w_mt, weighted=True)
        self.align = Alignment(pairs, kind=cfg.loss, margin=cfg.margin, temperature=cfg.temperature,
                               learn_temperature=cfg.learn_temperature, reduction=cfg.reduction)
        self.confidence = torch.nn.Buffer(torch.ones(n_train))  # latest confidence per training tuple

    def forward(self, outputs: Outputs, batch: Batch, step: StepInfo) -> dict[str, LossTerm]:
        e, v, t = (gather(outputs[k].detach()) for k in ("e", "v", "t"))
        same = positives(gather(batch["media_index"]))
        lam = view_weight(step.fraction, self.cfg.view_start, self.cfg.view_end)
        conf, plan = dual_view_confidence(e, t, v, t, lam, same=same, eps=self.cfg.ot_eps, relax=self.cfg.ot_relax,
                                          max_iter=self.cfg.ot_iters)
        self.confidence[gather(batch["index"])] = conf.to(self.confidence.dtype)
        warm = step.epoch < self.cfg.warmup_epochs
        if self.cfg.confidence == "weight" and not warm:
            w = _local(relative(conf), len(batch["weight"])).to(batch["weight"].dtype)
            batch = batch | {"weight": batch["weight"] * w}
        terms = self.align(outputs, batch, step)
        if self.cfg.confidence == "soft":
            terms["vt"] = LossTerm(self._soft(outputs, batch, same if warm else plan), self.cfg.w_mt)
        terms["conf"] = LossTerm(conf.mean(), 0.0)  # logged, not optimised
        terms["view_weight"] = LossTerm(torch.tensor(lam), 0.0)
        return terms

    def _soft(self, outputs: Outputs, batch: Batch, joint: torch.Tensor) -> torch.Tensor:
        """InfoNCE of (MT, visual) with ``joint`` (rows: items, columns: MT captions) as soft targets."""
        logits = gather(outputs["t"]) @ gather(outputs["v"]).T / self.align.temperature()
        joint = joint.to(logits.dtype)
        to_items = joint.T / joint.T.sum(-1, keepdim=True).clamp_min(torch.finfo(logits.dtype).tiny)
        to_captions = joint / joint.sum(-1, keepdim=True).clamp_min(torch.finfo(logits.dtype).tiny)
        weights = gather(batch["weight"])
        return (soft_cross_entropy(logits, to_items, weights=weights)
                + soft_cross_entropy(logits.T, to_captions, weights=weights)) / 2


class Dcot(Baseline):
    name = "dcot"
    proposal = "reference/ccr_methods.md §4.3"  # no released code
    Config = DcotConfig

    def __init__(self, cfg: DcotConfig, env: BuildEnv):
        self.n_train = env.n_train
        super().__init__(cfg, env)

    def build_losses(self) -> list[LossPlugin]:
        return [DualViewAlignment(self.cfg, self.n_train)]
