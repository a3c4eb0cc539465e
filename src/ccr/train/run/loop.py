"""``ccr train``: from a corpus and a method name to a run directory, resumable at any moment.

The loop knows no method: the method's task (``ccr.train.tasks``) prepares the data and validates;
the loop calls the method's forward (through DDP when launched with torchrun/accelerate), sums the
weighted loss terms, steps the optimizers and the hooks, validates after every epoch, keeps ``best.pt``
on the selection metric (validation ``sumr`` by default; test is never read), stops early after
``patience`` epochs without improvement, and checkpoints ``last.pt`` so that a killed run, started
again with the same command, continues where the last checkpoint left it and ends with the same
numbers under a fixed seed (RNG states, the data order and the schedule are all restored).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ccr import paths
from ccr.config import to_dict
from ccr.errors import CcrError
from ccr.stages.interrupt import Signals
from ccr.train import tasks
from ccr.train.config import TrainConfig
from ccr.train.data.batching import EpochCollate, EpochSampler, batch_seed, to_device
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import AuxObjective, Method, StepInfo
from ccr.train.run import checkpoint as ckpt
from ccr.train.run import distributed, feed, optim
from ccr.train.run.setup import Prepared, already_done
from ccr.train.run.trained import instantiate
from ccr.train.tasks.base import Task

LOWER_IS_BETTER = ("medr", "meanr")
# Steps between reads of the loss on the host. A read waits for the accelerator to finish every queued
# kernel, so reading each step would leave it idle while Python prepares the next one; the epoch's
# running sums stay on the device and carry a non-finite loss until the next read.
LOSS_CHECK_EVERY = 50


@dataclass
class Counters:
    """Everything about progress that a checkpoint must restore."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    step_in_epoch: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    halvings: int = 0  # plateau halvings of the learning rate so far (``plateau_halving``)
    last_halving: int = 0  # the epoch of the last one
    finished: bool = False
    stopped_early: bool = False
    running: dict[str, Any] = field(default_factory=dict)  # loss sums of the current epoch (on the device)
    samples: int = 0  # whole run, for the overall rate
    train_seconds: float = 0.0
    epoch_samples: int = 0  # current epoch, for its own rate
    epoch_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrainResult:
    main: bool  # the process that writes the run directory (rank 0)
    run_dir: Path
    epochs: int
    best_epoch: int | None
    best_value: float | None
    stopped_early: bool
    samples_per_second: float
    history: list[dict[str, Any]]


@dataclass
class Loop:
    """The objects one training process steps; built once, used by every epoch."""

    prep: Prepared
    task: Task
    model: Method
    forward: torch.nn.Module  # the DDP wrapper, or the model itself
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    aux: list[tuple[AuxObjective, torch.optim.Optimizer]]
    sampler: EpochSampler
    collate: EpochCollate
    loader: torch.utils.data.DataLoader
    amp: bool
    writer: Any = None  # TensorBoard, when installed

    @property
    def cfg(self) -> TrainConfig:
        return self.prep.cfg

    def info(self, c: Counters) -> StepInfo:
        per_epoch = self.sampler.batches_per_epoch
        return StepInfo(c.epoch, c.step, per_epoch * self.cfg.epochs, per_epoch)


def train(corpus: Path | str, out: Path | str, *, method: str = "baseline", config: Path | None = None,
          sets: list[str] | None = None, overrides: dict[str, Any] | None = None, fresh: bool = False,
          log: Callable[[str], None] = print, on_config: Callable[[Any, Any], None] | None = None) -> TrainResult:
    """Train ``method`` on ``corpus`` into ``out``; an existing ``out`` is resumed unless ``fresh``."""
    method_cls = get_method(method)
    task = tasks.of(method_cls)
    run = ckpt.RunDir(out)
    made = run.create()
    try:
        with Signals().installed():  # SIGTERM (a scheduler's stop) ends the run like Ctrl-C: one line, exit 143
            prep = task.prepare(corpus, run, method, method_cls, config=config, sets=sets, overrides=overrides,
                                fresh=fresh, log=log)
            if prep.world.main and on_config:
                on_config(prep.cfg, prep.method_cfg)
            return fit(prep, method_cls, task)
    except BaseException:
        paths.discard(made)  # a mistake found before the first file leaves no empty directory behind
        raise
    finally:
        distributed.teardown()


