"""Benchmark: DCOT against the baseline on the toy domain with 30% of the German MT captions swapped.

Run: .venv/bin/python bench/demo_noise.py [--noise 0.3] [--seeds 0 1 2] [--epochs 10] [--out F]

Issue 18's last retrieval figure: the demo's pipeline with its learned toy models (``--models toy``),
on a toy corpus larger than the demo's so that the test split does not saturate (the demo's 13 test
images put every right answer in the top 5). Per seed: a toy corpus of that seed (images only:
``N_TRAIN``/``N_VAL``/``N_TEST``, all inside the scenes the toy models never learned from), ``ingest``,
``translate --lang de``, ``features``, then ``noise`` (a copy with ``--noise`` of the German MT rows
swapped with another item's, noise seed = the seed), ``score`` on the copy (``dcot_conf`` and the
rest of the static scores, which DCOT does not read but a user would compute), and both methods
trained on the noisy German rows with the same settings and training seed, scored on the test
split under ``ccr evaluate``'s default protocol (native German human queries, captioned gallery,
SumR of both directions). ``--noise 0`` trains on the clean rows of the same corpora.

Writes bench/results/demo_noise.json (or ``--out``): per method the median test SumR over seeds and
each seed's figures, with a random ranking's SumR under the same protocol.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from train import RESULTS, write_result  # noqa: E402  (bench/train.py: same machine record)

from ccr.pipeline.orchestrate import run_pipeline
from ccr.pipeline.recipe import load_recipe
from ccr.testing.proof import retrieval
from ccr.testing.toy_corpus import write_toy_corpus

N_TRAIN, N_VAL, N_TEST = 320, 60, 120
METHODS = ("baseline", "dcot")
TRAIN = {"epochs": 10, "batch_size": 32, "embed_dim": 64, "media_hidden": 64, "lr": 1e-3, "progress": False}


def recipe_text(noise: float, seed: int, epochs: int) -> str:
    """The demo's stages up to training, on a noisy copy when ``noise`` > 0."""
    corpus = "noisy" if noise > 0 else "corpus"
    steps = ['[[step]]\nstage = "ingest"\nformat = "jsonl"\nsrc = "captions.jsonl"',
             '[[step]]\nstage = "translate"\nlang = ["de"]',
             '[[step]]\nstage = "features"']
    if noise > 0:
        steps += [f'[[step]]\nstage = "noise"\nfrom = "corpus"\ncorpus = "noisy"\nrate = {noise}\n'
                  f'types = ["swap"]\nlang = ["de"]\nseed = {seed}',
                  '[[step]]\nstage = "score"\nid = "score-noisy"\ncorpus = "noisy"\nlang = ["de"]']
    settings = "\n".join(f"{k} = {json.dumps(v)}" for k, v in (TRAIN | {"epochs": epochs, "seed": seed}).items())
    for method in METHODS:
        steps += [f'[[step]]\nstage = "train"\nid = "{method}"\nmethod = "{method}"\ncorpus = "{corpus}"\n'
                  f'lang = ["de"]\n{settings}',
                  f'[[step]]\nstage = "evaluate"\nrun = "{method}"\ncorpus = "{corpus}"\nlang = ["de"]']
    return "[pipeline]\nprogress = false\n\n" + "\n\n".join(steps) + "\n"


def run_seed(work: Path, noise: float, seed: int, epochs: int) -> dict[str, dict[str, float]]:
    """Test retrieval of every method trained on one seed's corpus."""
    source = write_toy_corpus(work / "toy", n_train=N_TRAIN, n_val=N_VAL, n_test=N_TEST, seed=seed)
    path = work / "recipe.toml"
    path.write_text(recipe_text(noise, seed, epochs), encoding="utf-8")
    recipe = load_recipe(path, pipeline={"data_root": str(source), "work_dir": str(work), "models": "toy"})
    run_pipeline(recipe, log=lambda _: None, out=Console(file=io.StringIO()))
    return {m: {k: round(v, 1) for k, v in retrieval(work / "runs" / m / "eval" / "test.de.json").items()}
            for m in METHODS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.3, help="share of the German MT rows swapped")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=TRAIN["epochs"])
    parser.add_argument("--out", type=Path, default=RESULTS / "demo_noise.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    per_seed: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CCR_CACHE_DIR", str(Path(tmp) / "cache"))
        for seed in args.seeds:
            figures = run_seed(Path(tmp) / f"seed{seed}", args.noise, seed, args.epochs)
            for method, record in figures.items():
                per_seed[method].append({"seed": seed} | record)
            print(seed, figures, flush=True)
    methods = {m: {"median_test_sumr": statistics.median(r["sumr"] for r in rows), "seeds": rows}
               for m, rows in per_seed.items()}
    result = {
        "methods": methods,
        "dcot_minus_baseline": round(methods["dcot"]["median_test_sumr"] - methods["baseline"]["median_test_sumr"], 1),
        "chance_sumr": per_seed["baseline"][0]["chance_sumr"],
        "noise": {"share": args.noise, "type": "swap", "lang": "de"},
        "settings": {"train": TRAIN | {"epochs": args.epochs}, "seeds": args.seeds, "models": "toy",
                     "corpus": {"n_train": N_TRAIN, "n_val": N_VAL, "n_test": N_TEST}},
    }
    write_result(args.out, result, started)
    print(f"| method | test SumR, median of {len(args.seeds)} seeds | per seed | chance |\n|---|---:|---|---:|")
    for name, r in methods.items():
        print(f"| {name} | {r['median_test_sumr']} | {', '.join(str(s['sumr']) for s in r['seeds'])} | "
              f"{result['chance_sumr']} |")


if __name__ == "__main__":
    main()
