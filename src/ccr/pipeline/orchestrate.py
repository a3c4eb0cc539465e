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
from ccr.pipeline.kinds import KINDS, Context
from ccr.pipeline.plan import DEFAULT_CORPUS, Recipe, Step
from ccr.pipeline.recipe import NEW_CORPUS
from ccr.pipeline.smoke import smoke_options

STATE_FILE = "pipeline.json"


@dataclass
class StepStatus:
    step: Step
    key: str
    state: str  # done | to do | changed (done before with other options or inputs) | not selected


def effective_options(recipe: Recipe, step: Step) -> dict[str, Any]:
    """The options a step runs with: the recipe's, then ``models = "random"``'s stand-ins, then ``--set``'s."""
    options = dict(step.options)
    if recipe.settings.models == "random":
        options.update({k: v for k, v in smoke_options(step.stage, options).items() if k not in step.pinned})
    return options


def _path_options(step: Step) -> tuple[str, ...]:
    from ccr.stages import table as stages

    return () if step.stage in KINDS else stages.get(step.stage).path_options


def _relative(path: str | Path, recipe: Recipe) -> str:
    """A path as the recipe names it (under the data root), so moving the data never changes a key."""
    root = Path(recipe.settings.data_root).resolve()
    resolved = Path(path).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


Describe = Callable[[Path], Any]  # what a step's key takes of one of its source files


def _inputs(recipe: Recipe, step: Step, describe: Describe) -> list[Any]:
    """A step's source files as the recipe names them, each with what ``describe`` says of it."""
    out: list[Any] = []
    for key in _path_options(step):
        if key == "media_root" or not step.options.get(key):
            continue
        root = Path(step.options[key])
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        out += [(_relative(p, recipe), *describe(p)) for p in files if p.exists()]
    return out


def _contents(cache: dict[str, list[Any]]) -> Describe:
    """A file's content hash (ingest's: its text; a media file's bytes are not read), so replacing a
    source redoes its step while copying, touching or checking it out anew does not. ``cache`` maps
    a path to the size, mtime and hash it was last hashed at: a file is hashed again only when its
    size or mtime moved."""
    from ccr.formats.ingest.source import fingerprint as content_hash

    def describe(path: Path) -> tuple[str]:
        stat, name = path.stat(), str(path.resolve())
        seen = cache.get(name)
        if not isinstance(seen, list) or len(seen) != 3 or seen[:2] != [stat.st_size, stat.st_mtime_ns]:
            cache[name] = seen = [stat.st_size, stat.st_mtime_ns, content_hash(path, [path])]
        return (seen[2],)

    return describe


def _size_and_mtime(path: Path) -> tuple[int, int]:
    """What step keys took of a source file before 2026-12-06: the keys of a pipeline finished then."""
    return path.stat().st_size, path.stat().st_mtime_ns


def _semantic(recipe: Recipe, step: Step, options: dict[str, Any]) -> dict[str, Any]:
    """The options that say what a step makes: source paths as the recipe names them, and for a train
    step none of the runtime ones (threads, device, ...), so changing those never retrains.

    Corpus steps keep every other option: the stage runner redoes only rows still owed, so rerunning one
    is cheap, while options such as ``lang``, which the runner leaves out of its own fingerprint, do change
    what a step makes.
    """
    if step.stage != "train":
        return {k: _relative(v, recipe) if k in _path_options(step) else v for k, v in options.items()}
    import dataclasses

    from ccr.train.config import TrainConfig

    runtime = {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("fingerprint", True)}
    return {k: v for k, v in options.items() if k not in runtime}


