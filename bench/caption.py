"""Benchmark: ``ccr caption`` batched (8 images per generate) against one image at a time.

Run: .venv/bin/python bench/caption.py [--images 48] [--runs 5] [--max-new-tokens 32] [--threads 1]

Both peers are the caption stage end to end (plan, model load, media decoding, generation, shard
commit) on the same toy images with the tiny random LLaVA, greedy, the same max_new_tokens; only
the runner's batch size differs (8 vs 1). Each run times both on a fresh copy of the corpus, in
alternating order, so drift on a shared machine hits both; the speedup of a run is the ratio of the
two times measured in that run, and the median over runs is reported. Torch runs one thread by
default: a model this small gains nothing from two, and on a shared 2-core machine a second
thread that gets descheduled stalls every op (measured: 5x swings between identical runs).

Writes bench/results/caption.json (``speedup_batched_vs_single``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ccr.caption.stage import STAGE, CaptionConfig
from ccr.corpus.corpus import Corpus
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions, run_stage
from ccr.testing.toy_corpus import write_toy_corpus

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch
    import transformers

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def time_run(master: Path, work: Path, cfg: CaptionConfig, batch_size: int) -> float:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(master, work)
    start = time.perf_counter()
    summary = run_stage(Corpus.open(work), STAGE, cfg, RunOptions(batch_size=batch_size, progress=False))
    seconds = time.perf_counter() - start
    assert summary.rows_failed == 0 and summary.rows_out["descriptions"] == summary.rows_in
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("CCR_CACHE_DIR", str(tmp_path / "cache"))
        source = write_toy_corpus(tmp_path / "toy", n_train=args.images, n_val=0, n_test=0)
        master = tmp_path / "corpus"
        ingest("jsonl", source / "captions.jsonl", master, options=RunOptions(progress=False))
        cfg = CaptionConfig(mllm="tiny/llava", max_new_tokens=args.max_new_tokens, device="cpu")
        time_run(master, tmp_path / "warm", cfg, 8)  # builds the tiny model and warms the caches
        batched, single = [], []
        for run in range(args.runs):
            order = (8, 1) if run % 2 == 0 else (1, 8)
            for batch_size in order:
                seconds = time_run(master, tmp_path / "work", cfg, batch_size)
                (batched if batch_size == 8 else single).append(args.images / seconds)
                print(f"run {run + 1}: batch {batch_size}: {args.images / seconds:.1f} images/s", flush=True)

    ratios = [b / s for b, s in zip(batched, single)]
    result = {
        "speedup_batched_vs_single": round(statistics.median(ratios), 2),
        "ratios": [round(r, 2) for r in ratios],
        "images_per_s_batch8_median": round(statistics.median(batched), 2),
        "images_per_s_batch1_median": round(statistics.median(single), 2),
        "images": args.images, "runs": args.runs, "max_new_tokens": args.max_new_tokens, "model": "tiny/llava",
        "command": f"bench/caption.py --images {args.images} --runs {args.runs} "
                   f"--max-new-tokens {args.max_new_tokens} --threads {args.threads}",
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "caption.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print("\n| peer | images/s (median) | speedup |\n|---|---|---|")
    print(f"| ccr caption, batch 8 | {result['images_per_s_batch8_median']} | "
          f"**{result['speedup_batched_vs_single']}x** |")
    print(f"| ccr caption, batch 1 | {result['images_per_s_batch1_median']} | 1.0 |")


if __name__ == "__main__":
    main()
