"""``ccr demo``: the demo recipe (``ccr/pipeline/demo.toml``) on the bundled toy corpus, in a fresh directory.

The demo is an ordinary recipe run by ``ccr pipeline``'s code, so it shows the whole pipeline as it
stands: a new stage joins it with one step in the recipe, never with code here.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

from ccr import paths
from ccr.errors import CcrError
from ccr.printing import say

RECIPE = Path(__file__).parent / "pipeline" / "demo.toml"
NOTES = {"toy": "demo models are small ones learned on the toy domain and shipped with ccr: they translate, "
                "see and describe toy scenes, so the figures below measure the pipeline",
         "random": "demo models are tiny random stand-ins built on the spot: every score and metric below is "
                   "meaningless",
         "real": "real default models (need a hub or a local cache)"}


def run_demo(dest: Path | str, *, models: str = "toy", console: Any, out: Any) -> Path:
    """Write the toy source files to ``dest/toy`` and run the demo recipe in ``dest``; returns the corpus path."""
    from ccr.pipeline.orchestrate import run_pipeline
    from ccr.pipeline.recipe import load_recipe
    from ccr.testing.learn.scenes import DEMO_CORPUS
    from ccr.testing.proof import proof_lines, prove
    from ccr.testing.toy_corpus import toy_scenes, write_toy_corpus

    if models not in NOTES:
        raise CcrError(f"--models {models}: use {' or '.join(NOTES)}")
    dest = Path(dest)
    if dest.is_dir() and any(dest.iterdir()):
        raise CcrError(f"{dest} is not empty; give the demo a new directory: ccr demo NEW_DIR")
    paths.output_dir(dest, "demo directory")
    say(console, (NOTES[models], "yellow"))
    source = write_toy_corpus(dest / "toy", **DEMO_CORPUS, references=True)
    shutil.copyfile(RECIPE, dest / "recipe.toml")  # to change a step and run it again with ccr pipeline run
    recipe = load_recipe(RECIPE, pipeline={"data_root": str(source), "work_dir": str(dest), "models": models})
    run_pipeline(recipe, log=functools.partial(say, console), out=out)
    proof = prove(dest, source, toy_scenes(**DEMO_CORPUS), runs=[s.id for s in recipe.steps if s.stage == "train"])
    (dest / "proof.json").write_text(json.dumps(proof, indent=1) + "\n", encoding="utf-8")
    say(out, (f"what this demo proved ({models} models; figures in {dest / 'proof.json'}):", "bold"))
    for line in proof_lines(proof):
        say(out, line)
    return recipe.corpus
