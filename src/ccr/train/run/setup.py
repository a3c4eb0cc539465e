"""What every task's ``prepare`` shares, and the ``Prepared`` session it hands the loop.

Resolves the configs (architecture keys pinned to the checkpoint on resume), joins the process
group, checks that a resumed run still reads the corpus it started on, loads the text tower
(pretrained on a fresh run, from the run directory's config plus checkpoint weights on resume)
and writes ``run.json``. The task builds the training samples and validation sets in between
(``ccr.train.tasks``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ccr.config import fingerprint, to_dict
from ccr.corpus.corpus import Corpus, package_versions
from ccr.errors import CcrError
from ccr.models import resolve_role
from ccr.stages.progress import Progress
from ccr.train import legacy
from ccr.train.config import TrainConfig, arch_keys, resolve_configs
from ccr.train.model.image_encoder import ClipInput
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import Method, proposal_note
from ccr.train.model.towers import load_text_encoder
from ccr.train.run import checkpoint as ckpt
from ccr.train.run import distributed


@dataclass
class Prepared:
    """One training process's session: what the loop steps, whatever the task."""

    run: ckpt.RunDir
    method: str
    cfg: TrainConfig
    method_cfg: Any
    world: distributed.World
    state: dict[str, Any] | None  # last.pt when resuming
    corpus_fingerprint: str
    encoder: torch.nn.Module
    clip: ClipInput | None  # the CLIP fine-tuned end to end, with image_encoder
    data: Any  # the task's training samples: ``__len__`` and ``collate(indices)``
    val: list[Any]  # the task's validation sets, main process only
    env: dict[str, Any]  # what instantiating the method needs besides configs, kept in checkpoints
    log: Callable[[str], None]

    def progress(self, desc: str, total: int) -> Progress:
        return Progress(desc, total, unit="samples", enabled=self.cfg.progress and self.world.main)


def corpus_fingerprint(corpus: Corpus) -> str:
    """Changes whenever a stage commits or drops a chunk, and not when shards are compacted."""
    return fingerprint(corpus.chunk_keys())


def pinned_arch(state: dict[str, Any] | None, method_cfg: type) -> dict[str, dict[str, Any]] | None:
    """A checkpoint's architecture keys, which win over whatever the command line says."""
    if state is None:
        return None
    return {"train": {k: v for k, v in state["config"]["train"].items() if k in arch_keys(TrainConfig)},
            "method": {k: v for k, v in state["config"]["method"].items() if k in arch_keys(method_cfg)}}


def already_done(state: dict[str, Any] | None, cfg: TrainConfig) -> bool:
    """A finished run that stopped early, or already has the epochs asked for: nothing to train."""
    if state is None or not state["counters"]["finished"]:
        return False
    return state["counters"]["stopped_early"] or state["counters"]["epoch"] >= cfg.epochs


def reset(run: ckpt.RunDir) -> None:
    """``--fresh``: forget the checkpoints, metrics and evaluations of an earlier run here."""
    for path in (run.root / "checkpoints", run.root / "eval", run.text_tower, run.root / "tensorboard"):
        shutil.rmtree(path, ignore_errors=True)
    run.metrics.unlink(missing_ok=True)
    run.run_json.unlink(missing_ok=True)


def _load_state(run: ckpt.RunDir, method: str, fresh: bool, world: distributed.World) -> dict[str, Any] | None:
    if fresh and world.main:
        reset(run)
    distributed.barrier()
    if fresh or not run.last.exists():
        return None
    state = ckpt.load(run.last)
    if state["method"] != method:
        raise CcrError(f"{run.root} holds a {state['method']} run; use another --out, or --fresh to replace it")
    return state


