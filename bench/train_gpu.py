"""Benchmark: `ccr train` with base-size towers: samples/s and the GPU's busy share, with 0 and N loader workers.

Run: .venv/bin/python bench/train_gpu.py [--size base|small] [--workers 0,N] [--items N] [--epochs 2]
(defaults: base towers and 4,000 items on CUDA; small towers and 400 items on the CPU, so the script
proves itself on a machine without a GPU). On a GPU machine: `PYTHONPATH=src python bench/train_gpu.py`
(that machine has torch, transformers and pyarrow; carry the wheels it lacks, polars among them).

Towers: a random BERT with transformers' ``BertConfig`` defaults (base: 768 wide, 12 layers, 12
heads, FFN 3,072, vocabulary 30,522; small: 256 wide, 4 layers), built here and saved to a
temporary directory with the tiny BERT's WordPiece tokenizer, no hub; the baseline method with the
default heads (embed_dim 1,536, media_hidden 1,024), batch 128, float16 autocast on CUDA (the
default). Visual input: ViT-B/32-sized pooled features (512-d, one vector per image) in a synthetic
corpus (``ccr.testing.synthetic``: items x 5 English captions, German MT; 200 val and 200 test items).

Each setting trains ``--epochs`` epochs in a fresh run directory; figures come from the last epoch
(the first pays for start-up: CUDA context, allocator, kernel selection):
- ``samples_per_s``: training tuples per second of training time, validation and checkpoints
  excluded, as the trainer logs it;
- ``step_share``: the share of that time inside the training step (copy to the device, forward,
  backward, optimizer, up to the loss read that waits for the GPU); the rest is the loop waiting for
  its next batch;
- ``gpu_busy_share`` (CUDA only): the share of that time between CUDA events recorded on the GPU's
  stream as each step begins and ends, i.e. the GPU working on a step rather than waiting for the
  host (launch gaps inside a step count as busy, so this is an upper bound).
The top-level figures are those of the setting the trainer picks by default on this device
(``workers`` unset: 0 on the CPU, N on CUDA). On a CPU shared with other jobs, two torch threads swing
tenfold with the other jobs' load; ``--threads 1`` keeps the CPU figures comparable.

Writes bench/results/train_gpu.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from train import environment

from ccr.testing.synthetic import write_synthetic_corpus
from ccr.testing.tiny_models import build_tiny_bert
from ccr.train.run import loop as train_loop
from ccr.train.run.distributed import pick_device
from ccr.train.run.feed import MAX_AUTO_WORKERS, machine_cores, worker_count

RESULTS = Path(__file__).parent / "results"
SIZES = {"base": {}, "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                               "intermediate_size": 1024}}  # base: BertConfig's defaults
FEATURE_DIM = 512  # ViT-B/32's pooled image embedding
CAPTIONS_PER_ITEM = 5


def build_text_tower(out: Path, size: str) -> Path:
    """A random BERT of ``size`` with the tiny BERT's tokenizer, saved where ``text_tower`` can name it."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    build_tiny_bert(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)  # the same random tower in every run of the bench
    BertModel(BertConfig(pad_token_id=tokenizer.pad_token_id, **SIZES[size])).save_pretrained(out)
    return out


@dataclass
class StepClock:
    """Wraps the loop's step: host seconds per step and, on CUDA, events on the stream around it."""

    cuda: bool
    steps: list[tuple[int, float, Any, Any]] = field(default_factory=list)  # epoch, seconds, start and end events

    def wrap(self, step: Any) -> Any:
        def timed(loop: Any, batch: Any, info: Any) -> Any:
            events = [torch.cuda.Event(enable_timing=True) for _ in range(2)] if self.cuda else [None, None]
            if self.cuda:
                events[0].record()
            start = time.perf_counter()
            report = step(loop, batch, info)
            if self.cuda:
                events[1].record()
            self.steps.append((info.epoch, time.perf_counter() - start, *events))
            return report
        return timed

    def epoch(self, epoch: int) -> tuple[int, float, float | None]:
        """(steps, host seconds in steps, GPU seconds between step events) of one epoch."""
        mine = [s for s in self.steps if s[0] == epoch]
        gpu = None
        if self.cuda:
            torch.cuda.synchronize()
            gpu = sum(start.elapsed_time(end) for _, _, start, end in mine) / 1000
        return len(mine), sum(seconds for _, seconds, _, _ in mine), gpu


