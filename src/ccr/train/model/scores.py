"""Transforms of whole similarity matrices that several methods' scores share.

Fusing matrices from different spaces (LECCR's global and slot scores, RIVRL's latent and concept
spaces) only makes sense once each is on one scale; the scaling lives here so no method borrows
it from another.
"""

from __future__ import annotations

import torch


def minmax(x: torch.Tensor) -> torch.Tensor:
    """``x`` scaled to [0, 1] over the whole matrix (a constant matrix -> 0)."""
    low = x.min()
    return (x - low) / (x.max() - low).clamp_min(torch.finfo(x.dtype).tiny)
