"""Benchmark: ``ccr features`` end to end against a bare ``CLIPModel.get_image_features`` loop.

Run: .venv/bin/python bench/features.py [--images 256] [--runs 3] [--batch 32] [--threads N] [--workers N]

The model is a random CLIP with ViT-B/32 dimensions (``build_tiny_clip(dir, **CLIP_VIT_B32)``,
built once into the ccr cache), so compute costs what the real openai/clip-vit-base-patch32 costs
and the ratio measures our overhead, not a tiny model. Images are 640x480 JPEGs (COCO-sized).

Every peer loads the model from disk, decodes every JPEG with PIL into RGB, preprocesses with the
model's own image processor and runs batches of the same size in float32 on the same threads. The
bare loop is a ``torch.utils.data.DataLoader`` over the image files: with no workers (decoding in
the main process) and with as many worker processes as ``ccr features`` uses (``--workers``, default
the stage's own: the machine's cores, at most 16). The bare loops keep the embeddings in memory;
``ccr features`` also plans from the corpus tables, applies EXIF rotation, stores float16 shards,
commits, records the manifest and writes the dataset card. Every peer runs once on one batch before
timing, so library imports are not counted. Each run times all three, in rotating order; overhead =
ours / bare - 1 per run, median over runs, in wall time (the figure asked for) and in this
process's CPU time (robust to a loaded machine; it leaves out the worker processes' decoding).

Writes bench/results/features.json (``overhead_vs_bare_clip`` against the main-process loop and
``overhead_vs_bare_workers`` against the loop with workers, fractions) and prints a markdown table.
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
from pathlib import Path
from typing import Any

import numpy as np

from ccr.corpus.corpus import Corpus
from ccr.formats.ingest.stage import ingest
from ccr.models import cache_dir
from ccr.stages.media_pool import resolve_workers
from ccr.stages.runner import RunOptions, run_stage
from ccr.testing.tiny_models import CLIP_VIT_B32, build_tiny_clip
from ccr.vision.features import STAGE, FeaturesConfig

sys.path.insert(0, str(Path(__file__).parent))
from caption import RESULTS, machine  # noqa: E402


def vit_b32_clip() -> Path:
    out = cache_dir() / "bench" / "clip-vit-b32-random"
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        build_tiny_clip(out, **CLIP_VIT_B32)
        (out / ".complete").write_text("ok")
    return out


def write_jpeg(job: tuple[Any, Path, int]) -> None:
    """One toy scene as a 640x480 JPEG with sensor-like noise (seeded per image, so any process order gives the same file)."""
    from PIL import Image

    from ccr.testing.toy_corpus import render_scene

    scene, target, seed = job
    pixels = np.asarray(render_scene(scene, size=480).resize((640, 480)), dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-12, 13, pixels.shape)
    Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)).save(target, quality=90)


def write_images(root: Path, n: int, processes: int | None = 1) -> Path:
    """COCO-sized JPEGs of the toy scenes, written by ``processes`` processes, and a jsonl that ingests them."""
    import multiprocessing

    from ccr.testing.toy_corpus import toy_scenes

    (root / "images").mkdir(parents=True)
    scenes = toy_scenes(n_train=n, n_val=0, n_test=0)
    jobs = [(scene, root / "images" / f"{scene.media_id}.jpg", i) for i, scene in enumerate(scenes)]
    if processes == 1:
        list(map(write_jpeg, jobs))
    else:
        with multiprocessing.Pool(processes) as pool:
            pool.map(write_jpeg, jobs, chunksize=16)
    lines = []
    for scene in scenes:
        lines.append(json.dumps({"media_id": scene.media_id, "path": f"images/{scene.media_id}.jpg", "split": "train",
                                 "modality": "image", "lang": "en", "text": "x", "caption_id": f"{scene.media_id}#0"}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


class Clock:
    """Wall time and this process's CPU time (all threads): the second barely moves when neighbours load the machine."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


class Images:
    """The bare loop's dataset: a file -> its preprocessed pixels, the usual ``DataLoader`` recipe."""

    def __init__(self, paths: list[Path], processor: Any):
        self.paths, self.processor = paths, processor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            return self.processor(images=[image.convert("RGB")], return_tensors="pt")["pixel_values"][0]


