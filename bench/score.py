"""Benchmark: `ccr score` throughput and memory, and how well its scores find planted noise by rate.

Run: .venv/bin/python bench/score.py [--parts throughput sweep] [--sizes 10000 100000] [--runs 3]
     [--rates 0.01 0.05 0.2 0.4] [--sweep-rows 20000] [--threads 1] [--work DIR]

Corpora: tests/filter/planted_corpus.py as it is (visual noise 0.1) at N/2 media items x 2
captions (English + one Czech MT row each, 16-d pooled features imported from npy), built once
per size under --work in a child process and reused.

Throughput: a fresh child process per size and run scores the corpus end to end (plan, read the
rows, embed English and MT text with tiny/multilingual-minilm and MT text with tiny/mclip-text,
read the features, one relaxed Sinkhorn per DCOT group of 64, commit), default options,
`--batch-size 8` groups, `torch.set_num_threads(--threads)`. The child reports wall seconds, its
CPU seconds (the machine is shared, so rows per CPU second is the figure that survives other
people's load), the time spent in the DCOT solves, and its peak RSS twice: ru_maxrss and /proc
VmHWM (they agree because the parent never grows: it imports neither torch nor polars and builds
nothing itself). Sizes are interleaved over --runs rounds; each figure is the median over runs.

Noise-rate sweep: on the --sweep-rows corpus (20k MT rows: at 1% that is 200 swapped captions),
per rate a child process injects swap noise (`ccr noise inject CORPUS --out NOISY --rate R --type swap --seed 0`),
back-translates the noisy MT rows with the tiny random Marian (rt_sim), scores them with the
defaults (relaxed plan) and, on a copy, with version 1's balanced plan (`--set ot_relax=0 --set
ot_eps=0.1`), and runs `ccr noise eval` on both. AUROC and precision at the clean share are
deterministic: one run per rate.

Writes bench/results/score.json (a part not run keeps its earlier figures) and prints the
markdown for bench/RESULTS.md.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "score.json"
SCORES = ("dcot_conf", "xl_sim", "xm_sim", "rt_sim")
BALANCED = {"ot_relax": 0.0, "ot_eps": 0.1}  # score version 1's plan

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
from ccr.stages.runner import RunOptions
from ccr.stages.table import run

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

SWEEP = """
import json, shutil, sys, time
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[4]))
from ccr.filter.noise import inject
from ccr.filter.noise_eval import evaluate
from ccr.stages.runner import RunOptions
from ccr.stages.table import run

clean, rate, work = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
balanced_settings = json.loads(sys.argv[5])
shutil.rmtree(work, ignore_errors=True)
quiet = RunOptions(progress=False)
_, keys = inject(clean, work / "relaxed", overrides={"rate": rate, "types": "swap", "seed": 0}, options=quiet)
common = {"lang": "cs", "mt_model": keys["cs"], "tiny": True}
started = time.perf_counter()
run("backtranslate", work / "relaxed", overrides=common, options=quiet)
seconds = {"backtranslate": time.perf_counter() - started}
shutil.copytree(work / "relaxed", work / "balanced")
out = {}
for name, extra in (("relaxed", {}), ("balanced", balanced_settings)):
    started = time.perf_counter()
    run("score", work / name, overrides=common | extra, options=RunOptions(progress=False, batch_size=8))
    seconds[f"score_{name}"] = time.perf_counter() - started
    out[name] = evaluate(work / name, out=work / f"{name}-eval").results["cs"]