def measure(corpus: Path, tower: Path, run: Path, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    clock = StepClock(cuda=pick_device(args.device).type == "cuda")
    original = train_loop._step
    train_loop._step = clock.wrap(original)
    try:
        result = train_loop.train(corpus, run, overrides={
            "text_tower": str(tower), "epochs": args.epochs, "batch_size": args.batch_size, "workers": workers,
            "device": args.device, "threads": args.threads, "progress": False, "patience": 0}, log=lambda _: None)
    finally:
        train_loop._step = original
        shutil.rmtree(run, ignore_errors=True)  # base-size checkpoints are large
    last = result.history[-1]
    steps, in_step, gpu = clock.epoch(len(result.history) - 1)
    seconds = steps * args.batch_size / last["samples_per_second"]
    return {"workers": workers, "samples_per_s": round(last["samples_per_second"], 1),
            "samples_per_s_by_epoch": [round(h["samples_per_second"], 1) for h in result.history],
            "step_share": round(in_step / seconds, 3),
            "gpu_busy_share": None if gpu is None else round(gpu / seconds, 3), "steps": steps}


def mean_tokens(tower: Path, corpus: Path) -> float:
    from transformers import AutoTokenizer

    from ccr.corpus.corpus import Corpus

    texts = Corpus.open(corpus).table("captions").get_column("text").to_list()[:2000]
    tokenizer = AutoTokenizer.from_pretrained(tower)
    return round(statistics.mean(len(ids) for ids in tokenizer(texts)["input_ids"]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", choices=sorted(SIZES), help="text tower size (default: base on CUDA, else small)")
    parser.add_argument("--items", type=int, help="training items, x5 captions (default: 4000 base, 400 small)")
    parser.add_argument("--workers", type=lambda v: [int(w) for w in v.split(",")],
                        help=f"loader worker counts to compare (default: 0 and the cores less one, at most "
                             f"{MAX_AUTO_WORKERS})")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default; 1 keeps a shared CPU's figures steady)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = pick_device(args.device)
    size = args.size or ("base" if device.type == "cuda" else "small")
    items = args.items or (4000 if size == "base" else 400)
    settings = args.workers or [0, max(1, min(MAX_AUTO_WORKERS, machine_cores() - 1))]
    default_workers = worker_count(None, device)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CCR_CACHE_DIR", str(Path(tmp) / "cache"))
        corpus = write_synthetic_corpus(Path(tmp) / "synth", n_train=items, n_val=200, n_test=200, per_item=3,
                                        dim=FEATURE_DIM, captions_per_item=CAPTIONS_PER_ITEM)
        tower = build_text_tower(Path(tmp) / "tower", size)
        tokens = mean_tokens(tower, corpus)
        rows = [measure(corpus, tower, Path(tmp) / f"run-{w}", w, args) for w in settings]
    chosen = next((r for r in rows if r["workers"] == default_workers), max(rows, key=lambda r: r["samples_per_s"]))
    result = {
        "samples_per_s": chosen["samples_per_s"], "gpu_busy_share": chosen["gpu_busy_share"],
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "workers": chosen["workers"], "default_workers": default_workers, "settings": rows,
        "towers": {"text": f"random BERT, BertConfig defaults{' + ' + json.dumps(SIZES[size]) if SIZES[size] else ''}",
                   "size": size, "visual": f"{FEATURE_DIM}-d pooled features (ViT-B/32-sized)",
                   "embed_dim": 1536, "media_hidden": 1024},
        "data": {"train_tuples": items * CAPTIONS_PER_ITEM, "mean_tokens_per_caption": tokens,
                 "batch_size": args.batch_size, "epochs": args.epochs, "threads": args.threads},
        "command": "bench/train_gpu.py " + " ".join(sys.argv[1:]),
        "machine": environment() | {"cuda": torch.version.cuda},
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_gpu.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{size} towers on {result['device']}, {items * CAPTIONS_PER_ITEM} tuples, batch {args.batch_size}\n")
    print("| workers | samples/s | step share | GPU busy share |\n|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['samples_per_s']} | {r['step_share']} | {r['gpu_busy_share'] or '-'} |")


if __name__ == "__main__":
    main()
