"""The trainer's shared options and how they meet each method's own options.

A run is configured by two dataclasses: ``TrainConfig`` (loop, towers, data; shared by every
method) and the method's ``Config`` (its losses and weights). One ``--set key=value`` namespace
covers both, routed by field name, so a user never has to know which object owns a key; a method
field may therefore never reuse a shared name (checked when the method is looked up).

Fields marked ``arch_field`` shape the model's parameters: on resume and in ``ccr evaluate`` they
come from the checkpoint, whatever the command line says (nanoGPT's ``model_args`` rule).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from ccr.config import load_toml, parse_sets, resolve, runtime_field
from ccr.errors import CcrError
from ccr.models import mt_languages
from ccr.train.legacy import renamed_hint
from ccr.train.model.video.encoders import ENCODERS
from ccr.train.ranges import (
    BELOW_ONE,
    COUNT,
    NON_NEGATIVE,
    SHARE,
    Range,
    at_least,
    check_ranges,
)

ARCH = {"arch": True}


def arch_field(default: Any, **kwargs: Any) -> Any:
    """A config field that defines the model's shape; resumed runs take it from the checkpoint."""
    return dataclasses.field(default=default, metadata=ARCH, **kwargs)


@dataclass
class TrainConfig:
    COMMAND_LINE: ClassVar[bool] = True  # every field is a flag of ``ccr train``: a bad value's message names it

    # --- data -------------------------------------------------------------------------------
    lang: list[str] = field(default_factory=lambda: ["de"], metadata={
        "help": "target language(s) of the MT captions, comma-separated", "known": mt_languages})
    mt_model: str | None = field(default=None, metadata={
        "help": "model key of the MT rows when a language has several (else the only one)"})
    visual: str = field(default="auto", metadata={**ARCH,
        "help": "feature set name, auto (the corpus's only one) or pixels (fallback)"})
    slot_features: str = field(default="auto", metadata={**ARCH,
        "help": "slot vectors for methods reading the `slots` key: a slots-* set or auto"})
    max_tokens: int = field(default=128, metadata={"help": "tokens per caption (NRCCR: no limit; LECCR: 200)"})
    max_frames: int = field(default=64, metadata={**ARCH, "help": "frames/clips per video (NRCCR, RIVRL: 64)"})
    use_weights: bool = field(default=True, metadata={
        "help": "multiply per-sample losses by the corpus `weight` column"})
    val_split: str = field(default="val", metadata={"help": "model selection split; never test"})
    gallery: Literal["captioned", "split"] = field(default="captioned", metadata={
        "help": "retrieval gallery: the items with human captions in the query language (the papers' protocol, e.g. "
                "COCO ja/zh 1k) or every item of the split (the rest as distractors); also ccr evaluate's default"})
    val_translate_test_weight: float | None = field(default=None, metadata={
        "help": "weight of the xx->en MT queries in validation's translate-test fusion, the native queries getting the "
                "rest (NRCCR: 0.2, its sim_ratio; needs ccr backtranslate --test-queries); none = native queries only"})
    # --- towers -----------------------------------------------------------------------------
    text_tower: str = field(default="text-tower", metadata={**ARCH,
        "help": "model role, hub id, tiny/<name> or path (default mBERT)"})
    text_pooling: Literal["cls", "mean"] = field(default="mean", metadata={**ARCH,
        "help": "token vectors pool into one by cls or mean (NRCCR: mean; LECCR: cls)"})
    text_head: Literal["linear", "attention"] = field(default="linear", metadata={**ARCH,
        "help": "linear, or attention: NRCCR's 1-block token head"})
    text_frozen_layers: int = field(default=0, metadata={
        "help": "freeze embeddings + this many bottom layers (NRCCR: 3 images, 5 videos)"})
    embed_dim: int = field(default=1536, metadata={**ARCH, "help": "common space (NRCCR 1536, LECCR 256)"})
    media_hidden: int = field(default=1024, metadata={**ARCH,
        "help": "visual projection width (NRCCR: 1024 video / CLIP images)"})
    media_layers: int = field(default=0, metadata={**ARCH,
        "help": "self-attention blocks over frames (NRCCR video: 1)"})
    media_pooling: Literal["mean", "attention"] = field(default="mean", metadata={**ARCH,
        "help": "pooling over frames"})
    video_encoder: Literal["pool", "rivrl"] = field(default="pool", metadata={**ARCH,
        "help": "visual tower: pool (the frame MLP above) or rivrl (RIVRL's previewing + intensive-reading branches; "
                "media_hidden is its frame width, embed_dim holds its two latent spaces; RIVRL: 2048 and 2048)"})
    image_encoder: str = field(default="", metadata={**ARCH,
        "help": "a CLIP (role clip, hub id, tiny/clip or path) fine-tuned end to end on the media files instead of "
                "reading `visual` features (LECCR images: openai/clip-vit-base-patch32); '' = stored features"})
    image_size: int = field(default=0, metadata={**ARCH,
        "help": "image side for image_encoder; 0 = the CLIP's own (224); LECCR: 384"})
    image_encoder_lr: float = field(default=0.0, metadata={"help": "learning rate of the CLIP weights; 0 = lr"})
    image_augment: bool = field(default=True, metadata={
        "help": "with image_encoder: LECCR's random resized crop (50-100% of the area) + flips"})
    dropout: float = field(default=0.2, metadata={"help": "dropout in the towers' projections (NRCCR mapping: 0.2)"})
    # --- optimisation -----------------------------------------------------------------------
    epochs: int = field(default=50, metadata={"help": "epochs at most (NRCCR, LECCR: 50)"})
    batch_size: int = field(default=128, metadata={
        "help": "global batch, split over DDP processes (NRCCR, LECCR: 128)"})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate (NRCCR 1e-4, LECCR 1e-5)"})
    weight_decay: float = field(default=0.0, metadata={"help": "none on biases and norms (NRCCR: 0, LECCR: 0.01)"})
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999], metadata={
        "help": "AdamW betas (LECCR: 0.9, 0.98)"})
    warmup: float = field(default=0.0, metadata={
        "help": "warmup: a fraction of all steps if < 1, else a step count (LECCR: 0.1)"})
    schedule: Literal["constant", "linear", "cosine"] = field(default="constant", metadata={
        "help": "learning-rate schedule after warmup (LECCR: linear)"})
    epoch_decay: float = field(default=0.99, metadata={"help": "lr x this after every epoch (NRCCR: 0.99; 1 = off)"})
    plateau_halving: int = field(default=0, metadata={
        "help": "lr x 0.5 after an epoch that does not improve validation, at most once every N epochs (NRCCR, RIVRL: "
                "3; 0 = off)"})
    grad_clip: float = field(default=2.0, metadata={"help": "max gradient norm, 0 = off (NRCCR: 2)"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation, sampling and shuffling"})
    # --- selection --------------------------------------------------------------------------
    select_metric: str = field(default="sumr", metadata={
        "help": "validation metric that picks best.pt (NRCCR: t2v_sumr)"})
    patience: int = field(default=10, metadata={
        "help": "stop after this many epochs without improvement (NRCCR: 10; 0 = never)"})
    # --- runtime (never change the results' meaning) ----------------------------------------
    device: str = runtime_field("auto", "auto, cpu, cuda, cuda:1")
    amp: bool = runtime_field(True, "float16 autocast + grad scaling, CUDA only")
    workers: int | None = runtime_field(None, "DataLoader worker processes collating batches ahead of the step; "
                                        "none = sized to the machine: on CUDA the cores per process less one (at most "
                                        "8), on the CPU 0, where workers would take the model's cores")
    prefetch: int = runtime_field(2, "batches each loader worker keeps ready (with workers > 0)")
    threads: int = runtime_field(0, "torch CPU threads while training (0: torch's default; 1 suits tiny towers)")
    eval_batch_size: int = runtime_field(256, "rows per batch when validating and evaluating")
    checkpoint_every: int = runtime_field(0, "also save last.pt every N steps (0: end of epoch only)")
    progress: bool = runtime_field(True, "show a progress bar")
    aliases: dict[str, str] = runtime_field(help="model name -> local path (the TOML's [models] table)",
                                            default_factory=dict, cli=False)

    ranges: ClassVar[dict[str, Range]] = {
        "max_tokens": at_least(3, "a word piece besides the start and end tokens"), "max_frames": COUNT,
        "val_translate_test_weight": SHARE, "text_frozen_layers": NON_NEGATIVE, "embed_dim": COUNT,
        "media_hidden": COUNT, "media_layers": NON_NEGATIVE, "image_size": NON_NEGATIVE,
        "image_encoder_lr": NON_NEGATIVE, "dropout": BELOW_ONE,
        "epochs": COUNT, "batch_size": at_least(2, "contrastive losses need negatives"),
        "lr": at_least(0, "0 keeps the initial weights: the untrained model as a baseline"),
        "weight_decay": NON_NEGATIVE, "betas": BELOW_ONE, "warmup": NON_NEGATIVE,
        "epoch_decay": Range(0, 1, low_open=True), "plateau_halving": NON_NEGATIVE, "grad_clip": NON_NEGATIVE,
        "seed": Range(0, 2**32 - 1), "patience": NON_NEGATIVE,
        "workers": NON_NEGATIVE, "prefetch": COUNT, "threads": NON_NEGATIVE, "eval_batch_size": COUNT,
        "checkpoint_every": NON_NEGATIVE,
    }

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class MethodConfig:
    """Base of every method's config; a method with no options of its own uses it as is.

    ``train_defaults`` are a method's own defaults for shared options (RIVRL: its video tower,
    widths and English queries); any TOML, ``--set`` or flag still overrides them.
    """

    train_defaults: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, Range]] = {}  # every numeric field's range (``ccr.train.ranges``)
    loss_weights: ClassVar[tuple[str, ...]] = ()  # fields of which one must be positive, or nothing is trained

    def __post_init__(self) -> None:
        check_ranges(self)

    def validate(self, train: TrainConfig) -> None:
        """Refuse options that are each in range but do not go together, before the run writes a file."""
        weights = {name: getattr(self, name) for name in self.loss_weights}
        if weights and not any(w > 0 for w in weights.values()):
            shown = ", ".join(f"{k}={v:g}" for k, v in weights.items())
            raise CcrError(f"{shown}: every loss weight is 0, so nothing would be trained; make one positive")