print(json.dumps({"eval": out, "seconds": seconds}))
"""


def corpus_for(rows: int, work: Path) -> Path:
    root = work / f"rows-{rows}"
    if not (root / "corpus" / "manifest.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-c", BUILD, str(root), str(rows), str(ROOT / "tests" / "filter")],
                       check=True, capture_output=True, text=True)
    return root / "corpus"


def _child(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(corpus: Path, threads: int) -> dict:
    for stale in (corpus / "captions.score", corpus / ".state" / "commits" / "score"):
        shutil.rmtree(stale, ignore_errors=True)
    result = _child(CHILD, str(corpus), str(threads))
    result["rows_per_second"] = result["rows"] / result["seconds"]
    result["rows_per_cpu_second"] = result["rows"] / result["cpu_seconds"]
    return result


def throughput(sizes: list[int], runs: int, threads: int, work: Path) -> dict:
    """Per size, the median of each figure over ``runs`` fresh processes (sizes interleaved)."""
    corpora = {rows: corpus_for(rows, work) for rows in sizes}
    samples: dict[int, list[dict]] = {rows: [] for rows in sizes}
    for run in range(runs):
        for rows in sizes:
            samples[rows].append(score(corpora[rows], threads))
            print(f"throughput {rows} run {run + 1}: {samples[rows][-1]}", file=sys.stderr)
    out = {}
    for rows, runs_ in samples.items():
        median = {k: statistics.median(r[k] for r in runs_) for k in runs_[0]}
        out[str(rows)] = median | {"runs": runs_}
    return out


def sweep(rates: list[float], rows: int, threads: int, work: Path) -> dict:
    clean = corpus_for(rows, work)
    out = {}
    for rate in rates:
        result = _child(SWEEP, str(clean), str(rate), str(work / f"sweep-{rate}"), str(threads), json.dumps(BALANCED))
        relaxed, balanced = result["eval"]["relaxed"], result["eval"]["balanced"]
        out[str(rate)] = {
            "rows": relaxed["rows"], "noisy": relaxed["noisy"],
            "auroc": {c: relaxed["scores"][c]["auroc"] for c in SCORES if c in relaxed["scores"]},
            "precision_at_kept": {c: relaxed["scores"][c]["precision_at_kept"] for c in SCORES
                                  if c in relaxed["scores"]},
            "dcot_conf_balanced": {k: balanced["scores"]["dcot_conf"][k] for k in ("auroc", "precision_at_kept")},
            "seconds": result["seconds"],
        }
        print(f"sweep {rate}: {out[str(rate)]}", file=sys.stderr)
    return out


def markdown(result: dict) -> str:
    parts = []
    if "sizes" in result:
        lines = ["| MT rows | wall seconds | rows/s | CPU seconds | rows per CPU second | DCOT solves (wall s) "
                 "| peak RSS ru_maxrss (MB) | VmHWM (MB) |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for size in result["sizes"].values():
            lines.append(f"| {size['rows']:,.0f} | {size['seconds']:.1f} | {size['rows_per_second']:.0f} | "
                         f"{size['cpu_seconds']:.1f} | {size['rows_per_cpu_second']:.0f} | {size['ot_seconds']:.1f} | "
                         f"{size['peak_rss_mb']:.0f} | {size['vmhwm_mb']:.0f} |")
        parts.append("\n".join(lines))
    if "sweep" in result:
        lines = ["| swapped | noisy / rows | dcot_conf | dcot_conf, balanced (v1) | xl_sim | xm_sim | rt_sim "
                 "| P@kept dcot_conf | P@kept balanced |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for rate, r in result["sweep"].items():
            a, bal = r["auroc"], r["dcot_conf_balanced"]
            lines.append(f"| {float(rate):.0%} | {r['noisy']:,} / {r['rows']:,} | **{a['dcot_conf']:.4f}** | "
                         f"{bal['auroc']:.4f} | {a['xl_sim']:.4f} | {a['xm_sim']:.4f} | {a.get('rt_sim', float('nan')):.4f} | "
                         f"{r['precision_at_kept']['dcot_conf']:.4f} | {bal['precision_at_kept']:.4f} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=["throughput", "sweep"], default=["throughput", "sweep"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.01, 0.05, 0.2, 0.4])
    parser.add_argument("--sweep-rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ccr-bench-score"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("CCR_CACHE_DIR", str(args.work / "cache"))
    result: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    machine = {"nproc": os.cpu_count(), "cpu": platform.processor(), "python": platform.python_version(),
               "threads": args.threads, "loadavg_start": os.getloadavg()[0]}
    if "throughput" in args.parts:
        sizes = throughput(args.sizes, args.runs, args.threads, args.work)
        result.update({"command": "python bench/score.py " + " ".join(sys.argv[1:]), "sizes": sizes, "runs": args.runs})
        if "100000" in sizes:
            result["rows_per_second_100k"] = sizes["100000"]["rows_per_second"]
            result["peak_rss_mb_100k"] = sizes["100000"]["peak_rss_mb"]
        if "10000" in sizes:
            result["peak_rss_mb_10k"] = sizes["10000"]["peak_rss_mb"]
    if "sweep" in args.parts:
        runs = sweep(args.rates, args.sweep_rows, args.threads, args.work)
        result.update({"sweep_command": "python bench/score.py " + " ".join(sys.argv[1:]), "sweep": runs,
                       "sweep_rows": args.sweep_rows, "sweep_balanced_settings": BALANCED,
                       "dcot_auroc_by_rate": {rate: r["auroc"]["dcot_conf"] for rate, r in runs.items()},
                       "dcot_auroc_by_rate_balanced": {rate: r["dcot_conf_balanced"]["auroc"]
                                                       for rate, r in runs.items()}})
    machine["loadavg_end"] = os.getloadavg()[0]
    result.setdefault("machine_by_part", {}).update({part: machine for part in args.parts})
    result["machine"] = machine
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