def fit(prep: Prepared, method_cls: type[Method], task: Task) -> TrainResult:
    """The loop proper, on the session ``task`` prepared, selecting on ``task.validate``."""
    counters = Counters(**prep.state["counters"]) if prep.state else Counters()
    if already_done(prep.state, prep.cfg):
        prep.log(f"{prep.run.root} is already trained ({counters.epoch} epochs, best epoch {counters.best_epoch}); "
                 f"nothing to do")
        return _result(prep, counters)
    counters.finished = False
    with distributed.cpu_threads(prep.cfg.threads):
        loop = _build(prep, task, method_cls, counters)
        if prep.state:
            _restore(loop, prep.state)
            prep.log(f"resuming {prep.run.root} at epoch {counters.epoch + 1}, step {counters.step}")
        _run_epochs(loop, counters)
    return _result(prep, counters)


def _build(prep: Prepared, task: Task, method_cls: type[Method], counters: Counters) -> Loop:
    cfg, world, data = prep.cfg, prep.world, prep.data
    model = instantiate(method_cls, cfg, prep.method_cfg, encoder=prep.encoder, env=prep.env,
                        image_encoder=prep.clip.encoder if prep.clip else None)
    model.to(world.device)
    ckpt.seed_everything(cfg.seed + world.rank)
    aux = model.aux_objectives()
    forward: torch.nn.Module = model
    if world.distributed:
        ignore = [name for name, p in model.named_parameters() if id(p) in optim.aux_parameter_ids(aux)]
        torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignore)
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device] if world.device.type == "cuda" else None)
    sampler = EpochSampler(len(data), cfg.batch_size, rank=world.rank, world=world.size, seed=cfg.seed)
    per_epoch = sampler.batches_per_epoch
    optimizer = optim.build_optimizer(model, cfg, aux)
    amp = optim.amp_enabled(cfg, world.device)
    collate = EpochCollate(data.collate, cfg.seed)
    workers = feed.worker_count(cfg.workers, world.device, local_processes=world.local_size)
    loader = feed.build_loader(len(data), sampler, collate, workers=workers, prefetch=cfg.prefetch,
                               device=world.device)
    if workers:
        prep.log(f"{workers} loader workers collate batches, {cfg.prefetch} ahead each")
    return Loop(prep, task, model, forward, optimizer,
                optim.build_scheduler(optimizer, cfg, total=per_epoch * cfg.epochs, steps_per_epoch=per_epoch,
                                      halvings=lambda: counters.halvings),
                optim.grad_scaler(amp), list(zip(aux, optim.build_aux_optimizers(aux), strict=True)), sampler,
                collate, loader, amp, _tensorboard(prep))


def _tensorboard(prep: Prepared) -> Any:
    if not prep.world.main:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(prep.run.root / "tensorboard"))


