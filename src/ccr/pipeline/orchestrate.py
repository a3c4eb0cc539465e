"""``ccr pipeline run``: a checked recipe's steps in order, each skipped when it is already done.

Resuming works at two levels. A step whose options and inputs are unchanged since it last
finished is skipped outright, without loading a model; its key chains the keys of the corpus
steps before it, so changing ``translate`` redoes what was built on it. A step that was killed
runs again, and the stage runner (corpus stages: committed shards) or the checkpoint (train)
continues where it stopped, so a killed pipeline ends with the same corpus and the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccr import paths
from ccr.config import fingerprint
from ccr.corpus import atomic
from ccr.errors import CcrError
from ccr.pipeline.recipe import PATH_OPTIONS, RUN_STAGES, Recipe, Step

STATE_FILE = "pipeline.json"

# --tiny: ccr.testing's stand-ins and the small sizes they need, so a recipe can be tried end to end
# in minutes on a laptop (its files, layout and options checked) before the real run.
SMOKE: dict[str, dict[str, Any]] = {
    "translate": {"tiny": True, "max_length": 16},  # random weights never stop on their own
    "backtranslate": {"tiny": True, "max_length": 16},
    "features": {"model": "tiny/clip"},
    "caption": {"mllm": "tiny/llava", "max_new_tokens": 16},
    "slots": {"embedder": "tiny/minilm"},
    "score": {"tiny": True},
    "train": {"text_tower": "tiny/bert", "epochs": 1, "batch_size": 8, "embed_dim": 32, "media_hidden": 32,
              "text_frozen_layers": 0, "threads": 1, "progress": False},
}
SMOKE_CLIP = {"image_encoder": "tiny/clip", "image_size": 0}  # a train step that fine-tunes a CLIP: the tiny one

# Rows per batch when a step does not say: the same defaults as the stage commands.
BATCH = {"ingest": 1024, "translate": 1024, "backtranslate": 1024, "import-features": 256, "features": 32,
         "caption": 8, "slots": 64, "score": 8, "select": 4096}


@dataclass
class StepStatus:
    step: Step
    key: str
    state: str  # done | to do | changed (done before with other options or inputs) | not selected


def effective_options(recipe: Recipe, step: Step) -> dict[str, Any]:
    """The options a step runs with: the recipe's, then ``--tiny``'s, then ``--set``'s."""
    options = dict(step.options)
    if recipe.settings.tiny:
        smoke = SMOKE.get(step.stage, {}) | (SMOKE_CLIP if step.stage == "train" and options.get("image_encoder") else {})
        options.update({k: v for k, v in smoke.items() if k not in step.pinned})
    return options


def _relative(path: str | Path, recipe: Recipe) -> str:
    """A path as the recipe names it (under the data root), so moving the data never changes a key."""
    root = Path(recipe.settings.data_root).resolve()
    resolved = Path(path).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


