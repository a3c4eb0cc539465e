"""The visual towers the ``video_encoder`` option names, and what each asks of the shared options.

Torch-free, so that a config is checked (``--set``, TOML, a recipe's check, a run's load) before
any model is imported; the tower checks itself with the same rule, so each rule is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ccr.errors import CcrError


def _any_widths(media_hidden: int, embed_dim: int) -> None:
    """A tower that takes whatever widths the options give."""


def _rivrl_widths(media_hidden: int, embed_dim: int) -> None:
    if media_hidden % 4 or embed_dim % 2:
        raise CcrError(f"video_encoder=rivrl: media_hidden={media_hidden} must be a multiple of 4 (its GRU and "
                       f"attention take a quarter) and embed_dim={embed_dim} even (two latent spaces); "
                       f"RIVRL: 2048 and 2048")


@dataclass(frozen=True)
class VideoEncoder:
    tower: str  # import path of the tower class, so listing and checking import no torch
    takes_image_encoder: bool  # a CLIP fine-tuned end to end (image_encoder) can feed it tokens
    # (media_hidden, embed_dim) -> None, or one line refusing widths the tower cannot be built with
    check_widths: Callable[[int, int], None] = _any_widths


ENCODERS: dict[str, VideoEncoder] = {
    "pool": VideoEncoder("ccr.train.model.towers:MediaTower", takes_image_encoder=True),
    "rivrl": VideoEncoder("ccr.train.model.video.rivrl:RivrlTower", takes_image_encoder=False, check_widths=_rivrl_widths),
}