def _restore(loop: Loop, state: dict[str, Any]) -> None:
    loop.model.load_state_dict(state["model"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    loop.scaler.load_state_dict(state["scaler"])
    for (_, opt), opt_state in zip(loop.aux, state["aux"], strict=True):
        opt.load_state_dict(opt_state)
    rng = state["rng"][loop.prep.world.rank] if loop.prep.world.rank < len(state["rng"]) else state["rng"][0]
    ckpt.set_rng_state(rng, loop.prep.world.device)
    if state.get("version", 1) < ckpt.VERSION:
        loop.prep.log(f"note: {loop.prep.run.last} was written by an earlier ccr whose data loader drew from the "
                      f"global random generator; it resumes, but the numbers from here on may differ from an "
                      f"uninterrupted run (--fresh starts over)")


def _run_epochs(loop: Loop, c: Counters) -> None:
    try:
        _epochs(loop, c)
    finally:
        if loop.writer is not None:
            loop.writer.close()
    distributed.barrier()
    if loop.prep.world.main:
        info = loop.prep.run.info()
        loop.prep.run.write_info(info | {"finished": True, "best_epoch": c.best_epoch, "best_value": c.best_value})


def _epochs(loop: Loop, c: Counters) -> None:
    cfg = loop.cfg
    loop.model.train()  # from_pretrained leaves the text encoder in eval mode
    loop.model.on_train_start(loop.prep.data)
    while c.epoch < cfg.epochs:
        _start_epoch(loop, c)
        loop.model.on_epoch_start(loop.info(c))
        start = time.perf_counter()
        with loop.prep.progress(f"epoch {c.epoch + 1}/{cfg.epochs}", len(loop.sampler) * cfg.batch_size) as bar:
            for batch in loop.loader:
                report = _step(loop, batch, loop.info(c))
                for name, value in report.items():
                    c.running[name] = c.running.get(name, 0.0) + value
                c.step, c.step_in_epoch = c.step + 1, c.step_in_epoch + 1
                c.samples, c.epoch_samples = c.samples + cfg.batch_size, c.epoch_samples + cfg.batch_size
                bar.advance(cfg.batch_size)
                saving = bool(cfg.checkpoint_every) and c.step % cfg.checkpoint_every == 0
                if saving or c.step % LOSS_CHECK_EVERY == 0:
                    _check_loss(c)
                if saving:
                    _clock(c, start)
                    _save_last(loop, c)
                    start = time.perf_counter()
        _clock(c, start)
        _end_epoch(loop, c)
        if c.finished:
            break


def _start_epoch(loop: Loop, c: Counters) -> None:
    """Every random stream of the data path as a function of (seed, epoch), at the batch a resume continues from."""
    loop.sampler.set_epoch(c.epoch, skip=c.step_in_epoch)
    loop.collate.epoch = c.epoch
    loop.loader.generator.manual_seed(batch_seed(loop.cfg.seed, c.epoch))


def _clock(c: Counters, start: float) -> None:
    """Add the training time since ``start`` (checkpoints and validation are not training)."""
    seconds = time.perf_counter() - start
    c.train_seconds += seconds
    c.epoch_seconds += seconds


def _check_loss(c: Counters) -> None:
    """Refuse to go on (or to save) once a loss was not finite: NaN and inf last in the epoch's sum."""
    loss = c.running.get("loss")
    if loss is not None and not math.isfinite(float(loss)):
        raise CcrError(f"the loss became {float(loss)} by step {c.step} (epoch {c.epoch + 1}); "
                       "lower the learning rate (--set lr=...)")


def _step(loop: Loop, batch: dict[str, Any], info: StepInfo) -> dict[str, torch.Tensor]:
    batch = to_device(batch, loop.prep.world.device)
    with optim.autocast(loop.amp):
        result = loop.forward(batch, info)
        loss = result.total()
    loop.optimizer.zero_grad(set_to_none=True)
    loop.scaler.scale(loss).backward()
    if loop.cfg.grad_clip > 0:
        loop.scaler.unscale_(loop.optimizer)
        params = [p for group in loop.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, loop.cfg.grad_clip)
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    loop.scheduler.step()
    detached = {k: v.detach() for k, v in result.outputs.items()}
    for objective, opt in loop.aux:
        opt.zero_grad(set_to_none=True)
        objective.loss(detached, batch, info).backward()
        distributed.average_gradients(list(objective.module.parameters()))
        opt.step()
    loop.model.on_step_end(result, batch, info)
    report = {name: term.value.detach().float() for name, term in result.terms.items()}
    report["loss"] = loss.detach().float()
    return report


def _selection(val: dict[str, dict[str, float]], metric: str) -> float:
    return sum(m[metric] for m in val.values()) / len(val)


def _better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric.endswith(LOWER_IS_BETTER) else value > best


def _end_epoch(loop: Loop, c: Counters) -> None:
    cfg, prep = loop.cfg, loop.prep
    _check_loss(c)
    info = loop.info(c)
    val = distributed.broadcast(loop.task.validate(prep, loop.model) if prep.world.main else None)
    value = _selection(val, cfg.select_metric)
    improved = _better(value, c.best_value, cfg.select_metric)
    c.epoch, steps = c.epoch + 1, max(c.step_in_epoch, 1)
    if improved:
        c.best_value, c.best_epoch, c.bad_epochs = value, c.epoch, 0
    else:
        c.bad_epochs += 1
        if cfg.plateau_halving and c.epoch - c.last_halving >= cfg.plateau_halving:
            c.halvings, c.last_halving = c.halvings + 1, c.epoch
            optim.apply_schedule(loop.scheduler)
    loop.model.on_epoch_end(info, val)
    record = {
        "epoch": c.epoch, "step": c.step, "lr": loop.optimizer.param_groups[0]["lr"],
        "train": {k: float(v) / steps for k, v in c.running.items()},
        "samples_per_second": c.epoch_samples / max(c.epoch_seconds, 1e-9),
        "val": val, "select": {"metric": cfg.select_metric, "value": value, "best": improved},
    }
    c.history.append(record)
    c.running, c.step_in_epoch, c.epoch_samples, c.epoch_seconds = {}, 0, 0, 0.0
    c.stopped_early = bool(cfg.patience) and c.bad_epochs >= cfg.patience
    c.finished = c.stopped_early or c.epoch >= cfg.epochs
    if prep.world.main and improved:
        ckpt.save(prep.run.best, _weights(loop, c) | {"metrics": val})
    _save_last(loop, c)
    if prep.world.main:
        prep.run.append_metrics(record)
        _log_epoch(loop, c, record)
    distributed.barrier()


def _weights(loop: Loop, c: Counters) -> dict[str, Any]:
    prep = loop.prep
    return {"method": prep.method, "config": {"train": to_dict(prep.cfg), "method": to_dict(prep.method_cfg)},
            "env": prep.env, "corpus_fingerprint": prep.corpus_fingerprint, "epoch": c.epoch,
            "model": loop.model.state_dict()}


def _save_last(loop: Loop, c: Counters) -> None:
    """``last.pt``: weights plus everything needed to continue; every process's RNG state."""
    own = ckpt.rng_state(loop.prep.world.device)
    rngs = [own]
    if loop.prep.world.distributed:
        rngs = [None] * loop.prep.world.size
        torch.distributed.all_gather_object(rngs, own)
    if not loop.prep.world.main:
        return
    state = _weights(loop, c) | {
        "optimizer": loop.optimizer.state_dict(), "scheduler": loop.scheduler.state_dict(),
        "scaler": loop.scaler.state_dict(), "aux": [opt.state_dict() for _, opt in loop.aux],
        "counters": dataclasses.asdict(c) | {"running": {k: float(v) for k, v in c.running.items()}}, "rng": rngs, "version": ckpt.VERSION,
    }
    ckpt.save(loop.prep.run.last, state)


def _log_epoch(loop: Loop, c: Counters, record: dict[str, Any]) -> None:
    losses = ", ".join(f"{k} {v:.4g}" for k, v in record["train"].items())
    vals = ", ".join(f"{name} {m[loop.cfg.select_metric]:.1f}" for name, m in record["val"].items())
    mark = " (best)" if record["select"]["best"] else ""
    loop.prep.log(f"epoch {c.epoch}/{loop.cfg.epochs}: {losses}; {record['samples_per_second']:.0f} samples/s; "
                  f"val {loop.cfg.select_metric}: {vals}{mark}")
    if loop.writer is not None:
        for k, v in record["train"].items():
            loop.writer.add_scalar(f"train/{k}", v, c.epoch)
        for name, metrics in record["val"].items():
            for k, v in metrics.items():
                if isinstance(v, int | float):
                    loop.writer.add_scalar(f"val_{name}/{k}", v, c.epoch)


def _result(prep: Prepared, c: Counters) -> TrainResult:
    return TrainResult(prep.world.main, prep.run.root, c.epoch, c.best_epoch, c.best_value, c.stopped_early,
                       c.samples / max(c.train_seconds, 1e-9), c.history)
