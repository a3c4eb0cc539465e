"""RGTR's set loss: Hungarian matching, then span, class, IoU-aware and saliency terms.

Matching (scipy's ``linear_sum_assignment``, per sample) uses the family's costs (reference/
video_methods.md §2.3): ``cost_l1`` x L1 of (centre, width) + ``cost_giou`` x -gIoU + ``cost_class``
x -p(foreground); plus ``cost_region`` x (1 - IoU of the query's static anchor with the moment),
which keeps a moment with the query whose region it lies in (§2.4 proposal). Every decoder layer
is matched and scored (auxiliary losses); the terms are summed over layers.

Losses: L1 and 1 - gIoU on matched pairs; 2-way cross-entropy with background weight ``bg_weight``,
averaged over every query of the batch as the family averages it (``class_loss``);
the IoU head regresses, for every query, the IoU of its own (detached) span with its best
ground-truth moment (BCE), so ranking can use localisation quality; saliency is Moment-DETR's
margin hinge over every pair of clips whose labels differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ccr.train.model.grounding.spans import cw_to_se, pairwise_iou_giou
from ccr.train.model.methods.base import LossPlugin, LossTerm

if TYPE_CHECKING:
    from ccr.train.model.methods.base import StepInfo

BIG = 1e6  # cost of a padded ground-truth slot


def hungarian(cost: torch.Tensor, gt_mask: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sample, (query indices, ground-truth indices) of the minimum-cost assignment."""
    from scipy.optimize import linear_sum_assignment

    cost = cost.detach().float().cpu().numpy()
    counts = gt_mask.sum(1).cpu().numpy()
    return [linear_sum_assignment(cost[b, :, :int(counts[b])]) for b in range(len(cost))]


class SetCriterion(LossPlugin):
    def __init__(self, cfg: Any):
        super().__init__()
        self.cfg = cfg

    def match(self, spans: torch.Tensor, logits: torch.Tensor, gt: torch.Tensor, gt_mask: torch.Tensor,
              static: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
        cfg = self.cfg
        fg = logits.softmax(-1)[..., 0]
        gt_se = cw_to_se(gt)
        _, giou = pairwise_iou_giou(cw_to_se(spans), gt_se)
        region, _ = pairwise_iou_giou(cw_to_se(static)[None].expand(len(gt), -1, -1), gt_se)
        cost = (cfg.cost_l1 * torch.cdist(spans, gt, p=1) - cfg.cost_giou * giou - cfg.cost_class * fg[..., None]
                + cfg.cost_region * (1 - region))
        return hungarian(cost.masked_fill(~gt_mask[:, None, :], BIG), gt_mask)

    def layer_losses(self, spans: torch.Tensor, logits: torch.Tensor, iou_logit: torch.Tensor, gt: torch.Tensor,
                     gt_mask: torch.Tensor, static: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        matches = self.match(spans, logits, gt, gt_mask, static)
        b_idx = torch.from_numpy(np.concatenate([np.full(len(q), b) for b, (q, _) in enumerate(matches)])).long()
        q_idx = torch.from_numpy(np.concatenate([q for q, _ in matches])).long()
        g_idx = torch.from_numpy(np.concatenate([g for _, g in matches])).long()
        b_idx, q_idx, g_idx = (x.to(spans.device) for x in (b_idx, q_idx, g_idx))
        pred, target = spans[b_idx, q_idx], gt[b_idx, g_idx]
        _, giou = pairwise_iou_giou(cw_to_se(pred)[:, None], cw_to_se(target)[:, None])
        labels = torch.ones(logits.shape[:2], dtype=torch.long, device=logits.device)
        labels[b_idx, q_idx] = 0
        iou, _ = pairwise_iou_giou(cw_to_se(spans.detach()), cw_to_se(gt))
        best = iou.masked_fill(~gt_mask[:, None, :], 0.0).amax(-1)
        return {
            "span_l1": F.l1_loss(pred, target),
            "span_giou": (1 - giou.squeeze(-1).squeeze(-1)).mean(),
            "class": class_loss(logits, labels, cfg.bg_weight),
            "iou": F.binary_cross_entropy_with_logits(iou_logit, best),
        }

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any], step: StepInfo) -> dict[str, LossTerm]:
        cfg = self.cfg
        gt, gt_mask = batch["spans"], batch["span_mask"]
        layers = range(len(outputs["spans"])) if cfg.aux_loss else [len(outputs["spans"]) - 1]
        sums: dict[str, torch.Tensor] = {}
        for i in layers:
            parts = self.layer_losses(outputs["spans"][i], outputs["logits"][i], outputs["iou"][i], gt, gt_mask,
                                      outputs["static_anchors"])
            for name, value in parts.items():
                sums[name] = sums[name] + value if name in sums else value
        weights = {"span_l1": cfg.l1_weight, "span_giou": cfg.giou_weight, "class": cfg.class_weight,
                   "iou": cfg.iou_weight}
        terms = {name: LossTerm(value, weights[name]) for name, value in sums.items()}
        terms["saliency"] = LossTerm(saliency_hinge(outputs["saliency"], batch["saliency"], batch["video_mask"],
                                                    cfg.saliency_margin), cfg.saliency_weight)
        return terms


def class_loss(logits: torch.Tensor, labels: torch.Tensor, bg_weight: float) -> torch.Tensor:
    """Foreground (0) / background (1) cross-entropy of ``logits [B, Q, 2]``, background terms
    weighted by ``bg_weight``, summed and divided by the number of queries ``B * Q``.

    The Moment-DETR family averages the weighted per-query terms over the queries.
    ``F.cross_entropy(weight=...)`` divides by the sum of the weights instead: with one moment
    among ten queries and a background weight of 0.1 that is 1.9, and the term 10 / 1.9 = 5.3
    times the family's, which unbalances it against the span and saliency terms.
    """
    weight = torch.tensor([1.0, bg_weight], device=logits.device, dtype=logits.dtype)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), weight=weight, reduction="none").mean()


def saliency_hinge(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of ``relu(margin - (s_i - s_j))`` over clip pairs of one video with label_i > label_j."""
    better = (labels[:, :, None] > labels[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    gaps = F.relu(margin - (scores[:, :, None] - scores[:, None, :]))
    n = better.sum()
    return (gaps * better).sum() / n.clamp(min=1)