def _inputs(recipe: Recipe, step: Step) -> list[Any]:
    """Size and mtime of a step's source files, so replacing a source redoes the step."""
    out: list[Any] = []
    for key in PATH_OPTIONS.get(step.stage, ()):
        if key == "media_root" or not step.options.get(key):
            continue
        root = Path(step.options[key])
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        out += [(_relative(p, recipe), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists()]
    return out


def _semantic(recipe: Recipe, step: Step, options: dict[str, Any]) -> dict[str, Any]:
    """The options that say what a step makes: source paths as the recipe names them, and for a train
    step none of the runtime ones (threads, device, ...), so changing those never retrains.

    Corpus steps keep every other option: the stage runner redoes only rows still owed, so rerunning one
    is cheap, while options such as ``lang``, which the runner leaves out of its own fingerprint, do change
    what a step makes.
    """
    if step.stage != "train":
        return {k: _relative(v, recipe) if k in PATH_OPTIONS.get(step.stage, ()) else v for k, v in options.items()}
    import dataclasses

    from ccr.train.config import TrainConfig

    runtime = {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("fingerprint", True)}
    return {k: v for k, v in options.items() if k not in runtime}


def step_keys(recipe: Recipe) -> dict[str, str]:
    """Each step's key: its options and inputs, chained through the corpus steps before it."""
    chain = fingerprint("corpus")
    keys: dict[str, str] = {}
    for step in recipe.steps:
        options = _semantic(recipe, step, effective_options(recipe, step))
        if step.stage == "evaluate":
            keys[step.id] = fingerprint(keys.get(str(options.get("run"))), step.stage, options)
            continue
        keys[step.id] = fingerprint(chain, step.stage, options, _inputs(recipe, step), recipe.models)
        if step.stage not in RUN_STAGES:
            chain = keys[step.id]
    return keys


def _output(recipe: Recipe, step: Step) -> Path:
    """What exists once a step has finished: the corpus manifest, a run's run.json, a run's eval/."""
    from ccr.corpus.corpus import MANIFEST

    if step.stage == "train":
        return recipe.run_dir(step.id) / "run.json"
    if step.stage == "evaluate":
        return recipe.run_dir(str(step.options.get("run"))) / "eval"
    return recipe.corpus / MANIFEST


def read_state(recipe: Recipe) -> dict[str, Any]:
    """The finished steps' records, minus those whose output is gone (a deleted corpus or run directory)."""
    path = recipe.work_dir / STATE_FILE
    fix = "delete it and run again: each stage then skips what it finished"
    state = paths.read_json(path, "pipeline state", fix=fix) if path.exists() else {"steps": {}}
    if not isinstance(state.get("steps"), dict):
        raise CcrError(f"pipeline state {path} holds no steps; {fix}")
    by_id = {s.id: s for s in recipe.steps}
    for step_id in list(state["steps"]):
        if step_id not in by_id or not _output(recipe, by_id[step_id]).exists():
            del state["steps"][step_id]
    return state


def status(recipe: Recipe) -> list[StepStatus]:
    """What ``--dry-run`` prints: every step, its key and whether it would run."""
    keys, done = step_keys(recipe), read_state(recipe)["steps"]
    selected = {s.id for s in recipe.selected}
    out = []
    for step in recipe.steps:
        record = done.get(step.id)
        state = "done" if record and record["key"] == keys[step.id] else "changed" if record else "to do"
        out.append(StepStatus(step, keys[step.id], state if step.id in selected else f"not selected ({state})"))
    return out


def describe(recipe: Recipe) -> str:
    """The plan as text: one line per step with its state and options."""
    lines = [f"recipe {recipe.path}: corpus {recipe.corpus}, runs in {recipe.work_dir / 'runs'}"
             + (" (--tiny: tiny random models, numbers meaningless)" if recipe.settings.tiny else "")]
    for n, item in enumerate(status(recipe), 1):
        options = ", ".join(f"{k}={v}" for k, v in effective_options(recipe, item.step).items())
        lines.append(f"{n:>3}. {item.step.id:<22} {item.step.stage:<15} {item.state:<10} {options}")
    return "\n".join(lines)


def run_pipeline(recipe: Recipe, *, log: Callable[[str], None] = print) -> list[StepStatus]:
    """Run the selected steps that are not done; returns what each selected step ended as."""
    keys = step_keys(recipe)
    state = read_state(recipe)
    ended = []
    for step in recipe.selected:
        record = state["steps"].get(step.id)
        if record and record["key"] == keys[step.id]:
            log(f"{step.id}: done before with the same options and inputs, skipped")
            ended.append(StepStatus(step, keys[step.id], "done"))
            continue
        log(f"{step.id}: {step.stage} ...")
        started = time.time()
        _run_step(recipe, step, changed=record is not None, log=log)
        state["steps"][step.id] = {"stage": step.stage, "key": keys[step.id],
                                   "seconds": round(time.time() - started, 1),
                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic.write_json(recipe.work_dir / STATE_FILE, state)
        ended.append(StepStatus(step, keys[step.id], "ran"))
    return ended


def _run_step(recipe: Recipe, step: Step, *, changed: bool, log: Callable[[str], None]) -> None:
    options = effective_options(recipe, step)
    if step.stage == "train":
        _train(recipe, step, options, fresh=changed, log=log)
    elif step.stage == "evaluate":
        _evaluate(recipe, options, log)
    else:
        _corpus_stage(recipe, step, options, log)


def _corpus_stage(recipe: Recipe, step: Step, options: dict[str, Any], log: Callable[[str], None]) -> None:
    import dataclasses

    from ccr.formats.ingest.stage import ingest
    from ccr.stages import table as stages
    from ccr.stages.runner import RunOptions

    run_options = RunOptions(batch_size=step.batch_size or BATCH.get(step.stage, 64),
                             chunk_rows=recipe.settings.chunk_rows, progress=recipe.settings.progress)
    if step.stage == "ingest":
        explicit = {k: options.pop(k, None) for k in ("media_root", "split", "lang", "modality", "columns")}
        summary = ingest(options.pop("format"), options.pop("src"), recipe.corpus,
                         verify_media=bool(options.pop("verify_media", False)),
                         sets=[f"{k}={v}" for k, v in options.items()], options=run_options, **explicit)
    else:
        if recipe.models and any(f.name == "aliases" for f in dataclasses.fields(stages.get(step.stage).config)):
            options["aliases"] = recipe.models
        summary = stages.run(step.stage, recipe.corpus, overrides=options, options=run_options)
    outs = ", ".join(f"{n} {t}" for t, n in summary.rows_out.items()) or "nothing new"
    log(f"{step.id}: {summary.rows_in} rows in, {outs}, {summary.rows_failed} failed"
        + (f" ({summary.skipped_chunks} shards already done)" if summary.skipped_chunks else ""))


def _train(recipe: Recipe, step: Step, options: dict[str, Any], *, fresh: bool, log: Callable[[str], None]) -> None:
    from ccr.train.run.loop import train

    method = str(options.pop("method", "baseline"))
    if recipe.models:
        options["aliases"] = recipe.models
    if fresh:
        log(f"{step.id}: its options or inputs changed since it last finished; training again from scratch")
    result = train(recipe.corpus, recipe.run_dir(step.id), method=method, overrides=options, fresh=fresh, log=log)
    log(f"{step.id}: {method}, {result.epochs} epochs, best epoch {result.best_epoch}; run {result.run_dir}")


def _evaluate(recipe: Recipe, options: dict[str, Any], log: Callable[[str], None]) -> None:
    from ccr.train.eval.evaluate import evaluate_run
    from ccr.train.eval.metrics import format_table

    run_dir = recipe.run_dir(options["run"])
    results = evaluate_run(run_dir, split=options.get("split", "test"), langs=options.get("lang") or None,
                           translate_test_weight=options.get("translate_test_weight"),
                           sumr=options.get("sumr", "both"),
                           checkpoint=options.get("checkpoint", "best"), queries=options.get("queries"), log=log)
    log(format_table(results).rstrip())