def step_keys(recipe: Recipe, describe: Describe) -> dict[str, str]:
    """Each step's key: its options and inputs (its source files, as ``describe`` says them), chained
    through the corpus steps before it on its corpus.

    A noise step starts its copy's chain from its source's; an evaluate step chains its run's key; a
    check, which may read what any step wrote, chains every step before it.
    """
    chains: dict[str, str] = {}
    keys: dict[str, str] = {}
    for step in recipe.steps:
        options = _semantic(recipe, step, effective_options(recipe, step))
        kind = KINDS.get(step.stage)
        chain = chains.get(step.source or step.corpus, fingerprint("corpus"))
        if kind is not None and kind.keyed_by == "run":
            keys[step.id] = fingerprint(keys.get(str(options.get("run"))), step.stage, options)
        elif kind is not None and kind.keyed_by == "before":
            keys[step.id] = fingerprint(list(keys.values()), step.stage, options)
        else:
            where = [step.source, step.corpus] if step.source or step.corpus != DEFAULT_CORPUS else []
            keys[step.id] = fingerprint(chain, step.stage, options, _inputs(recipe, step, describe), recipe.models,
                                         *where)
        if kind is None:
            chains[step.corpus] = keys[step.id]
    return keys


def _output(recipe: Recipe, step: Step) -> Path:
    """What exists once a step has finished: its corpus's manifest, a run's run.json, what it wrote."""
    from ccr.corpus.corpus import MANIFEST

    if step.stage in KINDS:
        return KINDS[step.stage].output(recipe, step, step.options)
    return recipe.corpus_dir(step.corpus) / MANIFEST


def read_state(recipe: Recipe) -> dict[str, Any]:
    """The finished steps' records, minus those whose output is gone (a deleted corpus or run directory),
    and the content hashes of the source files."""
    path = recipe.work_dir / STATE_FILE
    fix = "delete it and run again: each stage then skips what it finished"
    state = paths.read_json(path, "pipeline state", fix=fix) if path.exists() else {"steps": {}}
    if not isinstance(state.get("steps"), dict):
        raise CcrError(f"pipeline state {path} holds no steps; {fix}")
    if not isinstance(state.get("hashes"), dict):
        state["hashes"] = {}  # the source files' content hashes (``_contents``): absent before 2026-12-06
    by_id = {s.id: s for s in recipe.steps}
    for step_id in list(state["steps"]):
        if step_id not in by_id or not _output(recipe, by_id[step_id]).exists():
            del state["steps"][step_id]
    return state


def _keys(recipe: Recipe, state: dict[str, Any]) -> dict[str, str]:
    """The steps' keys, with the records in ``state`` that a pipeline finished under the keys of
    before (source files by size and mtime) moved to these when nothing changed since."""
    keys = step_keys(recipe, _contents(state["hashes"]))
    records = state["steps"]
    if any(r["key"] != keys[i] for i, r in records.items()):
        before = step_keys(recipe, _size_and_mtime)
        for step_id, record in records.items():
            if record["key"] == before[step_id]:
                record["key"] = keys[step_id]
    return keys


def status(recipe: Recipe) -> list[StepStatus]:
    """What ``--dry-run`` prints: every step, its key and whether it would run."""
    state = read_state(recipe)
    keys, done = _keys(recipe, state), state["steps"]
    selected = {s.id for s in recipe.selected}
    out = []
    for step in recipe.steps:
        record = done.get(step.id)
        state_ = "done" if record and record["key"] == keys[step.id] else "changed" if record else "to do"
        out.append(StepStatus(step, keys[step.id], state_ if step.id in selected else f"not selected ({state_})"))
    return out


def describe(recipe: Recipe) -> str:
    """The plan as text: one line per step with its state and options."""
    note = " (models random: tiny random stand-ins, numbers meaningless)" if recipe.settings.models == "random" else ""
    lines = [f"recipe {recipe.path}: corpus {recipe.corpus}, runs in {recipe.work_dir / 'runs'}{note}"]
    for n, item in enumerate(status(recipe), 1):
        step = item.step
        where = [f"from={step.source}"] if step.source else []
        where += [f"corpus={step.corpus}"] if step.source or step.corpus != DEFAULT_CORPUS else []
        options = ", ".join(where + [f"{k}={v}" for k, v in effective_options(recipe, step).items()])
        lines.append(f"{n:>3}. {step.id:<22} {step.stage:<15} {item.state:<10} {options}")
    return "\n".join(lines)


