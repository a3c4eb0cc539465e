"""DCOT confidences from fixed embedders: the static prior ``ccr score`` writes as ``dcot_conf``.

reference/ccr_methods.md §4.3, settled as ``ccr train --method dcot`` settles it
(``ccr.train.methods.dcot``), with two differences that come from using fixed, separate encoders:

* The two views embed the MT caption with different encoders (a multilingual sentence embedder
  for English ↔ MT, a multilingual CLIP text encoder for visual ↔ MT), so each view has its own
  cost matrix: ``C = λ C_xl + (1 - λ) C_xm`` with ``C_view = 1 - cos``.
* Each view's cost is standardised over its group (zero mean, unit deviation) before mixing.
  Fixed encoders put their cosines in ranges of very different width (a CLIP image-text cosine
  moves in [0.2, 0.35], a sentence embedder's in [0, 1]; tiny random encoders in [0.9, 1]), so a
  raw mix would hand the decision to whichever view is wider and no single ``eps`` would fit
  every encoder. Standardised, ``eps`` is in units of a group's spread and λ means what it says.
  The trainer's current ``dual_view_confidence`` standardises the same way.

λ is fixed here (``--set view_weight=``); the curriculum that moves it over training is
``ccr.train.methods.dcot.view_weight``. Groups are random sets of about B pairs of one language,
chosen by a seeded hash of the row ids (``make_groups``), so a pair's confidence does not depend
on batch size, shard count or how often the stage was interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ccr.filter.common import seeded_order

if TYPE_CHECKING:
    import torch


def make_groups(ids: Sequence[str], size: int, seed: int) -> list[list[str]]:
    """Split ``ids`` into ``round(n / size)`` random groups whose sizes differ by at most one.

    A pure function of the set of ids and the seed: each group is a run of the seeded order, so
    the same corpus always gives the same groups, wherever and however often they are computed.
    """
    order = seeded_order(ids, seed)
    n = len(order)
    count = max(1, round(n / size)) if n else 0
    return [order[g * n // count:(g + 1) * n // count] for g in range(count)]


def group_confidence(en: torch.Tensor, mt_xl: torch.Tensor, visual: torch.Tensor, mt_xm: torch.Tensor,
                     same: torch.Tensor, *, view_weight: float, eps: float, max_iter: int) -> torch.Tensor:
    """Confidence ``(n,)`` in [0, 1] of each of a group's n claimed pairs.

    ``en``/``mt_xl``: English and MT captions in the cross-lingual space; ``visual``/``mt_xm``:
    media features and MT captions in the CLIP space; row i of each is pair i. ``same`` ``(n, n)``
    marks pairs of one media item, whose MT captions are interchangeable: the confidence of pair i
    is the share of row i's transport mass that goes to MT captions of its own media item (with one
    caption per item, ``n * T_ii``, the reference's formula). Rows of the plan are the pairs'
    English caption and media item, columns their MT captions; marginals are uniform.
    """
    import torch

    from ccr.ot import cosine_cost, dual_view_plan

    with torch.no_grad():
        plan = dual_view_plan(cosine_cost(en.float(), mt_xl.float()), cosine_cost(visual.float(), mt_xm.float()),
                              view_weight, eps, max_iter=max_iter)
        mass = plan.sum(-1).clamp_min(torch.finfo(plan.dtype).tiny)
        return ((plan * same).sum(-1) / mass).clamp(0.0, 1.0)
