"""Benchmark: ``ccr ingest jsonl`` against ``datasets.load_dataset("json")`` on the same file (issue #17).

Run: .venv/bin/python bench/ingest.py [--runs 3] [--media 400000] [--workdir DIR]

Data, generated here: MEDIA media x 5 English captions of 6-16 words (2M captions, about 370 MB
for 400k media), one jsonl row per caption with media_id, caption_id, path, split, lang and text;
a second file holds its first 10% (200k captions) for the memory comparison, a third its first half
(1M: growth with the pipeline warm, ``peak_rss_mb_1m``), and the 2M rows are
also written as Parquet (polars' defaults) and csv for ``ccr ingest --format parquet|csv`` against
``datasets.load_dataset("parquet"|"csv")``. A second shape, CC3M's: 2M media of one caption each
and no caption ids (so every row adds a media reference and a derived id to the checks' state), and
its first 200k rows (``one_per_media_*``).

Each side runs in its own subprocess, timed inside it from the call to its return (imports not
timed; ours imports polars, pyarrow and numpy before its clock starts, as ``import datasets`` does
pyarrow's): ours is ``ccr.formats.ingest.stage.ingest`` into a new corpus (every check, shards, commit
markers, manifest, dataset card); theirs is ``datasets.load_dataset("json", data_files=FILE,
cache_dir=FRESH)``, a fresh cache directory every run, so its cache never answers. Peak RSS is the
child's VmHWM. Runs alternate (ours, theirs, ours, ...) so that load from other users of this shared
2-core machine falls on both; each run records the CPU share other processes took meanwhile.
Figures are medians of --runs runs. ``info_seconds_2m`` is the wall time of ``ccr info`` on the
2M corpus (a process, CLI start included).

Writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("a man woman child dog cat horse bird red blue green small large young old wooden white black "
         "sitting standing running walking on in near under next to with the of street field beach table "
         "park water grass tree car bike ball holding looking playing riding eating two three group people").split()


def generate(path: Path, media: int, seed: int = 0, per_media: int = 5, caption_ids: bool = True) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for m in range(media):
            mid = f"img{m:07d}"
            for k in range(per_media):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16)))
                ids = {"caption_id": f"{mid}#{k}"} if caption_ids else {}
                fh.write(json.dumps({"media_id": mid, **ids, "path": f"images/{mid}.jpg", "split": "train",
                                     "lang": "en", "text": text}) + "\n")


def head(src: Path, dest: Path, lines: int) -> None:
    with src.open("rb") as fin, dest.open("wb") as fout:
        for _ in range(lines):
            fout.write(fin.readline())


def child(side: str, src: Path, out: Path) -> None:
    """One timed run in this process; prints seconds and the process's peak RSS."""
    if side == "ours":
        import numpy  # noqa: F401  ccr imports its data libraries on first use; ``import datasets`` imports
        import polars  # noqa: F401  pyarrow's at once: both sides start the clock with theirs imported
        import pyarrow.json  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        from ccr.formats.ingest.stage import ingest
        from ccr.stages.runner import RunOptions

        start = time.perf_counter()
        ingest(src.suffix[1:], src, out, options=RunOptions(progress=False))
    else:
        import datasets

        datasets.disable_progress_bars()
        start = time.perf_counter()
        builder = {".parquet": "parquet", ".csv": "csv"}.get(src.suffix, "json")
        datasets.load_dataset(builder, data_files=str(src), cache_dir=str(out), split="train")
    seconds = time.perf_counter() - start
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm / 1024}))


