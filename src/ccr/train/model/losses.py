"""The loss primitives every method shares, each written once (reference/ccr_methods.md §6.2).

Conventions, so that plug-ins compose them freely:

* ``sim`` is a square ``(N, N)`` similarity matrix whose pair i sits at ``[i, i]`` (query i and
  gallery item i come from one training tuple); ``pos`` is the ``(N, N)`` boolean matrix of pairs
  that share a media item (diagonal included). Captions of one media item are never each other's
  negatives; that is how the trainer keeps all captions of an item as positives.
* ``weights`` are per-sample (per pair i) multipliers, e.g. the corpus ``weight`` column or DCOT's
  confidences; ``None`` means 1. They multiply per-sample losses before the reduction.
* Losses return scalars; ``ot_distance`` returns per-sample values so callers can weight them.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def positives(groups: torch.Tensor) -> torch.Tensor:
    """``(N,)`` group ids (media indices) -> ``(N, N)`` same-group mask."""
    return groups[:, None] == groups[None, :]


def _reduce(per_sample: torch.Tensor, weights: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if weights is not None:
        per_sample = per_sample * weights.to(per_sample.dtype)
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


def triplet_hardest(sim: torch.Tensor, pos: torch.Tensor, *, margin: float = 0.2,
                    weights: torch.Tensor | None = None,
                    reduction: Literal["sum", "mean"] = "sum") -> torch.Tensor:
    """VSE++ max-violation triplet loss in both directions (NRCCR: margin 0.2, summed).

    Row i (query i) is pushed above its hardest negative column and column i (gallery item i)
    above its hardest negative row; ``pos`` entries are never negatives.
    """
    diag = sim.diagonal()
    cost_rows = (margin + sim - diag[:, None]).clamp(min=0).masked_fill(pos, 0)
    cost_cols = (margin + sim - diag[None, :]).clamp(min=0).masked_fill(pos, 0)
    per_sample = cost_rows.max(dim=1).values + cost_cols.max(dim=0).values
    return _reduce(per_sample, weights, reduction)


def info_nce(sim: torch.Tensor, pos: torch.Tensor, temperature: torch.Tensor | float, *,
             weights: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE: every same-group entry is a positive (LECCR, ALBEF).

    The target of row i is uniform over its positives, so a caption with two sibling captions in
    the batch is not asked to prefer one; with unique groups this is the usual CLIP loss.
    """
    logits = sim / temperature
    target = pos.to(logits.dtype)
    target = target / target.sum(dim=1, keepdim=True)
    rows = -(target * logits.log_softmax(dim=1)).sum(dim=1)
    cols = -(target * logits.log_softmax(dim=0)).sum(dim=0)
    return _reduce((rows + cols) / 2, weights, "mean")


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """``-sum_j q_ij log softmax(logits)_ij`` averaged over rows; ``target`` rows sum to 1.

    The teacher-to-student term of NRCCR's similarity view, LECCR's softened matching, CL2CM's
    relational distillation and DCOT's soft labels. Detach the target if the teacher must not learn.
    """
    per_sample = -(target * logits.log_softmax(dim=-1)).sum(dim=-1)
    return _reduce(per_sample, weights, "mean")


def kl_divergence(logits: torch.Tensor, target: torch.Tensor, *,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(target || softmax(logits))`` per row, averaged ("batchmean"); zero targets are fine."""
    per_sample = (torch.xlogy(target, target) - target * logits.log_softmax(dim=-1)).sum(dim=-1)
    return _reduce(per_sample, weights, "mean")


def feature_distillation(student: torch.Tensor, teacher: torch.Tensor, *,
                         kind: Literal["smooth_l1", "mse"] = "smooth_l1", beta: float = 4.0,
                         weights: torch.Tensor | None = None) -> torch.Tensor:
    """Regress student embeddings onto teacher ones (NRCCR's feature view: SmoothL1, beta 4)."""
    if kind == "smooth_l1":
        per_element = F.smooth_l1_loss(student, teacher, beta=beta, reduction="none")
    elif kind == "mse":
        per_element = F.mse_loss(student, teacher, reduction="none")
    else:
        raise ValueError(f"kind must be 'smooth_l1' or 'mse', got {kind!r}")
    return _reduce(per_element.flatten(1).mean(dim=1), weights, "mean")


def token_plan(tok_a: torch.Tensor, mask_a: torch.Tensor, tok_b: torch.Tensor, mask_b: torch.Tensor, *,
               eps: float = 0.05, max_iter: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft word alignment of two token sets: the entropic OT plan and the cost it solves.

    Cost ``1 - cos`` between tokens (differentiable), uniform marginals over unmasked tokens, plan
    ``(B, La, Lb)`` from the package's one Sinkhorn without gradient: a label, zero on padding.
    """
    from ccr.ot import cosine_cost, sinkhorn

    cost = cosine_cost(tok_a, tok_b)
    a = mask_a.to(cost.dtype)
    b = mask_b.to(cost.dtype)
    plan = sinkhorn(cost.detach(), eps, a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True),
                    max_iter=max_iter, differentiable=False)
    return plan, cost


def ot_distance(tok_a: torch.Tensor, mask_a: torch.Tensor, tok_b: torch.Tensor, mask_b: torch.Tensor, *,
                eps: float = 0.05, max_iter: int = 50) -> torch.Tensor:
    """Per-sample entropic OT cost ``<plan, cost>`` of ``token_plan`` (CL2CM's word-level alignment).

    By the envelope theorem the gradient of the transport cost is ``<plan, dC>``, so treating
    the plan as a constant is exact at optimum.
    """
    plan, cost = token_plan(tok_a, mask_a, tok_b, mask_b, eps=eps, max_iter=max_iter)
    return (plan * cost).sum(dim=(-2, -1))


class Temperature(nn.Module):
    """A softmax temperature, learnable by default (LECCR, CLIP: init 0.07), kept in a sane range."""

    def __init__(self, init: float = 0.07, *, learnable: bool = True, low: float = 1e-3, high: float = 1.0):
        super().__init__()
        if not low <= init <= high:
            raise ValueError(f"temperature {init} outside [{low}, {high}]")
        self.low, self.high = low, high
        log_t = torch.tensor(math.log(init))
        self.log_t = nn.Parameter(log_t) if learnable else nn.Buffer(log_t)

    def forward(self) -> torch.Tensor:
        return self.log_t.exp().clamp(self.low, self.high)
