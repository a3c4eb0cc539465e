"""The features ``ccr features`` would have stored for a file that is not in the corpus.

Searching by a new image (``ccr search --image``) needs the query in the space of the stored
gallery: the same CLIP at the same revision, the same variant and frame sampling, and the store's
float16 rounding. All of that is in the store's ``meta.json``; this rebuilds it from there, through
the model table's resolver, and refuses when the model now resolves to other weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ccr.errors import CcrError
from ccr.models import resolve
from ccr.stages.media import MediaError, Sampling
from ccr.vision.features import CLIP_SECONDS, VARIANTS, Clip, embed, load_clip
from ccr.vision.pixels import Prepare


class Extractor:
    """A feature store's CLIP and preprocessing, loaded once for any number of files."""

    def __init__(self, name: str, meta: dict[str, Any], *, device: str = "cpu"):
        from transformers import AutoImageProcessor

        if meta.get("variant") not in VARIANTS or not meta.get("revision"):
            raise CcrError(f"features/{name} were not made by ccr features (model {meta.get('model')}), so a new "
                           f"image cannot be put in their space; search by text or --media-id instead")
        try:
            model = resolve(meta["model"], revision=meta["revision"])
        except CcrError:
            raise CcrError(f"features/{name} need their CLIP {meta['model']} (revision {meta['revision']}) to embed "
                           f"a query image, and it cannot be loaded here; download it once with `hf download "
                           f"{meta['model']} --revision {meta['revision']}` where the hub can be reached") from None
        if model.revision != meta["revision"]:
            raise CcrError(f"features/{name} were made by {meta['model']} at revision {meta['revision']}, which now "
                           f"resolves to {model.revision}: a query image would not match them; point "
                           f"{meta['model']} at the weights that made them")
        self.meta, self.variant = meta, meta["variant"]
        self.clip: Clip = load_clip(model.path, device, "float32")
        sampling = (Sampling(clip_seconds=meta.get("clip_seconds", CLIP_SECONDS)) if self.variant == "clips2s"
                    else Sampling(frames=meta.get("frames") or 8, fps=meta.get("fps")))
        self.prepare = Prepare(processor=AutoImageProcessor.from_pretrained(model.path), sampling=sampling,
                               dtype="float32")

    def __call__(self, path: Path, modality: str = "image") -> np.ndarray:
        """``[T, D]`` float32, rounded through the store's dtype as the stored rows were."""
        try:
            prepared = self.prepare(path, modality)
        except MediaError as e:
            raise CcrError(str(e)) from None
        tokens = embed(self.clip, [prepared.pixels], self.variant == "patches", forward_batch=64)
        stored = np.dtype(self.meta.get("dtype", "float16"))
        return tokens.reshape(-1, tokens.shape[-1]).astype(stored).astype(np.float32)