def run_pipeline(recipe: Recipe, *, log: Callable[[str], None] = print, out: Any = None) -> list[StepStatus]:
    """Run the selected steps that are not done; returns what each selected step ended as.

    ``log`` takes progress lines; ``out`` (a rich console, default stdout) the tables and paths.
    """
    from ccr.printing import plain_console

    out = out if out is not None else plain_console()
    state = read_state(recipe)
    keys = _keys(recipe, state)
    if (recipe.work_dir / STATE_FILE).exists():
        atomic.write_json(recipe.work_dir / STATE_FILE, state)  # hashes and records brought up to date
    ended = []
    for step in recipe.selected:
        record = state["steps"].get(step.id)
        if record and record["key"] == keys[step.id]:
            log(f"{step.id}: done before with the same options and inputs, skipped")
            ended.append(StepStatus(step, keys[step.id], "done"))
            continue
        log(f"{step.id}: {step.stage} ...")
        started = time.time()
        options = effective_options(recipe, step)
        context = Context(log, out, changed=record is not None)
        if step.stage in KINDS:
            KINDS[step.stage].run(recipe, step, _noisy_rows(recipe, step, options), context)
        else:
            _corpus_stage(recipe, step, options, context)
        state["steps"][step.id] = {"stage": step.stage, "key": keys[step.id],
                                   "seconds": round(time.time() - started, 1),
                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic.write_json(recipe.work_dir / STATE_FILE, state)
        ended.append(StepStatus(step, keys[step.id], "ran"))
    return ended


def _corpus_stage(recipe: Recipe, step: Step, options: dict[str, Any], ctx: Context) -> None:
    import dataclasses

    from ccr.stages import table as stages
    from ccr.stages.runner import RunOptions

    stage = stages.get(step.stage)
    run_options = RunOptions(batch_size=step.batch_size or stage.batch_size, chunk_rows=recipe.settings.chunk_rows,
                             progress=recipe.settings.progress)
    arguments = {k: options.pop(k) for k in list(options) if k in stage.arguments}
    corpus = recipe.corpus_dir(step.corpus)
    if step.source:
        arguments[NEW_CORPUS] = corpus
    if recipe.models and any(f.name == "aliases" for f in dataclasses.fields(stage.config)):
        options["aliases"] = recipe.models
    configs: list[Any] = []
    summary = stages.run(step.stage, recipe.corpus_dir(step.source or step.corpus),
                         overrides=_noisy_rows(recipe, step, options), options=run_options, arguments=arguments,
                         on_config=lambda name, cfg: configs.append(cfg))
    outs = ", ".join(f"{n} {t}" for t, n in summary.rows_out.items()) or "nothing new"
    ctx.log(f"{step.id}: {summary.rows_in} rows in, {outs}, {summary.rows_failed} failed"
            + (f" ({summary.skipped_chunks} shards already done)" if summary.skipped_chunks else ""))
    if stage.summary is not None:
        from ccr.printing import say

        say(ctx.out, stage.summary(corpus, configs[-1]))


def _noisy_rows(recipe: Recipe, step: Step, options: dict[str, Any]) -> dict[str, Any]:
    """On a noisy copy, a stage or train step that reads MT rows and names no ``mt_model`` reads the
    noisy ones: they are what the copy was made for, and their keys (``KEY+noise``) exist only once
    it does. The keys go as text (``a,b``), which the step's config reads like ``--set``."""
    import dataclasses

    from ccr.corpus.corpus import MANIFEST
    from ccr.filter.noise import noisy_models
    from ccr.pipeline.recipe import option_classes

    corpus = recipe.corpus_dir(step.corpus)
    if step.source or "mt_model" in options or (step.stage in KINDS and step.stage != "train") \
            or not (corpus / MANIFEST).exists():
        return options
    if not any(f.name == "mt_model" for c in option_classes(step, []) or [] for f in dataclasses.fields(c)):
        return options
    keys = noisy_models(corpus)
    return options | {"mt_model": ",".join(keys.values())} if keys else options