def _jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(side: str, src: Path, out: Path) -> dict[str, Any]:
    """A child run, and the share of the machine's CPU that other processes took meanwhile."""
    shutil.rmtree(out, ignore_errors=True)
    busy0, total0, own0 = *_jiffies(), _children_cpu()
    proc = subprocess.run([sys.executable, __file__, "--child", side, str(src), str(out)], check=True,
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    busy1, total1, own1 = *_jiffies(), _children_cpu()
    tick = os.sysconf("SC_CLK_TCK")
    others = max(0.0, (busy1 - busy0) / tick - (own1 - own0)) / max(1e-9, (total1 - total0) / tick)
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "others_cpu_share": round(others, 3)}


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def pair(name: str, ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, float]:
    """The figures of one more source at 2M against ``datasets`` on it, under keys named ``name``."""
    mine, hf = median(ours, "seconds"), median(theirs, "seconds")
    return {f"{name}_ratio_vs_hf_datasets_2m": round(mine / hf, 3), f"{name}_seconds_2m": round(mine, 2),
            f"hf_datasets_{name}_seconds_2m": round(hf, 2),
            f"{name}_peak_rss_mb_2m": round(median(ours, "peak_rss_mb"), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--media", type=int, default=400_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ccr-bench-ingest"))
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "SRC", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    big, small = work / "captions_2m.jsonl", work / "captions_200k.jsonl"
    if not big.exists():
        generate(big, args.media)
    head(big, small, args.media * 5 // 10)
    half = work / "captions_1m.jsonl"  # the growth from 1M to 2M, with the pipeline warm in both
    head(big, half, args.media * 5 // 2)
    table, comma = work / "captions_2m.parquet", work / "captions_2m.csv"
    if any(not p.exists() or p.stat().st_mtime < big.stat().st_mtime for p in (table, comma)):
        import polars as pl

        rows = pl.read_ndjson(big)
        rows.write_parquet(table)
        rows.write_csv(comma)
    single, single_small = work / "one_per_media_2m.jsonl", work / "one_per_media_200k.jsonl"
    if not single.exists():
        generate(single, args.media * 5, seed=1, per_media=1, caption_ids=False)
    head(single, single_small, args.media * 5 // 10)
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"ours_2m": [], "hf_2m": [], "ours_200k": [], "ours_1m": [],
                                             "ours_parquet_2m": [],
                                             "hf_parquet_2m": [], "ours_csv_2m": [], "hf_csv_2m": [],
                                             "ours_one_2m": [], "hf_one_2m": [], "ours_one_200k": []}
    for _ in range(args.runs):
        runs["ours_2m"].append(run("ours", big, work / "corpus_2m"))
        runs["hf_2m"].append(run("hf", big, work / "hf_cache"))
        runs["ours_200k"].append(run("ours", small, work / "corpus_200k"))
        runs["ours_1m"].append(run("ours", half, work / "corpus_1m"))
        runs["ours_parquet_2m"].append(run("ours", table, work / "corpus_parquet_2m"))
        runs["hf_parquet_2m"].append(run("hf", table, work / "hf_cache"))
        runs["ours_csv_2m"].append(run("ours", comma, work / "corpus_csv_2m"))
        runs["hf_csv_2m"].append(run("hf", comma, work / "hf_cache"))
        runs["ours_one_2m"].append(run("ours", single, work / "corpus_one_2m"))
        runs["hf_one_2m"].append(run("hf", single, work / "hf_cache"))
        runs["ours_one_200k"].append(run("ours", single_small, work / "corpus_one_200k"))
        print(json.dumps({k: v[-1] for k, v in runs.items()}), flush=True)
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "ccr"), "info", str(work / "corpus_2m")], check=True,
                   capture_output=True)
    info_s = time.perf_counter() - start
    sys.path.insert(0, str(ROOT / "src"))
    from ccr.corpus.corpus import Corpus

    corpus = Corpus.open(work / "corpus_2m")
    rows = corpus.count("captions")
    ours, theirs = median(runs["ours_2m"], "seconds"), median(runs["hf_2m"], "seconds")
    result = {
        "ratio_vs_hf_datasets_2m": round(ours / theirs, 3),
        "rows_per_s_2m": round(rows / ours),
        "peak_rss_mb_200k": round(median(runs["ours_200k"], "peak_rss_mb"), 1),
        "peak_rss_mb_2m": round(median(runs["ours_2m"], "peak_rss_mb"), 1),
        "peak_rss_mb_1m": round(median(runs["ours_1m"], "peak_rss_mb"), 1),
        "files_2m": len(corpus.files("captions")),
        "info_seconds_2m": round(info_s, 3),
        "ours_seconds_2m": round(ours, 2),
        "hf_datasets_seconds_2m": round(theirs, 2),
        "hf_datasets_peak_rss_mb_2m": round(median(runs["hf_2m"], "peak_rss_mb"), 1),
        "ours_seconds_200k": round(median(runs["ours_200k"], "seconds"), 2),
        **pair("parquet", runs["ours_parquet_2m"], runs["hf_parquet_2m"]),
        **pair("csv", runs["ours_csv_2m"], runs["hf_csv_2m"]),
        **pair("one_per_media", runs["ours_one_2m"], runs["hf_one_2m"]),
        "one_per_media_peak_rss_mb_200k": round(median(runs["ours_one_200k"], "peak_rss_mb"), 1),
        "captions_2m": rows,
        "source_mb": round(big.stat().st_size / 2**20, 1),
        "runs": runs,
        "command": f"{Path(sys.executable).name} bench/ingest.py --runs {args.runs}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = ROOT / "bench" / "results" / "ingest.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
