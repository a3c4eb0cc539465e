"""Benchmark: training throughput per method (tiny towers, CPU) and evaluation time for 1k x 5k retrieval.

Run: .venv/bin/python bench/train.py [--epochs 2] [--batch-size 128] [--threads 0] [--runs 3] [--methods a,b]

Corpus: ``ccr.testing.synthetic`` with 1,000 train items x 5 English captions (5,000 tuples with
German MT and back-translations), 200 val items and 1,000 test items with 5 English captions
each, and one MLLM-style description per item (LECCR's input); its English test captions are
the 1k x 5k retrieval (5,000 queries against 1,000 items).

Training: every method of ``ccr.train.model.methods.METHODS`` with the tiny BERT text tower (tiny/bert,
32-d, 2 layers), 64-d heads, the given global batch; samples/s counts training tuples per second
of training time (validation excluded), median over epochs. A method the synthetic corpus cannot
feed is listed with the reason instead.

Evaluation: ``ccr evaluate`` end to end (load the run, read the corpus, tokenize, embed both sides,
score, rank) on 5,000 queries x 1,000 items, median of ``--runs``; and the ranking alone,
``retrieval_metrics`` on the 5,000 x 1,000 similarity matrix.

Writes bench/results/train.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ccr.errors import CcrError
from ccr.testing.synthetic import write_synthetic_corpus
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.eval.metrics import retrieval_metrics
from ccr.train.model.methods import METHODS
from ccr.train.run.loop import train

RESULTS = Path(__file__).parent / "results"
TOWERS = {"text_tower": "tiny/bert", "embed_dim": 64, "media_hidden": 64, "lr": 1e-3, "progress": False}


def environment() -> dict[str, Any]:
    import torch

    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]
    return {"cpu": names[0] if names else platform.processor(), "cores": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(), "load_average": os.getloadavg()[0]}


def write_result(out: Path, result: dict[str, Any], started: float) -> None:
    """``result`` with what every bench file records (seconds since ``started``, command, machine,
    date), written as JSON to ``out``."""
    result |= {"seconds": round(time.perf_counter() - started, 1),
               "command": f"bench/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:]),
               "machine": environment(), "date": time.strftime("%Y-%m-%d")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def throughput(corpus: Path, work: Path, method: str, args: argparse.Namespace) -> dict[str, Any]:
    overrides = TOWERS | {"epochs": args.epochs, "batch_size": args.batch_size, "threads": args.threads}
    if method == "leccr":  # the synthetic corpus has one vector per item: throughput with one visual token
        overrides["allow_single_token"] = True
    try:
        result = train(corpus, work / method, method=method, overrides=overrides, log=lambda _: None)
    except CcrError as e:
        return {"skipped": str(e)}
    rates = [h["samples_per_second"] for h in result.history]
    return {"samples_per_second": round(statistics.median(rates), 1), "epochs": result.epochs,
            "val_sumr": round(next(iter(result.history[-1]["val"].values()))["sumr"], 1),  # de; rivrl: en
            "run": str(work / method)}


def eval_seconds(run: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        evaluate_run(run, split="test", langs=["en"], log=lambda _: None)
        times.append(time.perf_counter() - start)
    return times


def ranking_seconds(runs: int) -> float:
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((5000, 1000)).astype(np.float32)
    t2m = np.repeat(np.arange(1000), 5)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        retrieval_metrics(sim, t2m)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads while training (0: torch's default)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--methods", type=lambda v: v.split(","), default=list(METHODS),
                        help="comma-separated subset of the methods (default: all)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CCR_CACHE_DIR", str(Path(tmp) / "cache"))
        corpus = write_synthetic_corpus(Path(tmp) / "synth", n_train=1000, n_val=200, n_test=1000, per_item=3,
                                        captions_per_item=5, descriptions=True)
        methods = {name: throughput(corpus, Path(tmp) / "runs", name, args) for name in args.methods}
        trained = next(m["run"] for m in methods.values() if "run" in m)
        evals = eval_seconds(trained, args.runs)
    for m in methods.values():
        m.pop("run", None)
    result = {
        "train_samples_per_second": {k: v.get("samples_per_second") for k, v in methods.items()},
        "methods": methods,
        "eval_1k_5k_seconds": round(statistics.median(evals), 3),
        "eval_1k_5k_runs": [round(t, 3) for t in evals],
        "ranking_5k_1k_seconds": round(ranking_seconds(args.runs), 4),
        "settings": {"towers": TOWERS, "epochs": args.epochs, "batch_size": args.batch_size, "threads": args.threads,
                     "train_tuples": 5000, "queries": 5000, "gallery": 1000},
        "command": "bench/train.py " + " ".join(sys.argv[1:]),
        "machine": environment(),
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print("| method | samples/s | val SumR after training |\n|---|---:|---:|")
    for name, m in methods.items():
        print(f"| {name} | {m.get('samples_per_second', '-')} | {m.get('val_sumr', m.get('skipped', '-'))} |")
    print(f"\nccr evaluate, 5,000 queries x 1,000 items: {result['eval_1k_5k_seconds']} s end to end "
          f"(median of {args.runs}); ranking alone {result['ranking_5k_1k_seconds']} s")


if __name__ == "__main__":
    main()