def arch_keys(cfg: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(cfg) if f.metadata.get("arch")}


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check_disjoint(method_name: str, method_cfg: type) -> None:
    clash = field_names(TrainConfig) & field_names(method_cfg)
    if clash:
        raise TypeError(f"method {method_name!r} config reuses shared option names: {sorted(clash)}")


def route(layer: dict[str, Any], method_cfg: type, method_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one layer of overrides into (shared, method) keys; an unknown key is an error."""
    shared, own = field_names(TrainConfig), field_names(method_cfg)
    train, method = {}, {}
    for key, value in layer.items():
        if key in shared:
            train[key] = value
        elif key in own:
            method[key] = value
        else:
            known = ", ".join(sorted(shared | own))
            hint = renamed_hint(key)
            raise CcrError(hint or f"unknown option {key!r} for method {method_name}; known options: {known}")
    return train, method


def toml_layers(path: Path | None, method_name: str) -> list[dict[str, Any]]:
    """A TOML file's ``[train]`` and ``[METHOD]`` tables; a file with neither is read whole.

    So one pipeline file holds every stage's table, and a training-only file may skip tables.
    ``[models]`` (name -> local path) becomes the ``aliases`` option.
    """
    data = load_toml(path)
    layers = [data[k] for k in ("train", method_name) if isinstance(data.get(k), dict)]
    if not layers:
        layers = [{k: v for k, v in data.items() if not isinstance(v, dict)}]
    if isinstance(data.get("models"), dict):
        layers.insert(0, {"aliases": data["models"]})
    return layers


def resolve_configs(method_name: str, method_cfg: type, *, config: Path | None = None,
                    sets: list[str] | None = None, overrides: dict[str, Any] | None = None,
                    pinned: dict[str, dict[str, Any]] | None = None) -> tuple[TrainConfig, Any]:
    """Defaults < the method's ``train_defaults`` < TOML < ``--set`` < CLI flags < ``pinned`` (a checkpoint's
    architecture keys)."""
    layers = [dict(getattr(method_cfg, "train_defaults", {})), *toml_layers(config, method_name), parse_sets(sets)]
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    train_layers, method_layers = [], []
    for layer in layers:
        t, m = route(layer, method_cfg, method_name)
        train_layers.append(t)
        method_layers.append(m)
    pinned = pinned or {}
    train_layers.append(pinned.get("train", {}))
    method_layers.append(pinned.get("method", {}))
    train = resolve(TrainConfig, *train_layers)
    validate(train)
    method = resolve(method_cfg, *method_layers)
    method.validate(train)
    return train, method


def validate(cfg: TrainConfig) -> None:
    """The rules across shared options (each option's own range is checked when the config is built)."""
    if not cfg.lang:
        raise CcrError("--lang: give at least one target language, e.g. --lang de")
    if cfg.val_split == "test" or cfg.val_split.startswith("test_"):  # named test sets (test_2017_flickr) too
        raise CcrError(f"val_split={cfg.val_split}: model selection on the test split is not allowed; use val")
    if len(cfg.betas) != 2:
        raise CcrError(f"betas: expected two numbers, got {cfg.betas}")
    ENCODERS[cfg.video_encoder].check_widths(cfg.media_hidden, cfg.embed_dim)
