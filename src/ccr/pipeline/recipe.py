"""A pipeline recipe: a TOML plan of stages, read and checked as a whole before anything runs.

A recipe is what one researcher hands another ("rebuild the NRCCR Multi30K data with my own MT,
train, compare"), so a mistake in it must show up at once and all together: every problem (an
unknown stage or option, a bad value, a missing source file, a step whose input no earlier step
makes) is collected and reported in one error, never one per attempt.

```toml
[pipeline]
data_root = "data"            # source paths in steps are relative to this
work_dir = "work/multi30k"    # corpus in WORK/corpus, training runs in WORK/runs/STEP_ID

[models]                      # model name -> local path, for offline machines
"openai/clip-vit-base-patch32" = "/models/clip-vit-base-patch32"

[[step]]
stage = "ingest"
format = "multi30k"
src = "multi30k/data/task1/raw/train.en.gz"

[[step]]
stage = "train"
id = "nrccr-de"               # names the run directory; evaluate steps point at it
method = "nrccr"
lang = "de"
```

A step works on the corpus WORK/corpus unless it names another (``corpus = "noisy"``); a noise
step copies one corpus into another (``from = "corpus"``, ``corpus = "noisy"``), and steps on the
noisy copy read its noisy MT rows unless they name an ``mt_model``. Besides the corpus stages, a
step may be ``train``, ``evaluate``, ``export``, ``report``, ``info``, ``noise-eval`` or ``check``
(``ccr.pipeline.kinds``), so a whole experiment, the demo's among them, is one recipe:

```toml
[[step]]
stage = "check"                 # fails the run unless the figure is within bounds
file = "runs/nrccr-de/eval/test.de.json"
figure = "metrics.sumr"
min = 400
```

``--set KEY=VALUE`` overrides any of it: ``pipeline.models=random``, ``STEP_ID.epochs=2`` (one step),
``train.epochs=2`` (every step of a stage) or ``models.NAME=PATH``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from ccr.config import load_toml, parse_sets, resolve
from ccr.errors import CcrError
from ccr.models import toy_aliases
from ccr.pipeline.plan import DEFAULT_CORPUS, PipelineConfig, Recipe, Step
from ccr.train.legacy import renamed_hint

STEP_KEYS = ("stage", "id", "corpus", "from")  # every step's own keys, beside the stage's options
RUNNER_KEYS = ("batch_size",)  # corpus stages: how to run, never what (train has its own batch_size option)
NEW_CORPUS = "out"  # the Stage argument through which a stage writes a new corpus: a step's ``corpus``
CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PINNED = "\0pinned"  # marks, inside a raw step table, the keys --set gave (they win over models = "random")
DATA_KEY_NEEDS = {"mt": "mt", "bt": "bt", "descriptions": "descriptions", "slots": "slots"}


def load_recipe(path: Path | str, *, sets: list[str] | None = None, start: str | None = None,
                until: str | None = None, pipeline: dict[str, Any] | None = None) -> Recipe:
    """Read, override and check a recipe; every problem found is reported in one ``CcrError``.

    ``pipeline`` holds the CLI's own ``[pipeline]`` overrides (``--models``, ``--data-root``), which
    win over the file and over ``--set``.
    """
    path = Path(path)
    data = load_toml(path, what="recipe")
    problems: list[str] = []
    _apply_sets(data, parse_sets(sets), problems)
    for key in data:
        if key not in ("pipeline", "models", "step"):
            problems.append(f"unknown table [{key}]: a recipe has [pipeline], [models] and [[step]] tables")
    settings = _settings({**_table(data, "pipeline", problems), **(pipeline or {})}, problems)
    models = {str(k): str(v) for k, v in _table(data, "models", problems).items()}
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("no steps: add [[step]] tables, each with stage = \"NAME\"")
        raw_steps = []
    steps = _parse_steps(raw_steps, problems)
    selected = _select(steps, start, until, problems)
    checked = {id(s) for s in selected}
    for step in steps:
        if id(step) in checked:
            _check_options(step, Path(settings.data_root), problems)
    _check_order(steps, settings, problems)
    if start:  # the steps before --from must have run: their outputs are in the corpus already
        _check_order(selected, settings, problems, fix=f"start earlier than --from {start}")
    problems = list(dict.fromkeys(problems))  # two steps with one id would report the same thing twice
    if problems:
        listing = "\n".join(f"  {i}. {p}" for i, p in enumerate(problems, 1))
        raise CcrError(f"recipe {path} has {len(problems)} problem(s); fix them and run again:\n{listing}")
    if settings.models == "toy":  # the recipe's own [models] entries win
        models = toy_aliases() | models
    return Recipe(path, settings, models, steps, selected)


def _table(data: dict[str, Any], name: str, problems: list[str]) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        problems.append(f"[{name}] must be a table")
        return {}
    return value


def _apply_sets(data: dict[str, Any], sets: dict[str, str], problems: list[str]) -> None:
    """``--set TARGET.KEY=VALUE``: TARGET is pipeline, models, a step id or a stage name."""
    for dotted, value in sets.items():
        target, _, key = dotted.partition(".")
        if not key:
            problems.append(f"--set {dotted}={value}: name its target, e.g. pipeline.models=random or train.epochs=2")
        elif target in ("pipeline", "models"):
            data.setdefault(target, {})[key] = value
        else:
            hits = [s for s in data.get("step", []) if isinstance(s, dict) and target in (s.get("id"), s.get("stage"))]
            if not hits:
                problems.append(f"--set {dotted}: no step has id or stage {target!r}")
            for step in hits:
                step[key] = value
                step.setdefault(PINNED, set()).add(key)


def _settings(values: dict[str, Any], problems: list[str]) -> PipelineConfig:
    good = {}
    for key, value in values.items():
        try:
            good[key] = getattr(resolve(PipelineConfig, {key: value}), key)
        except CcrError as e:
            problems.append(f"[pipeline] {e}")
    settings = PipelineConfig(**good)
    if settings.tiny:
        settings.models = "random"
    return settings


def _parse_steps(raw: list[Any], problems: list[str]) -> list[Step]:
    from ccr.pipeline.kinds import KINDS

    known = stage_names()
    steps: list[Step] = []
    used: dict[str, int] = {}
    for n, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            problems.append(f"step {n}: must be a [[step]] table")
            continue
        stage = entry.get("stage")
        if stage not in known:
            problems.append(f"step {n}: unknown stage {stage!r}; stages: {', '.join(known)}"
                            if stage is not None else f"step {n}: no stage = \"NAME\"; stages: {', '.join(known)}")
            continue
        count = used[stage] = used.get(stage, 0) + 1
        step_id = str(entry.get("id") or (stage if count == 1 else f"{stage}-{count}"))
        if any(s.id == step_id for s in steps):
            problems.append(f"step {n}: id {step_id!r} is used twice; give each step its own id")
        corpus_stage = stage not in KINDS
        batch = entry.get("batch_size") if corpus_stage else None
        if batch is not None and (not isinstance(batch, int | str) or not str(batch).isdigit() or int(batch) < 1):
            problems.append(f"step {step_id!r}: batch_size must be a positive integer, got {batch!r}")
            batch = None
        own = STEP_KEYS + RUNNER_KEYS if corpus_stage else STEP_KEYS
        options = {k: v for k, v in entry.items() if k not in own and k != PINNED}
        corpus, source = (_corpus_name(step_id, key, entry.get(key), problems) for key in ("corpus", "from"))
        steps.append(Step(step_id, stage, options, int(batch) if batch is not None else None, entry.get(PINNED, set()),
                          corpus or DEFAULT_CORPUS, source))
    return steps


def _corpus_name(step_id: str, key: str, value: Any, problems: list[str]) -> str | None:
    """A corpus is named, never a path, so every corpus of a recipe lives in its work directory."""
    if value is None:
        return None
    if not isinstance(value, str) or not CORPUS_NAME.fullmatch(value) or value == "runs":
        problems.append(f"step {step_id!r}: {key} = {value!r} must name a corpus of the work directory "
                        f"(letters, digits, _ . -; not runs), e.g. {key} = \"noisy\"")
        return None
    return value


def stage_names() -> list[str]:
    from ccr.pipeline.kinds import KINDS
    from ccr.stages import table as stages

    return stages.names() + list(KINDS)


def _select(steps: list[Step], start: str | None, until: str | None, problems: list[str]) -> list[Step]:
    """``--from`` names the first step to run, ``--until`` the last (a step id, or a stage's first/last step)."""
    def find(name: str, flag: str, last: bool) -> int | None:
        hits = [i for i, s in enumerate(steps) if name in (s.id, s.stage)]
        if not hits:
            problems.append(f"{flag} {name}: no step has that id or stage; steps: {', '.join(s.id for s in steps)}")
            return None
        return hits[-1] if last else hits[0]

    first = find(start, "--from", last=False) if start else 0
    end = find(until, "--until", last=True) if until else len(steps) - 1
    if first is None or end is None:
        return []
    if first > end:
        problems.append(f"--from {start} comes after --until {until}: nothing would run")
    return steps[first:end + 1]


def option_classes(step: Step, problems: list[str]) -> list[type] | None:
    """The config dataclasses that own a step's options (train: shared options and the method's)."""
    from ccr.pipeline.kinds import KINDS

    if step.stage == "train":
        from ccr.train.config import TrainConfig
        from ccr.train.model.methods import get

        method = str(step.options.get("method", "baseline"))
        try:
            return [TrainConfig, get(method).Config]
        except CcrError as e:
            problems.append(f"step {step.id!r}: {e}")
        except ImportError as e:
            problems.append(f"step {step.id!r}: method {method!r} cannot be loaded ({e}); update ccr")
        return None
    kind = KINDS.get(step.stage)
    if kind is not None and kind.options is not None:
        return [kind.options]
    from ccr.stages import table as stages

    return [stages.get(step.stage).config]


def _facts(step: Step) -> tuple[tuple[str, ...], tuple[str, ...], set[str]]:
    """A step's required options, its source-path options and the options it takes beside its config's."""
    from ccr.pipeline.kinds import KINDS

    if step.stage in KINDS:
        return KINDS[step.stage].required, (), {"method"} if step.stage == "train" else set()
    from ccr.stages import table as stages

    stage = stages.get(step.stage)
    return stage.required, stage.path_options, set(stage.arguments) - {NEW_CORPUS}


def _check_options(step: Step, data_root: Path, problems: list[str]) -> None:
    """Every option known and well-typed, required ones present, source paths existing; values coerced in place."""
    classes = option_classes(step, problems)
    if classes is None:
        return
    required, path_options, extra = _facts(step)
    for key, value in list(step.options.items()):
        if key in extra:
            continue
        owner = next((c for c in classes if key in {f.name for f in dataclasses.fields(c)}), None)
        if owner is None:
            known = sorted({f.name for c in classes for f in dataclasses.fields(c)} | extra)
            hint = renamed_hint(key)
            problems.append(f"step {step.id!r} ({step.stage}): " + (hint or f"unknown option {key!r}; known: "
                                                                     f"{', '.join(known)}"))
            continue
        try:
            step.options[key] = getattr(resolve(owner, {key: value}), key)
        except CcrError as e:
            problems.append(f"step {step.id!r} ({step.stage}): {e}")
    for key in required:
        if not step.options.get(key):
            problems.append(f"step {step.id!r} ({step.stage}): needs {key} = ...")
    if step.stage == "check" and step.options.get("min") is None and step.options.get("max") is None:
        problems.append(f"step {step.id!r} (check): give min = ... or max = ... (or both)")
    for key in path_options:
        value = step.options.get(key)
        if not value:
            continue
        resolved = Path(value) if Path(value).is_absolute() else data_root / value
        step.options[key] = str(resolved)
        if not resolved.exists():
            problems.append(f"step {step.id!r} ({step.stage}): {key} {resolved} does not exist; "
                            f"get the file (see the recipe's comments) or fix pipeline.data_root")


def _train_needs(step: Step) -> set[str]:
    """A train step needs captions, visual input unless ``visual = "pixels"``, and its method's data keys."""
    needs = {"captions"} if step.options.get("visual") == "pixels" else {"captions", "features"}
    try:
        from ccr.train.model.methods import get

        cls = get(str(step.options.get("method", "baseline")))
        names = {f.name for f in dataclasses.fields(cls.Config)}
        cfg = resolve(cls.Config, {k: v for k, v in step.options.items() if k in names})
        keys = cls.needed_keys(cfg)  # a method's training keys hold what its gallery needs (leccr's descriptions)
    except (CcrError, ImportError):
        return needs  # already reported by the option check
    return needs | {DATA_KEY_NEEDS[k] for k in keys if k in DATA_KEY_NEEDS}


def provided() -> dict[str, dict[str, str]]:
    """Per corpus stage, the data keys it adds and what each is (from the stage table)."""
    from ccr.stages import table as stages

    return {name: dict(stages.get(name).provides) for name in stages.names()}


def _what(need: str, provides: dict[str, dict[str, str]]) -> str:
    """A data key as a message names it: what it is and which stages make it."""
    makers = [name for name, keys in provides.items() if need in keys]
    return f"{provides[makers[0]][need]} ({' or '.join(makers)})" if makers else need


def _needs(step: Step) -> set[str]:
    from ccr.pipeline.kinds import KINDS

    if step.stage == "train":
        return _train_needs(step)
    if step.stage in KINDS:
        return set(KINDS[step.stage].needs)
    from ccr.stages import table as stages

    return set(stages.get(step.stage).needs)


def _check_order(steps: list[Step], settings: PipelineConfig, problems: list[str], *,
                 fix: str = "add that step before it") -> None:
    """Each step's inputs come from an earlier step or are already in its corpus."""
    provides = provided()
    work = Path(settings.work_dir)
    have: dict[str, set[str]] = {}
    made: set[str] = set()  # corpora a step of this recipe writes from another

    def holds(name: str) -> set[str]:
        if name not in have:
            have[name] = _corpus_has(work / name, provides)
        return have[name]

    runs = {p.name for p in (work / "runs").glob("*") if (p / "run.json").exists()}
    for step in steps:
        if step.stage == "evaluate":
            run = step.options.get("run")
            if run and run not in runs:
                problems.append(f"step {step.id!r} (evaluate): run {run!r} is neither a train step before it "
                                f"nor a finished run; {fix}")
            continue
        copies = step.stage in provides and NEW_CORPUS in _stage_arguments(step.stage)
        if copies and not step.source:
            problems.append(f"step {step.id!r} ({step.stage}) writes a new corpus: name the one it reads and the "
                            f"one it writes, e.g. from = \"corpus\" and corpus = \"noisy\"")
            continue
        if step.source and not copies:
            problems.append(f"step {step.id!r} ({step.stage}): from = ... is for steps that write a new corpus "
                            f"(noise); name the corpus it works on with corpus = \"NAME\"")
            continue
        if copies and (step.corpus == step.source or step.corpus in made):
            problems.append(f"step {step.id!r} ({step.stage}): corpus {step.corpus!r} is its source or another "
                            f"step's copy; give the copy a new name, e.g. corpus = \"noisy\"")
        reads = step.source or step.corpus
        on = f" in corpus {reads!r}" if reads != DEFAULT_CORPUS else ""
        for need in sorted(_needs(step) - holds(reads)):
            problems.append(f"step {step.id!r} ({step.stage}) needs {_what(need, provides)}{on}, which no step "
                            f"before it makes and the corpus does not have yet; {fix}")
        if copies:
            made.add(step.corpus)
            have[step.corpus] = holds(reads) | set(provides[step.stage])
        else:
            holds(step.corpus).update(provides.get(step.stage, {}))
        if step.stage == "train":
            runs.add(step.id)


def _stage_arguments(name: str) -> set[str]:
    from ccr.stages import table as stages

    return set(stages.get(name).arguments)


def _corpus_has(root: Path, provides: dict[str, dict[str, str]]) -> set[str]:
    """What an existing corpus already offers, so a recipe may start from one (``--from``)."""
    from ccr.corpus.corpus import MANIFEST, Corpus

    if not (root / MANIFEST).exists():
        return set()
    corpus = Corpus.open(root)
    done = {c.stage for c in corpus.commits()}
    return {thing for stage in done for thing in provides.get(stage, {})}
