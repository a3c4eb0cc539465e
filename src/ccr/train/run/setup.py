"""Everything a training process needs before its first step, fresh or resumed.

Resolves the configs (architecture keys pinned to the checkpoint on resume), joins the process
group, checks that a resumed run still reads the corpus it started on, loads the text tower
(pretrained on a fresh run, from the run directory's config plus checkpoint weights on resume),
builds the training view and the validation sets, and writes ``run.json``.
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
from ccr.models import cache_dir, resolve_role
from ccr.stages.progress import Progress
from ccr.train import legacy
from ccr.train.config import TrainConfig, arch_keys, resolve_configs
from ccr.train.data.batching import (
    EvalData,
    TrainData,
    build_eval_data,
    build_train_data,
)
from ccr.train.data.media import open_slots
from ccr.train.data.rows import eval_records, train_records
from ccr.train.eval.evaluate import evaluate_model
from ccr.train.eval.metrics import METRIC_KEYS
from ccr.train.model.image_encoder import (
    ClipInput,
    ClipPixelSource,
    load_encoder,
    visual_source,
)
from ccr.train.model.methods import get as get_method
from ccr.train.model.methods.base import Method, proposal_note
from ccr.train.model.towers import load_text_encoder
from ccr.train.run import checkpoint as ckpt
from ccr.train.run import distributed


@dataclass
class Prepared:
    run: ckpt.RunDir
    method: str
    cfg: TrainConfig
    method_cfg: Any
    world: distributed.World
    state: dict[str, Any] | None  # last.pt when resuming
    corpus_fingerprint: str
    encoder: torch.nn.Module
    clip: ClipInput | None  # the CLIP fine-tuned end to end, with image_encoder
    data: TrainData
    val: list[EvalData]  # main process only
    env: dict[str, Any]  # what instantiating the method needs besides configs, kept in checkpoints
    log: Callable[[str], None]

    def validate(self, model: Method) -> dict[str, dict[str, float]]:
        """Validation metrics per language; with ``val_translate_test_weight``, fused with the queries' English MT."""
        return {d.records.lang: evaluate_model(model, d, batch_size=self.cfg.eval_batch_size, device=self.world.device,
                                               translate_test_weight=val_fusion(self.cfg, d.records.lang))
                for d in self.val}

    def progress(self, desc: str, total: int) -> Progress:
        return Progress(desc, total, unit="samples", enabled=self.cfg.progress and self.world.main)


def corpus_fingerprint(corpus: Corpus) -> str:
    """Changes whenever a stage commits or drops a shard: the corpus a run read, as data."""
    return fingerprint(sorted((c.stage, c.fingerprint, c.key) for c in corpus.commits()))


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


def val_fusion(cfg: TrainConfig, lang: str) -> float | None:
    """The xx->en MT queries' weight in validation's translate-test fusion; English queries need no translation."""
    return cfg.val_translate_test_weight if lang != "en" and cfg.val_translate_test_weight else None


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
             log: Callable[[str], None], select_keys: tuple[str, ...] = METRIC_KEYS) -> Opened:
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


def prepare(corpus_dir: Path | str, run: ckpt.RunDir, method: str, method_cls: type[Method], *,
            config: Path | None, sets: list[str] | None, overrides: dict[str, Any] | None, fresh: bool,
            log: Callable[[str], None]) -> Prepared:
    opened = open_run(corpus_dir, run, method, method_cls, config=config, sets=sets, overrides=overrides,
                      fresh=fresh, log=log)
    cfg, method_cfg, world, state, corpus, fp, log = (opened.cfg, opened.method_cfg, opened.world, opened.state,
                                                      opened.corpus, opened.fingerprint, opened.log)
    if cfg.image_encoder and (cfg.video_encoder != "pool" or method == "rivrl"):
        raise CcrError("image_encoder fine-tunes CLIP in front of the pooling tower; RIVRL reads stored frame "
                       "features: drop --set image_encoder or use --set video_encoder=pool with another method")
    clip = (load_encoder(cfg, run.image_tower, pretrained=state is None, save=state is None and world.main)
            if cfg.image_encoder else None)
    source = visual_source(corpus, cfg.visual, clip)
    keys, gallery_keys = method_cls.needed_keys(method_cfg), method_cls.needed_gallery_keys(method_cfg)
    slots = open_slots(corpus, cfg.slot_features) if "slots" in keys | gallery_keys else None
    records = train_records(corpus, cfg.lang, keys, mt_model=cfg.mt_model, log=log)
    val_records = [eval_records(corpus, cfg.val_split, lang, translated=val_fusion(cfg, lang) is not None,
                                gallery=cfg.gallery) for lang in cfg.lang]
    method_cls.check_input(method_cfg, source, records.media_id, image_encoder=clip is not None)
    encoder, tokenizer, provenance = text_encoder(cfg, run, state, world)  # after the data checks: it is slow
    tokens_cache = cache_dir() / "tokens"
    common = {"tokenizer": tokenizer, "source": source, "max_tokens": cfg.max_tokens, "max_frames": cfg.max_frames,
              "cache": tokens_cache, "log": log, "slots": slots}
    train_source = source.augmented() if isinstance(source, ClipPixelSource) and cfg.image_augment else source
    data = build_train_data(corpus, records, keys, use_weights=cfg.use_weights, **(common | {"source": train_source}))
    val = [build_eval_data(corpus, r, gallery_keys, **common) for r in val_records] if world.main else []
    env = {"media_dim": source.dim, "langs": data.langs, "n_train": len(data), "visual": source.name}
    if slots is not None:
        env |= {"slots": slots.name, "slot_dim": slots.dim}
    if clip is not None:  # the CLIP a run started from; a resumed run rebuilds it from image_tower/
        env["image_tower"] = clip.provenance or state["env"].get("image_tower", {})
    if world.main and not already_done(state, cfg):
        write_info(run, method, cfg, method_cfg, corpus, fp, provenance, env, world, resumed=state is not None)
        run.write_history(state["counters"]["history"] if state is not None else [])
    log(f"{method}: {len(data)} training tuples ({', '.join(data.langs)}) over {len(data.media_ids)} media items, "
        f"visual input {source.name} ({source.dim}-d), {world.size} process(es) on {world.device}")
    return Prepared(run, method, cfg, method_cfg, world, state, fp, encoder, clip, data, val, env, log)


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
