"""Fine-tuning CLIP's vision encoder end to end inside the visual tower (LECCR's image setting).

Stored features freeze the visual encoder; LECCR instead trains CLIP ViT-B/32 with the rest of the
model. With ``image_encoder`` set (a CLIP: the ``clip`` role, a hub id, ``tiny/clip`` or a path),
the visual input is the media files themselves: ``ClipPixelSource`` reads each image (or
``PIXEL_FRAMES`` frames of a video) and applies the CLIP's own preprocessing at ``image_size``,
and ``ImageEncoderTower`` runs the vision transformer in front of the usual tower. Every token
(CLS and patches) of every frame goes through CLIP's final LayerNorm and projection, as LECCR
feeds its slot interaction, so the tower sees ``frames x tokens`` vectors. A side larger than the
CLIP's own interpolates the position embeddings (LECCR: 384, i.e. 12 x 12 patches + CLS = 145).

Training images are augmented as LECCR does (``image_augment``): a random crop of 50-100% of the
area at an aspect ratio of 3:4 to 4:3, resized to the input side, flipped half the time. The draws
come from torch's generator, which the loop seeds per batch (``batching.EpochCollate``), so runs
repeat under a seed and resume exactly; validation and ``ccr evaluate`` see the plain preprocessing.

The run directory keeps the vision config and the preprocessor (``image_tower/``), so a trained
run loads offline; the weights live in the checkpoints with everything else.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ccr.errors import CcrError
from ccr.models import quiet_loading, resolve_role
from ccr.train.data.media import (
    MediaSource,
    PixelSource,
    open_source,
    pixel_frames,
)

if TYPE_CHECKING:
    from ccr.corpus.corpus import Corpus
    from ccr.train.config import TrainConfig


class ClipEncoder(nn.Module):
    """Flattened preprocessed frames ``[B, T, 3*S*S]`` -> projected tokens ``[B, T*N, D]`` and their mask."""

    def __init__(self, model: nn.Module, image_size: int):
        super().__init__()
        self.model = model
        config = model.config
        self.image_size = image_size
        self.interpolate = image_size != config.image_size
        self.tokens_per_frame = (image_size // config.patch_size) ** 2 + 1
        self.out_dim = config.projection_dim

    def forward(self, pixels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = pixels.shape
        frames = pixels[mask].view(-1, 3, self.image_size, self.image_size)  # real frames only
        hidden = self.model.vision_model(pixel_values=frames, interpolate_pos_encoding=self.interpolate)
        tokens = self.model.visual_projection(self.model.vision_model.post_layernorm(hidden.last_hidden_state))
        out = tokens.new_zeros(b, t, self.tokens_per_frame, self.out_dim)
        out[mask] = tokens
        return out.flatten(1, 2), mask.repeat_interleave(self.tokens_per_frame, dim=1)


class ImageEncoderTower(nn.Module):
    """The CLIP encoder, then any visual tower, called exactly like that tower."""

    def __init__(self, encoder: ClipEncoder, tower: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.tower = tower

    def forward(self, features: torch.Tensor, mask: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        tokens, token_mask = self.encoder(features, mask)
        return self.tower(tokens, token_mask, *args, **kwargs)


def build_tower(encoder: ClipEncoder, tower_cls: Any, cfg: TrainConfig) -> ImageEncoderTower:
    """``tower_cls`` over the encoder's tokens: its sequence is ``max_frames`` frames of tokens long."""
    seq_cfg = dataclasses.replace(cfg, max_frames=cfg.max_frames * encoder.tokens_per_frame)
    return ImageEncoderTower(encoder, tower_cls(encoder.out_dim, seq_cfg))


CROP_SCALE = (0.5, 1.0)  # LECCR's RandomResizedCrop: share of the image's area
CROP_RATIO = (3 / 4, 4 / 3)  # and aspect ratio (torchvision's default)