def text_encoder(cfg: TrainConfig, run: ckpt.RunDir, state: dict[str, Any] | None,
                 world: distributed.World) -> tuple[torch.nn.Module, Any, dict[str, str]]:
    """(encoder, tokenizer, provenance): a resumed run rebuilds the encoder from its run directory
    (weights come with the checkpoint); a fresh one loads the configured model and keeps its config
    and tokenizer there, so the run loads offline later."""
    if state is not None:
        encoder, tokenizer = load_text_encoder(run.text_tower, pretrained=False)
        return encoder, tokenizer, run.info().get("text_tower", {})
    resolved = resolve_role(cfg.text_tower, cfg.aliases, option="--set text_tower=")
    encoder, tokenizer = load_text_encoder(resolved.path, pretrained=True)
    if world.main:
        tokenizer.save_pretrained(run.text_tower)
        encoder.config.save_pretrained(run.text_tower)
    return encoder, tokenizer, resolved.provenance()


@dataclass
class Opened:
    """A run's resolved configs, process group, checkpoint state and corpus: what every task starts from."""

    cfg: TrainConfig
    method_cfg: Any
    world: distributed.World
    state: dict[str, Any] | None
    corpus: Corpus
    fingerprint: str
    log: Callable[[str], None]  # silent on every process but the main one


def open_run(corpus_dir: Path | str, run: ckpt.RunDir, method: str, method_cls: type[Method], *,
             config: Path | None, sets: list[str] | None, overrides: dict[str, Any] | None, fresh: bool,
             log: Callable[[str], None], select_keys: tuple[str, ...]) -> Opened:
    """Configs (architecture keys pinned on resume), process group, ``last.pt`` and the corpus it must match."""
    options = {"config": config, "sets": sets, "overrides": overrides}
    cfg, _ = resolve_configs(method, method_cls.Config, **options)
    world = distributed.setup(cfg.device)
    log = log if world.main else (lambda _: None)
    state = _load_state(run, method, fresh, world)
    cfg, method_cfg = resolve_configs(method, method_cls.Config, **options, pinned=pinned_arch(state, method_cls.Config))
    if state is not None:
        legacy.check_resume(run.root, state["config"]["train"], cfg.val_translate_test_weight)
    if cfg.select_metric not in select_keys:
        raise CcrError(f"select_metric {cfg.select_metric!r}: use one of {', '.join(select_keys)}")
    corpus = Corpus.open(corpus_dir)
    fp = corpus_fingerprint(corpus)
    if state is not None and state["corpus_fingerprint"] != fp:
        raise CcrError(f"{run.root} was trained on another version of {corpus.root}; "
                       f"use a new --out, or --fresh to start over")
    return Opened(cfg, method_cfg, world, state, corpus, fp, log)


def record_start(run: ckpt.RunDir, method: str, opened: Opened, provenance: dict[str, str],
                 env: dict[str, Any]) -> None:
    """``run.json`` and ``metrics.jsonl`` as a run starts or resumes; a finished run's stay as they are."""
    state = opened.state
    if opened.world.main and not already_done(state, opened.cfg):
        write_info(run, method, opened.cfg, opened.method_cfg, opened.corpus, opened.fingerprint, provenance, env,
                   opened.world, resumed=state is not None)
        run.write_history(state["counters"]["history"] if state is not None else [])


def write_info(run: ckpt.RunDir, method: str, cfg: TrainConfig, method_cfg: Any, corpus: Corpus, fp: str,
               provenance: dict[str, str], env: dict[str, Any], world: distributed.World, *, resumed: bool) -> None:
    """``run.json``: what ``ccr evaluate``, ``--compare`` and ``ccr.train.load`` need to know of a run."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = run.info() if resumed and run.run_json.exists() else {"created": now, "resumed": []}
    if resumed:
        info["resumed"] = [*info.get("resumed", []), now]
    info.update({
        "method": method,
        "proposal": proposal_note(get_method(method)),
        "config": {"train": to_dict(cfg), "method": to_dict(method_cfg)},
        "corpus": {"path": str(corpus.root.resolve()), "fingerprint": fp},
        "text_tower": provenance,
        "visual": env["visual"],
        "env": env,
        "world_size": world.size,
        "versions": package_versions(),
        "host": os.uname().nodename,
        "finished": False,
    })
    run.write_info(info)
