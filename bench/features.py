"""Benchmark: ``ccr features`` end to end against a bare ``CLIPModel.get_image_features`` loop.

Run: .venv/bin/python bench/features.py [--images 256] [--runs 7] [--batch 32] [--threads N]

The model is a random CLIP with ViT-B/32 dimensions (``build_tiny_clip(dir, **CLIP_VIT_B32)``,
built once into the ccr cache), so compute costs what the real openai/clip-vit-base-patch32 costs
and the ratio measures our overhead, not a tiny model. Images are 640x480 JPEGs (COCO-sized).

Both peers load the model from disk, decode every JPEG with PIL into RGB, preprocess with the
model's own image processor and run batches of the same size in float32 on the same threads. The
bare loop keeps the embeddings in memory; ``ccr features`` also plans from the corpus tables,
applies EXIF rotation, stores float16 shards, commits, records the manifest and writes the dataset
card. Both peers run once on one batch before timing, so library imports are not counted. Each run
times both, in alternating order; overhead = ours / bare - 1 per run, median over runs, in wall
time (the figure asked for) and in this process's CPU time (robust to a loaded machine).

Writes bench/results/features.json (``overhead_vs_bare_clip``, a fraction) and prints a markdown table.
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

import numpy as np

from ccr.corpus.corpus import Corpus
from ccr.formats.ingest.stage import ingest
from ccr.models import cache_dir
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


def write_images(root: Path, n: int) -> Path:
    """COCO-sized JPEGs of the toy scenes with sensor-like noise, and a jsonl that ingests them."""
    from PIL import Image

    from ccr.testing.toy_corpus import render_scene, toy_scenes

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lines = []
    for scene in toy_scenes(n_train=n, n_val=0, n_test=0):
        pixels = np.asarray(render_scene(scene, size=480).resize((640, 480)), dtype=np.int16)
        noisy = np.clip(pixels + rng.integers(-12, 13, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / "images" / f"{scene.media_id}.jpg", quality=90)
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


def bare_loop(model_path: Path, paths: list[Path], batch: int) -> np.ndarray:
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(model_path).eval()
    processor = AutoImageProcessor.from_pretrained(model_path)
    out = []
    for i in range(0, len(paths), batch):
        images = [Image.open(p).convert("RGB") for p in paths[i:i + batch]]
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out.append(model.get_image_features(pixel_values=pixels).pooler_output.numpy())
    return np.concatenate(out)


def ours(model_path: Path, corpus_dir: Path, batch: int, limit: int | None = None) -> Corpus:
    corpus = Corpus.open(corpus_dir)
    summary = run_stage(corpus, STAGE, FeaturesConfig(model=str(model_path), device="cpu"),
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
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both peers (default: torch's)")
    args = parser.parse_args()

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
        bare_loop(model_path, paths[: args.batch], args.batch)  # warm-up of both: imports, page cache
        ours(model_path, fresh_copy(master, tmp_path / "work"), args.batch, limit=args.batch)
        ours_ips, bare_ips, overheads, cpu_overheads = [], [], [], []
        for run in range(args.runs):
            clocks = {}
            for peer in (("ours", "bare") if run % 2 == 0 else ("bare", "ours")):
                work = fresh_copy(master, tmp_path / "work") if peer == "ours" else None
                with Clock() as clocks[peer]:
                    if work is not None:
                        corpus = ours(model_path, work, args.batch)
                    else:
                        reference = bare_loop(model_path, paths, args.batch)
                print(f"run {run + 1}: {peer}: {args.images / clocks[peer].wall:.1f} images/s", flush=True)
            stored = np.concatenate(corpus.features("clip-vit-b32-random").get_many(ids)).astype(np.float32)
            np.testing.assert_allclose(stored, reference, rtol=1e-2, atol=1e-2)
            ours_ips.append(args.images / clocks["ours"].wall)
            bare_ips.append(args.images / clocks["bare"].wall)
            overheads.append(clocks["ours"].wall / clocks["bare"].wall - 1)
            cpu_overheads.append(clocks["ours"].cpu / clocks["bare"].cpu - 1)

    result = {
        "overhead_vs_bare_clip": round(statistics.median(overheads), 4),
        "overheads": [round(o, 4) for o in overheads],
        "cpu_time_overhead_median": round(statistics.median(cpu_overheads), 4),
        "cpu_time_overheads": [round(o, 4) for o in cpu_overheads],
        "images_per_s_ours_median": round(statistics.median(ours_ips), 2),
        "images_per_s_bare_median": round(statistics.median(bare_ips), 2),
        "images": args.images, "runs": args.runs, "batch": args.batch, "image_size": "640x480 JPEG",
        "model": "random CLIP, ViT-B/32 dimensions (build_tiny_clip(**CLIP_VIT_B32))",
        "command": f"bench/features.py --images {args.images} --runs {args.runs} --batch {args.batch}"
                   + (f" --threads {args.threads}" if args.threads else ""),
        "machine": machine(), "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print("\n| peer | images/s (median) | overhead |\n|---|---|---|")
    print(f"| bare `get_image_features` loop | {result['images_per_s_bare_median']} | - |")
    print(f"| ccr features | {result['images_per_s_ours_median']} | **{100 * result['overhead_vs_bare_clip']:.1f}%** "
          f"(CPU time: {100 * result['cpu_time_overhead_median']:.1f}%) |")


if __name__ == "__main__":
    main()