def random_resized_crop(image: Any, side: int, generator: torch.Generator | None = None) -> Any:
    """A random crop (``CROP_SCALE`` of the area, ``CROP_RATIO`` aspect) resized to ``side``, flipped half the time."""
    from PIL import Image

    w, h = image.size
    u = torch.rand(4, generator=generator).tolist()
    for attempt in range(10):  # torchvision's rule: retry a crop that does not fit, then take the whole image
        area = w * h * (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * u[0])
        ratio = math.exp(math.log(CROP_RATIO[0]) + (math.log(CROP_RATIO[1]) - math.log(CROP_RATIO[0])) * u[1])
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            break
        u[:2] = torch.rand(2, generator=generator).tolist()
    else:
        cw, ch = w, h
    left, top = round((w - cw) * u[2]), round((h - ch) * u[3])
    crop = image.crop((left, top, left + cw, top + ch)).resize((side, side), Image.BICUBIC)
    return crop.transpose(Image.FLIP_LEFT_RIGHT) if torch.rand(1, generator=generator).item() < 0.5 else crop


class ClipPixelSource(PixelSource):
    """The media files as the CLIP's preprocessor prepares them, one flattened row per frame;
    ``augment`` crops and flips each read at random first (training only)."""

    def __init__(self, corpus: Corpus, processor: Any, image_size: int, media_root: Path | None = None, *,
                 augment: bool = False):
        super().__init__(corpus, media_root)
        self.processor, self.image_size, self.augment = processor, image_size, augment
        self.name = f"clip-pixels-{image_size}"
        self.dim = 3 * image_size * image_size

    def augmented(self) -> ClipPixelSource:
        """The same files (and media table, read once), cropped and flipped at random on each read."""
        twin = copy.copy(self)
        twin.augment = True
        return twin

    def get(self, media_id: str) -> np.ndarray:
        return self.read(self._path(media_id), self.rows[media_id][1])

    def read(self, path: Path | None, modality: str) -> np.ndarray:
        frames = pixel_frames(path, modality, "image_encoder")
        side = self.image_size
        frames = [random_resized_crop(f, side) for f in frames] if self.augment else frames
        pixels = self.processor(images=frames, size={"shortest_edge": side},
                                crop_size={"height": side, "width": side}, return_tensors="np")["pixel_values"]
        return np.asarray(pixels, dtype=np.float32).reshape(len(pixels), -1)


def load_clip_vision(path: Path, *, pretrained: bool) -> tuple[nn.Module, Any]:
    """(vision model with projection, image processor) from a CLIP directory or a run's ``image_tower/``."""
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )
    from transformers.utils import logging as hf_logging

    kind = AutoConfig.from_pretrained(path).model_type
    if kind not in ("clip", "clip_vision_model"):
        raise CcrError(f"image_encoder {path}: a {kind} model, not a CLIP model; pass a CLIP id, tiny/clip or path")
    config = CLIPVisionConfig.from_pretrained(path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a full CLIP checkpoint lists every text weight it does not load
    try:
        with quiet_loading():
            model = (CLIPVisionModelWithProjection.from_pretrained(path) if pretrained
                     else CLIPVisionModelWithProjection(config))
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, AutoImageProcessor.from_pretrained(path)


@dataclass
class ClipInput:
    encoder: ClipEncoder
    processor: Any
    provenance: dict[str, str]  # id and revision of the CLIP a fresh run started from; empty when rebuilt


def load_encoder(cfg: TrainConfig, run_tower_dir: Path, *, pretrained: bool, save: bool) -> ClipInput:
    """The configured CLIP as a trainable encoder, with its processor and provenance.

    A fresh run reads the model named by ``image_encoder`` and keeps its config and processor in
    ``run_tower_dir`` (``save``); a resumed or loaded run rebuilds from there, weights to come.
    """
    if pretrained:
        resolved = resolve_role(cfg.image_encoder, cfg.aliases, option="--set image_encoder=")
        model, processor = load_clip_vision(resolved.path, pretrained=True)
        provenance = resolved.provenance()
    else:
        model, processor = load_clip_vision(run_tower_dir, pretrained=False)
        provenance = {}
    if save:
        model.config.save_pretrained(run_tower_dir)
        processor.save_pretrained(run_tower_dir)
    return ClipInput(ClipEncoder(model, cfg.image_size or model.config.image_size), processor, provenance)


def visual_source(corpus: Corpus, visual: str, clip: ClipInput | None) -> MediaSource:
    """What the visual tower reads: the CLIP-preprocessed files, or the stored input ``visual`` names."""
    if clip is None:
        return open_source(corpus, visual)
    return ClipPixelSource(corpus, clip.processor, clip.encoder.image_size)
