"""Benchmark: `ccr score` rows/s on 10k and 100k MT rows with the tiny models, and its peak memory.

Run: .venv/bin/python bench/score.py [--sizes 10000 100000] [--threads 1] [--work DIR]

Corpora: tests/filter/planted_corpus.py at N/2 media items x 2 captions (English + one Czech MT
row each, 16-d pooled features imported from npy), built once per size under --work in a child
process and reused. Scoring: a fresh child process per size runs the score stage end to end
(plan, read the rows, embed English and MT text with tiny/multilingual-minilm and MT text with
tiny/mclip-text, read the features, Sinkhorn per DCOT group of 64, commit), default options,
`--batch-size 8` groups, `torch.set_num_threads(--threads)`. The child reports wall seconds,
its CPU seconds (the machine is shared, so rows per CPU second is the figure that survives
other people's load), the time spent in the DCOT solves, and its peak RSS twice: ru_maxrss and /proc VmHWM (they agree
because the parent never grows: it imports neither torch nor polars and builds nothing itself).

Writes bench/results/score.json and prints the markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUILD = """
import sys
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from planted_corpus import build_planted_corpus
build_planted_corpus(Path(sys.argv[1]), media=int(sys.argv[2]) // 2, captions=2)
"""

CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
import ccr.ot as ot
from ccr.pipeline.runner import RunOptions
from ccr.pipeline.stages import run

solve = ot.dual_view_confidence
spent = [0.0]
def timed(*args, **kwargs):
    started = time.perf_counter()
    try:
        return solve(*args, **kwargs)
    finally:
        spent[0] += time.perf_counter() - started
ot.dual_view_confidence = timed
started, cpu = time.perf_counter(), time.process_time()
summary = run("score", sys.argv[1], overrides={"lang": "cs", "tiny": True}, options=RunOptions(progress=False, batch_size=8))
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": summary.rows_out["captions.score"], "ot_seconds": spent[0],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vmhwm_mb": int(hwm.split()[1]) / 1024}))
"""


def corpus_for(rows: int, work: Path) -> Path:
    root = work / f"rows-{rows}"
    if not (root / "corpus" / "manifest.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-c", BUILD, str(root), str(rows), str(ROOT / "tests" / "filter")],
                       check=True, capture_output=True, text=True)
    return root / "corpus"


def score(corpus: Path, threads: int) -> dict:
    for stale in (corpus / "captions.score", corpus / ".state" / "commits" / "score"):
        shutil.rmtree(stale, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(threads)], check=True, capture_output=True,
                          text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows_per_second"] = result["rows"] / result["seconds"]
    result["rows_per_cpu_second"] = result["rows"] / result["cpu_seconds"]
    return result


def markdown(result: dict) -> str:
    lines = ["| MT rows | wall seconds | rows/s | CPU seconds | rows per CPU second | DCOT solves (wall s) "
             "| peak RSS ru_maxrss (MB) | VmHWM (MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in result["sizes"].values():
        lines.append(f"| {size['rows']:,} | {size['seconds']:.1f} | {size['rows_per_second']:.0f} | "
                     f"{size['cpu_seconds']:.1f} | {size['rows_per_cpu_second']:.0f} | {size['ot_seconds']:.1f} | "
                     f"{size['peak_rss_mb']:.0f} | {size['vmhwm_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ccr-bench-score"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("CCR_CACHE_DIR", str(args.work / "cache"))
    result: dict = {
        "command": "python bench/score.py " + " ".join(sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "cpu": platform.processor(), "python": platform.python_version(),
                    "threads": args.threads, "loadavg_start": os.getloadavg()[0]},
        "sizes": {},
    }
    for rows in args.sizes:
        result["sizes"][str(rows)] = score(corpus_for(rows, args.work), args.threads)
        print(f"{rows}: {result['sizes'][str(rows)]}", file=sys.stderr)
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    sizes = result["sizes"]
    if "100000" in sizes:
        result["rows_per_second_100k"] = sizes["100000"]["rows_per_second"]
        result["peak_rss_mb_100k"] = sizes["100000"]["peak_rss_mb"]
    if "10000" in sizes:
        result["peak_rss_mb_10k"] = sizes["10000"]["peak_rss_mb"]
    out = ROOT / "bench" / "results" / "score.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
