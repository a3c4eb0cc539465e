"""``models = "random"``: the options that swap ccr.testing's random stand-ins into a step.

Corpus stages say theirs in their ``Stage`` entry (``smoke``); training is not a corpus stage, so
its stand-ins and the small sizes they need are said here, once.
"""

from __future__ import annotations

from typing import Any

TRAIN_SMOKE: dict[str, Any] = {"text_tower": "tiny/bert", "epochs": 1, "batch_size": 8, "embed_dim": 32,
                               "media_hidden": 32, "text_frozen_layers": 0, "threads": 1, "progress": False}
CLIP_SMOKE = {"image_encoder": "tiny/clip", "image_size": 0}  # a train step that fine-tunes a CLIP: the tiny one


def smoke_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """What ``models = "random"`` sets on a step of ``kind`` with these ``options``."""
    if kind == "train":
        return TRAIN_SMOKE | (CLIP_SMOKE if options.get("image_encoder") else {})
    from ccr.stages import table as stages

    return dict(stages.get(kind).smoke) if kind in stages.names() else {}
