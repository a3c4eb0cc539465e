"""Benchmark: ``ccr features`` on an accelerator against the same bare loop fed by a DataLoader with workers.

Run (GPU machine): python bench/features_gpu.py [--images 2048] [--batch 256] [--runs 3] [--workers N]
Run (anywhere, a smoke run): .venv/bin/python bench/features_gpu.py --images 64 --batch 16 --runs 1

Issue 17 measured on an H200 (16 cores): ``ccr features`` 195 images/s, a bare fp16 loop decoding in
the main process 241, the same loop fed by a 16-worker DataLoader 745, the model alone 27,451: the
stage was bound by single-threaded JPEG decoding. Three peers, on the machine this runs on:

- ``ccr``: ``ccr features`` end to end (plan, decode and preprocess in the stage's worker
  processes one batch ahead, model, float16 shards, commits, manifest), ``--device auto``, dtype auto
  (float16 on CUDA), ``--decode`` as given (default cpu), ``--workers`` as given (default the
  stage's own: the machine's cores, at most 16);
- ``bare_workers``: ``get_image_features`` fed by ``torch.utils.data.DataLoader`` with the same
  number of worker processes (PIL decode + the model's image processor per item, pinned memory on
  CUDA), in the same dtype on the same device;
- ``model_only``: the model on one preprocessed batch already on the device, repeated.

The model is a randomly initialised CLIP whose vision tower has ``CLIPVisionConfig``'s defaults
(ViT-B/32: 768 wide, 12 layers, 224 px, patch 32), built locally (no hub). The JPEGs (640x480, toy
scenes with sensor-like noise, COCO-sized) are generated on this machine in parallel. Every peer runs
once on one batch first (imports, CUDA context, kernels). Figures are medians over runs; the ratio is
the median of per-run ratios ccr / bare_workers (target >= 0.8).

Writes bench/results/features_gpu.json: ``ccr_images_per_s``, ``bare_workers_images_per_s``,
``model_only_images_per_s``, ``ratio_vs_bare_workers``, ``device``, ``gpu_decode`` and the settings.
The GPU machine lacks polars (and av, datasets): carry their wheels as DEVELOPERS.md says.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ccr.corpus.corpus import Corpus
from ccr.formats.ingest.stage import ingest
from ccr.models import resolve
from ccr.stages.device import torch_settings
from ccr.stages.media_pool import resolve_workers
from ccr.stages.runner import RunOptions

sys.path.insert(0, str(Path(__file__).parent))
from caption import RESULTS, machine  # noqa: E402
from features import Clock, bare_loop, fresh_copy, ours, vit_b32_clip, write_images  # noqa: E402


def model_only(model_path: Path, batch: int, device: str, dtype: str, repeats: int) -> float:
    """Images per second of ``get_image_features`` on a preprocessed batch already on the device."""
    import torch
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device).eval()
    size = model.config.vision_config.image_size
    pixels = torch.randn(batch, 3, size, size, device=device, dtype=getattr(torch, dtype))

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        model.get_image_features(pixel_values=pixels)  # warm-up: kernels, cuBLAS handles
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            model.get_image_features(pixel_values=pixels)
        sync()
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: the stage's own)")
    parser.add_argument("--decode", default="cpu", choices=("cpu", "gpu", "auto"), help="ccr features --decode")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-repeats", type=int, default=20)
    parser.add_argument("--model", default=None, help="another CLIP (name or path) instead of the ViT-B/32-sized "
                                                      "one; tiny/clip leaves decoding alone to measure, without a GPU")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    workers = resolve_workers(args.workers)
    device, dtype = torch_settings(args.device, "auto")
    model_path = resolve(args.model).path if args.model else vit_b32_clip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        started = time.perf_counter()
        source = write_images(tmp_path / "src", args.images, processes=os.cpu_count())
        print(f"{args.images} JPEGs written in {time.perf_counter() - started:.1f} s", flush=True)
        master = tmp_path / "corpus"
        ingest("jsonl", source / "captions.jsonl", master, options=RunOptions(progress=False))
        ids = sorted(Corpus.open(master).ids("media"))
        paths = [source / "images" / f"{i}.jpg" for i in ids]
        cfg = {"device": device, "workers": workers, "decode": args.decode}
        peers = {
            "ccr": lambda: ours(model_path, fresh_copy(master, tmp_path / "work"), args.batch, **cfg),
            "bare_workers": lambda: bare_loop(model_path, paths, args.batch, workers, device, dtype),
        }
        bare_loop(model_path, paths[: args.batch], args.batch, workers, device, dtype)  # warm-up
        ours(model_path, fresh_copy(master, tmp_path / "work"), args.batch, limit=args.batch, **cfg)
        rates: dict[str, list[float]] = {peer: [] for peer in peers}
        ratios, load = [], [os.getloadavg()[0]]
        for run in range(args.runs):
            clocks, outputs = {}, {}
            for peer in (list(peers) if run % 2 == 0 else list(peers)[::-1]):
                with Clock() as clocks[peer]:
                    outputs[peer] = peers[peer]()
                rates[peer].append(args.images / clocks[peer].wall)
                print(f"run {run + 1}: {peer}: {rates[peer][-1]:.1f} images/s", flush=True)
            corpus = outputs["ccr"]
            store = corpus.features(corpus.runs()[-1]["models"]["features"])
            stored = np.concatenate(store.get_many(ids)).astype(np.float32)
            np.testing.assert_allclose(stored, outputs["bare_workers"], rtol=5e-2, atol=5e-2)
            ratios.append(clocks["bare_workers"].wall / clocks["ccr"].wall)
            load.append(os.getloadavg()[0])
        decode = corpus.runs()[-1]["models"]["decode"]
        model_rate = model_only(model_path, args.batch, device, dtype, args.model_repeats)

    result = {
        "ccr_images_per_s": round(statistics.median(rates["ccr"]), 1),
        "bare_workers_images_per_s": round(statistics.median(rates["bare_workers"]), 1),
        "model_only_images_per_s": round(model_rate, 1),
        "ratio_vs_bare_workers": round(statistics.median(ratios), 4),
        "ratios": [round(r, 4) for r in ratios],
        "device": device, "dtype": dtype, "gpu_decode": decode == "gpu", "workers": workers,
        "images": args.images, "batch": args.batch, "runs": args.runs, "image_size": "640x480 JPEG",
        "model": args.model or "random CLIP, vision tower = CLIPVisionConfig defaults (ViT-B/32), "
                               "build_tiny_clip(**CLIP_VIT_B32)",
        "load_average_1min": [round(x, 2) for x in load],
        "command": " ".join(["bench/features_gpu.py", *sys.argv[1:]]),
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
    }
    if not device.startswith("cuda"):
        result["note"] = "no GPU: a CPU run that proves the script works; its figures say nothing about a GPU"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features_gpu.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("ccr_images_per_s", "bare_workers_images_per_s",
                                             "model_only_images_per_s", "ratio_vs_bare_workers", "device",
                                             "gpu_decode")}, indent=1))


if __name__ == "__main__":
    main()
