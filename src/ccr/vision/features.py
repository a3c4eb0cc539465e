"""``ccr features``: CLIP embeddings of every image and video frame, into the feature store.

Rows go to ``features/NAME/`` as float16 ``[T, D]`` arrays (T = 1 for a pooled image, one row per
sampled frame or 2 s clip of a video, or every token with the ``patches`` variant), keyed by
media_id. ``meta.json`` says which model, revision, variant and dimension made them, and a store
never mixes two models: a second model with the same name is refused rather than blended in.
Decoded video durations go to the side table ``media.features`` (``decoded_duration``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.feature_store import store_stem
from ccr.errors import CcrError
from ccr.models import ResolvedModel, quiet_loading, resolve
from ccr.stages.checks import at_least
from ccr.stages.device import torch_settings
from ccr.stages.media import Sampling
from ccr.stages.media_input import MediaReader, media_input, prefetch
from ccr.stages.media_pool import resolve_workers
from ccr.stages.runner import BatchResult, Plan, Stage
from ccr.vision.gpu_jpeg import DECODERS, GpuJpeg, resolve_decoder
from ccr.vision.pixels import Prepare, Prepared, wire_dtype

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
    decode: str = option("cpu", "where JPEGs are decoded: cpu (worker processes), gpu (nvJPEG through torchvision, "
                                "on a CUDA device), auto = gpu where torchvision and CUDA are there, else cpu",
                         choices=DECODERS, runtime=True)  # the fingerprint records the decoder plan() resolves
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", runtime=True)
    forward_batch: int = option(64, "frames per model call (a batch of videos has many)", runtime=True)
    workers: int | None = option(None, "processes that decode and preprocess media one batch ahead of the model "
                                       "(default: the machine's cores, at most 16; 0 = in the main process)",
                                 runtime=True)
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
    resolve_workers(cfg.workers)
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
    device, dtype = torch_settings(cfg.device, cfg.dtype)
    decoder = resolve_decoder(cfg.decode, device)
    name = cfg.name or store_name(model, cfg.variant)
    meta = _meta(model, cfg)
    corpus.features(name).claim(meta, fix="pick another store name with --set name=NEW_NAME")
    chunks, total = media_input(corpus, cfg.modality)
    parts = {"model": model.provenance(), "dtype": dtype}
    if decoder == "gpu":  # nvJPEG's pixels differ from PIL's; a CPU-decoded run keeps the fingerprint it always had
        parts["decode"] = decoder
    return Plan(input_table="media", chunks=chunks, total=total, fingerprint_parts=parts,
                models={"clip": model.provenance(), "features": name, "dim": meta["dim"], "decode": decoder},
                id_of=lambda row: row["media_id"])


@dataclass
class Clip:
    """A CLIP ready to embed preprocessed pixels: the stage's model, and the one search loads for a query image."""

    model: Any
    device: str
    dtype: Any  # the torch dtype it computes in


def load_clip(path: Path, device: str, dtype: str) -> Clip:
    import torch
    from transformers import CLIPModel

    with quiet_loading():
        model = CLIPModel.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
    return Clip(model=model, device=device, dtype=getattr(torch, dtype))


@dataclass
class _State(Clip):
    table: str
    reader: MediaReader  # decodes and preprocesses rows in worker processes, a batch ahead
    gpu: GpuJpeg | None  # decodes the JPEGs the reader left encoded (--decode gpu)


def setup(corpus: Corpus, cfg: FeaturesConfig, plan_: Plan) -> _State:
    from transformers import AutoImageProcessor

    device, dtype = torch_settings(cfg.device, cfg.dtype)
    path = resolve(cfg.model, aliases=cfg.aliases).path
    clip = load_clip(path, device, dtype)
    job = Prepare(processor=AutoImageProcessor.from_pretrained(path), sampling=_sampling(cfg), dtype=wire_dtype(dtype))
    gpu = None
    if plan_.models["decode"] == "gpu":
        gpu = GpuJpeg(AutoImageProcessor.from_pretrained(path, backend="torchvision"), device, on_cpu=job)
        job = replace(job, keep_jpeg=True)
    return _State(model=clip.model, device=device, dtype=clip.dtype, table=f"features/{plan_.models['features']}",
                  reader=MediaReader(corpus, cfg.media_root, job, cfg.workers), gpu=gpu)


def _on_device(state: Clip, pixels: Sequence[Any]) -> Any:
    """Rows' ``[frames, 3, H, W]`` pixels as one tensor on the model's device: one host-to-device copy
    for the arrays from the workers, none for what nvJPEG decoded there."""
    import torch

    if all(isinstance(p, np.ndarray) for p in pixels):
        return torch.from_numpy(np.concatenate(pixels)).to(state.device)
    return torch.cat([torch.as_tensor(p).to(state.device, state.dtype) for p in pixels])


def embed(state: Clip, pixels: Sequence[Any], patches: bool, forward_batch: int) -> np.ndarray:
    """Preprocessed rows ``[frames, 3, H, W]`` -> float32 ``[all frames, tokens, D]`` (tokens = 1 unless ``patches``)."""
    import torch

    model, out, frames = state.model, [], _on_device(state, pixels)
    for start in range(0, len(frames), forward_batch):
        pixels = frames[start:start + forward_batch].to(state.dtype)
        with torch.inference_mode():
            if patches:
                hidden = model.vision_model(pixel_values=pixels).last_hidden_state
                tokens = model.visual_projection(model.vision_model.post_layernorm(hidden))
            else:
                tokens = model.get_image_features(pixel_values=pixels).pooler_output[:, None]
        out.append(tokens.float().cpu().numpy())
    return np.concatenate(out)


def process(batch: Sequence[dict[str, Any]], state: _State, cfg: FeaturesConfig) -> BatchResult:
    loaded: list[tuple[dict[str, Any], Prepared]]
    loaded, failures = state.reader.load(batch)
    if state.gpu is not None:
        loaded, refused = state.gpu.prepare(loaded)
        failures += refused
    result = BatchResult(rows={state.table: [], SIDE_TABLE: []}, failures=failures)
    if not loaded:
        return result
    tokens = embed(state, [prepared.pixels for _, prepared in loaded], cfg.variant == "patches", cfg.forward_batch)
    start = 0
    for row, visual in loaded:
        n = len(visual.pixels)
        item = tokens[start:start + n]
        start += n
        features = item.reshape(-1, item.shape[-1]).astype(np.float16)
        result.rows[state.table].append({"media_id": row["media_id"], "features": features})
        if visual.is_video:
            result.rows[SIDE_TABLE].append({"media_id": row["media_id"], "decoded_duration": visual.duration})
    return result


STAGE = Stage(name="features", version="1", config=FeaturesConfig, plan=plan, setup=setup, process=process,
              help="CLIP features of every image and video frame into features/NAME/", check=_check,
              examples=("ccr features ccr-demo/corpus --models toy", "ccr features ccr-demo/corpus --variant patches --models toy"),
              batch_size=32, needs=frozenset({"media"}), provides={"features": "visual features"},
              smoke={"model": "tiny/clip"}, path_options=("media_root",), prefetch=prefetch)
