"""The stage table: name -> where its ``Stage`` lives.

The CLI, the demo and ``ccr pipeline`` all read this, so a new stage is one entry. Entries are
import paths, not objects, so listing stages never imports a stage's heavy dependencies.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ccr.config import load_toml, parse_sets, resolve
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.stages.runner import RunOptions, RunSummary, Stage, check_config, run_stage

# In the order a corpus goes through them: ``ccr --help`` lists the commands so.
STAGES: dict[str, str] = {
    "ingest": "ccr.formats.ingest.stage:STAGE",
    "import-features": "ccr.vision.feature_import:STAGE",
    "translate": "ccr.translate.stage:STAGE",
    "backtranslate": "ccr.translate.backtranslate:STAGE",
    "features": "ccr.vision.features:STAGE",
    "caption": "ccr.caption.stage:STAGE",
    "slots": "ccr.caption.slots:STAGE",
    "score": "ccr.filter.score:STAGE",
    "select": "ccr.filter.select:STAGE",
    "noise": "ccr.filter.noise:STAGE",
}


def names() -> list[str]:
    return list(STAGES)


def get(name: str) -> Stage:
    if name not in STAGES:
        raise CcrError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    module, attr = STAGES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def run(name: str, corpus_dir: Path | str, *, config: Path | None = None, sets: list[str] | None = None,
        overrides: dict[str, Any] | None = None, options: RunOptions | None = None,
        arguments: Mapping[str, Any] | None = None,
        on_config: Callable[[str, Any], None] | None = None) -> RunSummary:
    """Resolve a stage's config (defaults < TOML ``[NAME]`` < ``--set`` < CLI flags) and run it.

    The CLI, the demo and ``ccr pipeline`` all come through here. A ``[models]`` table in the TOML
    maps model names to local paths; it reaches stages whose config has an ``aliases`` field.
    Options and config are checked before the stage's ``open`` hook makes or copies a corpus, so a
    mistake leaves nothing behind; ``arguments`` are the hook's (ingest's media_root, noise's out).
    """
    stage, cfg = resolve_config(name, config=config, sets=sets, overrides=overrides)
    unknown = sorted(set(arguments or {}) - set(stage.arguments))
    if unknown:
        raise CcrError(f"{name} takes no {', '.join(unknown)}; its options: {', '.join(stage.arguments) or 'none'}")
    options = options or RunOptions()
    options.validate()
    check_config(stage, cfg, options)
    corpus = stage.open(Path(corpus_dir), cfg, dict(arguments or {})) if stage.open else Corpus.open(corpus_dir)
    if on_config:
        on_config(name, cfg)
    return run_stage(corpus, stage, cfg, options)


def resolve_config(name: str, *, config: Path | None = None, sets: list[str] | None = None,
                   overrides: dict[str, Any] | None = None) -> tuple[Stage, Any]:
    """The stage and its resolved config, without running it: a command that prepares something
    first (noise inject's copy) checks its options before that."""
    stage = get(name)
    layers = [load_toml(config, name), parse_sets(sets), {k: v for k, v in (overrides or {}).items() if v is not None}]
    aliases = load_toml(config).get("models", {}) if config else {}
    if aliases and any(f.name == "aliases" for f in dataclasses.fields(stage.config)):
        layers.insert(0, {"aliases": aliases})
    return stage, resolve(stage.config, *layers)
