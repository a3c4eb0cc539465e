"""Benchmark: noise-robust methods against the baseline on a corpus with 30% of its MT captions swapped.

Run: .venv/bin/python bench/train_noise.py [--noise 0.3] [--seeds 0 1 2] [--epochs 20] [--methods ...] [--out F]

Corpus: ``ccr.testing.synthetic`` (learnable by design: items are sums of concept vectors, captions
name the concepts, the MT caption translates word by word, val/test queries are human German
captions in other templates on unseen concept combinations), 200 train items x 2 English
captions (400 tuples), 80 val and 200 test items, 2 of 32 concepts per item: small enough that
20 epochs fit the noise, hard enough (200-item gallery) that no method saturates. Noise:
``mt_noise`` replaces that share of the training MT captions (and their back-translations) by
the MT caption of another, randomly drawn item: fluent text about the wrong image, the commonest
real MT-pair noise. The English captions stay clean. The truth is recorded per MT row
(``noise_type``). ``--noise 0`` gives the clean reference of the same corpus.

Every method trains with the same tiny towers (tiny/bert text tower, 64-d heads), batch, learning
rate, epochs and seeds, one thread, and its own defaults otherwise (baseline and NRCCR: the
hardest-negative triplet of NRCCR; DCOT: the baseline's loss with its per-pair confidences).
The checkpoint with the best validation SumR is scored on the test split under the one default
protocol (native German queries, captioned gallery, SumR of both directions); the table reports the
median over seeds. NRCCR is also scored with its translate-test fusion at 0.5
(``test_sumr_translate_test_0.5``), the protocol its released image results use. A method missing from ``METHODS`` is reported as absent. For DCOT the final
per-tuple confidences are also scored against the planted noise (ROC AUC: the chance that a
clean tuple gets a higher confidence than a swapped one).

Writes bench/results/train_noise.json (or ``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from train import RESULTS, write_result  # noqa: E402  (bench/train.py: same machine record)

from ccr.corpus.corpus import Corpus
from ccr.testing.synthetic import EN_DE, write_synthetic_corpus
from ccr.train.data.rows import train_records
from ccr.train.eval.evaluate import evaluate_run
from ccr.train.model.methods import METHODS
from ccr.train.run.loop import train

SHARED = {"text_tower": "tiny/bert", "embed_dim": 64, "media_hidden": 64, "batch_size": 32, "lr": 1e-3,
          "progress": False, "threads": 1, "patience": 0}
CORPUS = {"n_train": 200, "n_val": 80, "n_test": 200, "per_item": 2, "captions_per_item": 2}


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable") + 1.0
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def planted_noise(corpus: Path) -> np.ndarray:
    """Per training tuple (in the trainer's order): is its MT caption a swapped one?"""
    records = train_records(Corpus.open(corpus), ["de"], frozenset({"en", "mt"}), log=lambda _: None)
    translate = lambda text: " ".join(EN_DE.get(w, w) for w in text.split())  # noqa: E731
    return np.array([translate(en) != mt for en, mt in zip(records.texts["en"], records.texts["mt"], strict=True)])


def run_one(corpus: Path, out: Path, spec: str, seed: int, epochs: int) -> dict[str, Any]:
    """Train ``spec`` (``METHOD`` or ``METHOD:key=value,...``) with one seed; test SumR of its best checkpoint."""
    method, _, options = spec.partition(":")
    start = time.perf_counter()
    result = train(corpus, out, method=method, overrides=SHARED | {"epochs": epochs, "seed": seed},
                   sets=[o for o in options.split(",") if o], log=lambda _: None)
    test = evaluate_run(out, split="test", langs=["de"], log=lambda _: None)["de"]
    record = {"seed": seed, "test_sumr": round(test["sumr"], 1), "best_epoch": result.best_epoch,
              "best_val_sumr": round(result.best_value, 1), "seconds": round(time.perf_counter() - start, 1)}
    if method == "nrccr":  # NRCCR's own image protocol, which evaluate used for it by default before 2026-12
        fused = evaluate_run(out, split="test", langs=["de"], translate_test_weight=0.5, log=lambda _: None)["de"]
        record["test_sumr_translate_test_0.5"] = round(fused["sumr"], 1)
    if method == "dcot":
        state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
        record["confidence"] = state["model"]["objectives.0.confidence"].numpy()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.3, help="share of training MT captions swapped")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=["baseline", "nrccr", "dcot"],
                        help="METHOD or METHOD:key=value,... (e.g. dcot:loss=infonce)")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_noise.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CCR_CACHE_DIR", str(Path(tmp) / "cache"))
        corpus = write_synthetic_corpus(Path(tmp) / "synth", mt_noise=args.noise, **CORPUS)
        noisy = planted_noise(corpus)
        for i, spec in enumerate(args.methods):
            if spec.partition(":")[0] not in METHODS:
                runs[spec] = {"absent": "not in ccr.train.model.methods.METHODS when this ran"}
                continue
            per_seed = [run_one(corpus, Path(tmp) / f"run{i}-{s}", spec, s, args.epochs)
                        for s in args.seeds]
            for r in per_seed:
                if "confidence" in r:
                    conf = r.pop("confidence")
                    r["noise_auc"] = round(roc_auc(conf, ~noisy), 3) if noisy.any() else None
            runs[spec] = {"median_test_sumr": statistics.median(r["test_sumr"] for r in per_seed), "seeds": per_seed}
            print(spec, runs[spec], flush=True)
    result = {
        "methods": runs,
        "noise": {"share": args.noise, "type": "swap", "swapped_tuples": int(noisy.sum()), "tuples": len(noisy)},
        "settings": {"shared": SHARED, "epochs": args.epochs, "seeds": args.seeds, "corpus": CORPUS,
                     "chance_sumr": round(2 * (1 + 5 + 10) / CORPUS["n_test"] * 100, 1)},
    }
    write_result(args.out, result, started)
    print(f"| method | test SumR, median of {len(args.seeds)} seeds | per seed | DCOT noise AUC |\n|---|---:|---|---:|")
    for name, r in runs.items():
        if "absent" in r:
            print(f"| {name} | absent | - | - |")
            continue
        aucs = [s["noise_auc"] for s in r["seeds"] if s.get("noise_auc") is not None]
        print(f"| {name} | {r['median_test_sumr']} | {', '.join(str(s['test_sumr']) for s in r['seeds'])} | "
              f"{statistics.median(aucs) if aucs else '-'} |")


if __name__ == "__main__":
    main()
