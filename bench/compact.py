"""Shards sized for reading: a corpus of many small commits, before and after ``ccr compact``.

Builds ROWS English captions (5 per media item) by committing CHUNK-row chunks through the stage
runner with a trivial stage, the way a model stage that commits small chunks for kill granularity
leaves a table (the end-of-run compaction is turned off for this), then times ``ccr info`` (the
command, median of RUNS), compacts with ``ccr.corpus.compact.compact``, and times it again.

    python bench/compact.py [--rows 2000000] [--chunk 1024] [--runs 3]

Writes bench/results/compact.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccr.corpus import compact as compaction
from ccr.corpus.corpus import Corpus
from ccr.stages.runner import (
    BatchResult,
    Chunk,
    DoneState,
    Plan,
    RunOptions,
    Stage,
    chunk_key,
    run_stage,
)

WORDS = "a man woman dog cat rides walks red blue small large street park beach ball holds looks near".split()
CAPTIONS_PER_MEDIA = 5


@dataclass
class SourceConfig:
    rows: int = 0  # captions to make


def _plan(corpus: Corpus, cfg: SourceConfig) -> Plan:
    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        for start in range(0, cfg.rows, options.chunk_rows):
            ids = [f"c{i:09d}" for i in range(start, min(start + options.chunk_rows, cfg.rows))]
            if not all(done.skip(i, False) for i in ids):
                yield Chunk(key=chunk_key(ids), items=ids, ids=ids)

    return Plan(input_table="captions", chunks=chunks, total=lambda: cfg.rows)


def _process(ids: Sequence[str], state: Any, cfg: SourceConfig) -> BatchResult:
    captions, media = [], []
    for caption_id in ids:
        n = int(caption_id[1:])
        media_id = f"m{n // CAPTIONS_PER_MEDIA:08d}"
        split = "train" if n % 100 < 90 else ("val" if n % 100 < 95 else "test")
        text = " ".join(WORDS[(n * 7 + k * 3) % len(WORDS)] for k in range(6 + n % 11))
        captions.append({"caption_id": caption_id, "media_id": media_id, "split": split, "lang": "en",
                         "text": text, "origin": "human", "parent_id": None, "model": None})
        if n % CAPTIONS_PER_MEDIA == 0:
            media.append({"media_id": media_id, "split": split, "modality": "image", "path": f"{media_id}.jpg"})
    return BatchResult(rows={"captions": captions, "media": media})


SOURCE = Stage(name="source", version="1", config=SourceConfig, plan=_plan, setup=lambda *a: None, process=_process)


def _files(root: Path) -> int:
    return sum(1 for _ in (root / "captions").glob("*.parquet"))


def _info_seconds(root: Path, runs: int) -> float:
    ccr = Path(sys.executable).with_name("ccr")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(ccr), "info", str(root)], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--chunk", type=int, default=1024, help="rows per commit of the small-shard corpus")
    parser.add_argument("--runs", type=int, default=3, help="ccr info timings per figure (the median is kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compact.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccr-bench-compact-"))
    try:
        root = work / "corpus"
        compaction.AUTO_MIN_COMMITS = sys.maxsize  # keep the small shards: the state before compaction
        start = time.perf_counter()
        run_stage(Corpus.open(root, create=True), SOURCE, SourceConfig(rows=args.rows),
                  RunOptions(batch_size=args.chunk, chunk_rows=args.chunk, progress=False))
        build = time.perf_counter() - start
        files_before = _files(root)
        info_before = _info_seconds(root, args.runs)
        start = time.perf_counter()
        compaction.compact(Corpus.open(root))
        compact_seconds = time.perf_counter() - start
        result = {
            "command": f"python bench/compact.py --rows {args.rows} --chunk {args.chunk} --runs {args.runs}",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end",
            "rows": args.rows, "chunk_rows": args.chunk,
            "build_seconds": round(build, 1),
            "files_before": files_before, "files_after": _files(root),
            "info_seconds_before": round(info_before, 3),
            "info_seconds_after": round(_info_seconds(root, args.runs), 3),
            "compact_seconds": round(compact_seconds, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
