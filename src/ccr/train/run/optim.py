"""Optimizers, the learning-rate schedule and mixed precision, kept out of the loop's way.

The schedule is a pure function of the step (nanoGPT's ``get_lr``) and of the number of plateau
halvings so far (a checkpointed counter), so a resumed run lands on exactly the learning rate it
would have had, and tests can check it point by point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ccr.train.config import TrainConfig
    from ccr.train.model.methods.base import AuxObjective, Method


def lr_factor(step: int, *, total: int, warmup: float, schedule: str, steps_per_epoch: int,
              epoch_decay: float) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warmup over ``warmup`` steps (a fraction of ``total`` if below 1), then ``constant``,
    ``linear`` decay to 0 or half a ``cosine``; times ``epoch_decay`` per finished epoch (NRCCR).
    """
    warm = warmup * total if warmup < 1 else warmup
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1.0, total - warm))
    shape = {"constant": 1.0, "linear": 1.0 - progress, "cosine": 0.5 * (1.0 + math.cos(math.pi * progress))}
    if schedule not in shape:
        raise ValueError(f"unknown schedule {schedule!r}")
    return shape[schedule] * epoch_decay ** (step // max(steps_per_epoch, 1))


def aux_parameter_ids(aux: list[AuxObjective]) -> set[int]:
    return {id(p) for objective in aux for p in objective.module.parameters()}


def main_parameters(model: Method, aux: list[AuxObjective]) -> list[torch.nn.Parameter]:
    """Trainable parameters of the main objective: not frozen, not owned by an aux objective."""
    skip = aux_parameter_ids(aux)
    return [p for p in model.parameters() if p.requires_grad and id(p) not in skip]


def build_optimizer(model: Method, cfg: TrainConfig, aux: list[AuxObjective]) -> torch.optim.Optimizer:
    """AdamW with no weight decay on biases, norms and scalars (LECCR's grouping); a CLIP trained
    end to end gets ``image_encoder_lr`` when set."""
    params = main_parameters(model, aux)
    clip = {id(p) for p in model.media.encoder.parameters()} if cfg.image_encoder else set()
    parts = [(cfg.lr, [p for p in params if id(p) not in clip])]
    if clip:
        parts.append((cfg.image_encoder_lr or cfg.lr, [p for p in params if id(p) in clip]))
    groups = [group for lr, part in parts for group in (
        {"params": [p for p in part if p.ndim >= 2], "weight_decay": cfg.weight_decay, "lr": lr},
        {"params": [p for p in part if p.ndim < 2], "weight_decay": 0.0, "lr": lr})]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def build_aux_optimizers(aux: list[AuxObjective]) -> list[torch.optim.Optimizer]:
    return [torch.optim.Adam(objective.module.parameters(), lr=objective.lr, betas=objective.betas)
            for objective in aux]


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, *, total: int, steps_per_epoch: int,
                    halvings: Callable[[], int] = lambda: 0) -> torch.optim.lr_scheduler.LambdaLR:
    """``halvings`` counts the plateau halvings so far: they depend on validation, not on the step,
    so they live in the loop's counters (restored on resume) and the schedule reads them."""

    def factor(step: int) -> float:
        return lr_factor(step, total=total, warmup=cfg.warmup, schedule=cfg.schedule,
                         steps_per_epoch=steps_per_epoch, epoch_decay=cfg.epoch_decay) * 0.5 ** halvings()

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR) -> None:
    """Set the learning rates the schedule gives now, after a change of its inputs between steps
    (a plateau halving), so the next step already uses them."""
    for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas,
                                   strict=True):
        group["lr"] = base * factor(scheduler.last_epoch)


def amp_enabled(cfg: TrainConfig, device: torch.device) -> bool:
    """Float16 autocast is used on CUDA only; CPU runs stay in float32."""
    return cfg.amp and device.type == "cuda"


def autocast(enabled: bool) -> AbstractContextManager[object]:
    return torch.autocast("cuda", dtype=torch.float16) if enabled else nullcontext()


def grad_scaler(enabled: bool) -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cuda", enabled=enabled)
