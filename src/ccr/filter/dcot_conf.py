"""The groups behind ``ccr score``'s ``dcot_conf``: DCOT's confidence as a static prior.

reference/ccr_methods.md §4.3. The confidence is ``ccr.ot.dual_view_confidence``, the function
``ccr train --method dcot`` reads its online confidences from, with the same transport settings
(``ccr.dcot_settings``: a relaxed plan, so an isolated swap is as visible as a batch of them).
What differs is only where the inputs come from:

* Fixed encoders, one per view: a multilingual sentence embedder compares English and MT
  (cost ``1 - cos(en_i, mt_j)``), a multilingual CLIP text encoder puts the MT caption beside the
  media's CLIP features (``1 - cos(v_i, mt_j)``). Each view's cost is standardised over its
  group before mixing: fixed encoders put their cosines in ranges of very different width (a
  CLIP image-text cosine moves in [0.2, 0.35], a sentence embedder's in [0, 1]), so a raw mix
  would hand the decision to the wider view and no single ``eps`` would fit every encoder.
* A fixed view weight λ (``--set view_weight=``); the curriculum that moves it over training is
  ``ccr.train.model.methods.dcot.view_weight``.
* Random groups of about B pairs of one language instead of training batches, chosen by a seeded
  hash of the row ids (``make_groups``), so a pair's confidence does not depend on batch size,
  shard count or how often the stage was interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence

from ccr.filter.common import seeded_order


def make_groups(ids: Sequence[str], size: int, seed: int) -> list[list[str]]:
    """Split ``ids`` into ``round(n / size)`` random groups whose sizes differ by at most one.

    A pure function of the set of ids and the seed: each group is a run of the seeded order, so
    the same corpus always gives the same groups, wherever and however often they are computed.
    """
    order = seeded_order(ids, seed)
    n = len(order)
    count = max(1, round(n / size)) if n else 0
    return [order[g * n // count:(g + 1) * n // count] for g in range(count)]