def bare_loop(model_path: Path, paths: list[Path], batch: int, workers: int = 0, device: str = "cpu",
              dtype: str = "float32") -> np.ndarray:
    """``get_image_features`` fed by a DataLoader with ``workers`` processes (0: decoding in this one)."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(device).eval()
    loader = DataLoader(Images(paths, AutoImageProcessor.from_pretrained(model_path)), batch_size=batch,
                        num_workers=workers, pin_memory=device.startswith("cuda"))
    out = []
    with torch.inference_mode():
        for pixels in loader:
            pixels = pixels.to(device, getattr(torch, dtype), non_blocking=True)
            out.append(model.get_image_features(pixel_values=pixels).pooler_output.float().cpu().numpy())
    return np.concatenate(out)


def ours(model_path: Path, corpus_dir: Path, batch: int, limit: int | None = None, **cfg: Any) -> Corpus:
    corpus = Corpus.open(corpus_dir)
    summary = run_stage(corpus, STAGE, FeaturesConfig(model=str(model_path), **{"device": "cpu", **cfg}),
                        RunOptions(batch_size=batch, limit=limit, progress=False))
    assert summary.rows_failed == 0
    return corpus


def fresh_copy(master: Path, work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(master, work)
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every peer (default: torch's)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: the stage's own)")
    args = parser.parse_args()
    workers = resolve_workers(args.workers)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_path = vit_b32_clip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        source = write_images(tmp_path / "src", args.images)
        master = tmp_path / "corpus"
        ingest("jsonl", source / "captions.jsonl", master, options=RunOptions(progress=False))
        ids = sorted(Corpus.open(master).ids("media"))
        paths = [source / "images" / f"{i}.jpg" for i in ids]
        peers = {
            "ours": lambda: ours(model_path, fresh_copy(master, tmp_path / "work"), args.batch, workers=workers),
            "bare": lambda: bare_loop(model_path, paths, args.batch),
            "bare_workers": lambda: bare_loop(model_path, paths, args.batch, workers),
        }
        bare_loop(model_path, paths[: args.batch], args.batch, workers)  # warm-up of all: imports, page cache
        ours(model_path, fresh_copy(master, tmp_path / "work"), args.batch, limit=args.batch, workers=workers)
        rates: dict[str, list[float]] = {peer: [] for peer in peers}
        wall: dict[str, list[float]] = {"bare": [], "bare_workers": []}
        cpu: dict[str, list[float]] = {"bare": [], "bare_workers": []}
        load = [os.getloadavg()[0]]
        for run in range(args.runs):
            clocks, outputs = {}, {}
            order = list(peers)[run % 3:] + list(peers)[:run % 3]
            for peer in order:
                with Clock() as clocks[peer]:
                    outputs[peer] = peers[peer]()
                rates[peer].append(args.images / clocks[peer].wall)
                print(f"run {run + 1}: {peer}: {rates[peer][-1]:.1f} images/s", flush=True)
            stored = np.concatenate(outputs["ours"].features("clip-vit-b32-random").get_many(ids)).astype(np.float32)
            for bare in wall:
                np.testing.assert_allclose(stored, outputs[bare], rtol=1e-2, atol=1e-2)
                wall[bare].append(clocks["ours"].wall / clocks[bare].wall - 1)
                cpu[bare].append(clocks["ours"].cpu / clocks[bare].cpu - 1)
            load.append(os.getloadavg()[0])

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 4)

    result = {
        "overhead_vs_bare_clip": median(wall["bare"]),
        "overhead_vs_bare_workers": median(wall["bare_workers"]),
        "overheads": [round(o, 4) for o in wall["bare"]],
        "overheads_vs_bare_workers": [round(o, 4) for o in wall["bare_workers"]],
        "cpu_time_overhead_median": median(cpu["bare"]),
        "cpu_time_overheads": [round(o, 4) for o in cpu["bare"]],
        "images_per_s_ours_median": round(statistics.median(rates["ours"]), 2),
        "images_per_s_bare_median": round(statistics.median(rates["bare"]), 2),
        "images_per_s_bare_workers_median": round(statistics.median(rates["bare_workers"]), 2),
        "workers": workers, "load_average_1min": [round(x, 2) for x in load],
        "images": args.images, "runs": args.runs, "batch": args.batch, "image_size": "640x480 JPEG",
        "model": "random CLIP, ViT-B/32 dimensions (build_tiny_clip(**CLIP_VIT_B32))",
        "command": f"bench/features.py --images {args.images} --runs {args.runs} --batch {args.batch}"
                   + (f" --threads {args.threads}" if args.threads else "")
                   + (f" --workers {args.workers}" if args.workers is not None else ""),
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print("\n| peer | images/s (median) | ccr overhead against it |\n|---|---|---|")
    print(f"| bare loop, decoding in the main process | {result['images_per_s_bare_median']} | "
          f"**{100 * result['overhead_vs_bare_clip']:.1f}%** (CPU time: {100 * result['cpu_time_overhead_median']:.1f}%) |")
    print(f"| bare loop, DataLoader with {workers} workers | {result['images_per_s_bare_workers_median']} | "
          f"**{100 * result['overhead_vs_bare_workers']:.1f}%** |")
    print(f"| ccr features, {workers} workers | {result['images_per_s_ours_median']} | - |")


if __name__ == "__main__":
    main()
