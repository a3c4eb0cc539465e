"""``ccr features``: CLIP embeddings of every image and video frame, into the feature store.

Rows go to ``features/NAME/`` as float16 ``[T, D]`` arrays (T = 1 for a pooled image, one row per
sampled frame or 2 s clip of a video, or every token with the ``patches`` variant), keyed by
media_id. ``meta.json`` says which model, revision, variant and dimension made them, and a store
never mixes two models: a second model with the same name is refused rather than blended in.
Decoded video durations go to the side table ``media.features`` (``decoded_duration``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.feature_store import store_stem
from ccr.errors import CcrError
from ccr.models import ResolvedModel, resolve
from ccr.stages.checks import at_least
from ccr.stages.device import torch_settings
from ccr.stages.media import Sampling
from ccr.stages.media_input import load_rows, media_input
from ccr.stages.runner import BatchResult, Plan, Stage

VARIANTS = ("pooled", "patches", "clips2s")
CLIP_SECONDS = 2.0
SIDE_TABLE = "media.features"


@dataclass
class FeaturesConfig:
    model: str = option("openai/clip-vit-base-patch32", "CLIP hub id, local path, config alias, or tiny/clip")
    variant: str = option("pooled", "pooled: one vector per image / video frame; patches: every token; clips2s: 2 s "
                                    "clips", choices=("pooled", "patches", "clips2s"))
    frames: int = option(8, "video frames, sampled at the centres of equal segments")
    fps: float | None = option(None, "sample videos at this rate instead of --frames")
    name: str | None = option(None, "feature store name (default: the model's slug, plus -VARIANT unless pooled)")
    modality: str | None = option(None, "only image or only video rows (default: both)", choices=("image", "video"))
    dtype: str = option("auto", "compute dtype: auto = float16 on a GPU, float32 on CPU (stored as float16 either way)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", runtime=True)
    forward_batch: int = option(64, "frames per model call (a batch of videos has many)", runtime=True)
    media_root: str | None = option(None, "where media paths are relative to (default: the manifest's)", runtime=True)
    aliases: dict[str, str] = option(help="model name -> local path (the TOML's [models] table)", factory=dict,
                                     runtime=True, cli=False)


def store_name(model: ResolvedModel, variant: str) -> str:
    slug = store_stem(model.key)
    return slug if variant == "pooled" else f"{slug}-{variant}"


def _sampling(cfg: FeaturesConfig) -> Sampling:
    if cfg.variant == "clips2s":
        return Sampling(clip_seconds=CLIP_SECONDS)
    return Sampling(frames=cfg.frames, fps=cfg.fps)


def _check(cfg: FeaturesConfig) -> None:
    if cfg.variant not in VARIANTS:
        raise CcrError(f"--variant {cfg.variant!r}: use one of {', '.join(VARIANTS)}")
    if cfg.frames < 1:
        raise CcrError("--frames must be at least 1")
    at_least(cfg, forward_batch=1)
    if cfg.fps is not None and cfg.fps <= 0:
        raise CcrError("--fps must be positive")
    if cfg.fps is not None and cfg.variant == "clips2s":
        raise CcrError("--fps does not apply to --variant clips2s (one frame per 2 s clip); drop one of them")


def _meta(model: ResolvedModel, cfg: FeaturesConfig) -> dict[str, Any]:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model.path)
    if config.model_type != "clip":
        raise CcrError(f"{model.id} is a {config.model_type} model; ccr features needs a CLIP model "
                       f"(--model openai/clip-vit-base-patch32 or a local CLIP directory)")
    vision = config.vision_config
    meta: dict[str, Any] = {"model": model.id, "revision": model.revision, "dim": config.projection_dim,
                            "dtype": "float16", "variant": cfg.variant, "normalized": False}
    if cfg.variant == "clips2s":
        meta["clip_seconds"] = CLIP_SECONDS
    else:
        meta.update({"frames": cfg.frames, "fps": cfg.fps})
    if cfg.variant == "patches":
        meta["tokens_per_frame"] = (vision.image_size // vision.patch_size) ** 2 + 1
    return meta


def plan(corpus: Corpus, cfg: FeaturesConfig) -> Plan:
    """Name the store and write its meta here: the driver always plans, Ray actors may be remote."""
    model = resolve(cfg.model, aliases=cfg.aliases)
    _, dtype = torch_settings(cfg.device, cfg.dtype)
    name = cfg.name or store_name(model, cfg.variant)
    meta = _meta(model, cfg)
    corpus.features(name).claim(meta, fix="pick another store name with --set name=NEW_NAME")
    chunks, total = media_input(corpus, cfg.modality)
    return Plan(input_table="media", chunks=chunks, total=total,
                fingerprint_parts={"model": model.provenance(), "dtype": dtype},
                models={"clip": model.provenance(), "features": name, "dim": meta["dim"]},
                id_of=lambda row: row["media_id"])


@dataclass
class _State:
    corpus: Corpus
    model: Any
    processor: Any
    device: str
    dtype: Any
    table: str
    sampling: Sampling
    media_root: Path | None


def setup(corpus: Corpus, cfg: FeaturesConfig, plan_: Plan) -> _State:
    import torch
    from transformers import AutoImageProcessor, CLIPModel

    device, dtype = torch_settings(cfg.device, cfg.dtype)
    path = resolve(cfg.model, aliases=cfg.aliases).path
    model = CLIPModel.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
    return _State(corpus=corpus, model=model, processor=AutoImageProcessor.from_pretrained(path), device=device,
                  dtype=getattr(torch, dtype), table=f"features/{plan_.models['features']}", sampling=_sampling(cfg),
                  media_root=Path(cfg.media_root) if cfg.media_root else None)


def embed(state: _State, images: Sequence[Any], patches: bool, forward_batch: int) -> np.ndarray:
    """Images -> float32 ``[N, tokens, D]`` (tokens = 1 unless ``patches``)."""
    import torch

    model, out = state.model, []
    for start in range(0, len(images), forward_batch):
        pixels = state.processor(images=list(images[start:start + forward_batch]), return_tensors="pt")["pixel_values"]
        pixels = pixels.to(state.device, state.dtype)
        with torch.inference_mode():
            if patches:
                hidden = model.vision_model(pixel_values=pixels).last_hidden_state
                tokens = model.visual_projection(model.vision_model.post_layernorm(hidden))
            else:
                tokens = model.get_image_features(pixel_values=pixels).pooler_output[:, None]
        out.append(tokens.float().cpu().numpy())
    return np.concatenate(out)


def process(batch: Sequence[dict[str, Any]], state: _State, cfg: FeaturesConfig) -> BatchResult:
    loaded, failures = load_rows(batch, state.corpus, state.media_root, state.sampling)
    result = BatchResult(rows={state.table: [], SIDE_TABLE: []}, failures=failures)
    if not loaded:
        return result
    frames = [frame for _, visual in loaded for frame in visual.frames]
    tokens = embed(state, frames, cfg.variant == "patches", cfg.forward_batch)
    start = 0
    for row, visual in loaded:
        n = len(visual.frames)
        item = tokens[start:start + n]
        start += n
        features = item.reshape(-1, item.shape[-1]).astype(np.float16)
        result.rows[state.table].append({"media_id": row["media_id"], "features": features})
        if visual.is_video:
            result.rows[SIDE_TABLE].append({"media_id": row["media_id"], "decoded_duration": visual.duration})
    return result


STAGE = Stage(name="features", version="1", config=FeaturesConfig, plan=plan, setup=setup, process=process,
              help="CLIP features of every image and video frame into features/NAME/", check=_check,
              batch_size=32, needs=frozenset({"media"}), provides={"features": "visual features"},
              smoke={"model": "tiny/clip"}, path_options=("media_root",))
