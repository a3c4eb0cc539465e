"""Benchmark: `ccr report` on 10k and 100k MT rows, and each report in headless Chromium.

Run: .venv/bin/python bench/report.py [--sizes 10000 100000] [--work DIR] [--screenshots docs]

Corpora: tests/report/scored_corpus.py at N/6 toy images (64x64 PNG, 2 English captions each, MT
into de, fr and cs with back-translations, a score side table with 5% injected noise, a failed
caption, a missing image, descriptions and slots for one image), ingested and committed in the
runner's default 1024-row shards. Each is built once under --work and reused.
Generation: a fresh child process per size runs build_report into a new directory ("cold": every
thumbnail made) and again into the same directory ("warm": thumbnails cached); the child reports
wall seconds and its peak RSS (VmHWM). Browser: each report opened from disk in Chromium
(Debian's package, driven by Playwright, tests/report/report_browser.py); `first_page_ms` is the
page's own performance.now() when the pairs browser has drawn its first page (time from navigation
start), median of 3 fresh pages; sorting all rows by xl_sim, filtering by language, the next page
and the first search (which loads the search text) are timed around the interaction, in that order.
--screenshots DIR also writes report-overview.png and report-pairs.png of the toy demo (``ccr demo``:
the learned toy models) and of its noisy copy.

Writes bench/results/report.json and prints the markdown for bench/RESULTS.md.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "report"))

from report_browser import chromium, visit  # noqa: E402
from scored_corpus import write_scored_corpus  # noqa: E402

# Peak RSS is the child's VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into
# ru_maxrss across fork and exec, so a child started by a parent that had just built a 100k corpus
# reported the parent's 270 MB.
CHILD = """
import json, sys, time
from ccr.report import build_report
started = time.perf_counter()
summary = build_report(sys.argv[1], sys.argv[2])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - started, "rows": summary.rows, "media": summary.media,
                  "peak_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def corpus_for(rows: int, work: Path) -> Path:
    root = work / f"rows-{rows}"
    if not (root / "corpus" / "manifest.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        built = write_scored_corpus(root, images=rows // 6, videos=0, langs=("de", "fr", "cs"))
        print(f"built a corpus of {built.mt_rows} MT rows in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return root / "corpus"


def generate(corpus: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(corpus), str(out)], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def browse(index: Path) -> dict:
    """First page, sort, filter and search timings of one report in headless Chromium."""
    out: dict = {}
    with chromium() as browser:
        firsts = []
        for _ in range(3):
            v = visit(browser, index, "#pairs")
            v.wait_pairs()
            firsts.append(v.page.evaluate("CCR.timing.firstPage"))
            if len(firsts) < 3:
                v.page.close()
        out["first_page_ms"] = statistics.median(firsts)
        out["first_page_ms_all"] = firsts
        for name, action in [
            ("sort_ms", lambda: v.page.select_option("#sort", "xl_sim")),
            ("filter_ms", lambda: v.page.select_option("#filter-lang", "fr")),
            ("next_page_ms", lambda: v.page.click("#next")),
            ("search_ms", lambda: (v.page.fill("#search", "purple star"), v.page.press("#search", "Enter"))),
        ]:
            started = time.perf_counter()
            action()
            v.wait_pairs()
            out[name] = (time.perf_counter() - started) * 1000
        out["rows_after_search"] = int(v.page.get_attribute("#pairs-count", "data-total"))
        out["errors"] = v.errors
        out["non_file_requests"] = [u for u in v.requests if not u.startswith("file://")]
    return out


def screenshots(work: Path, dest: Path) -> None:
    """The README's pictures, from the toy demo: its report's overview, and the pairs browser of its
    noisy copy (20% of the German MT rows swapped) sorted by xl_sim, where the swaps come first."""
    from rich.console import Console

    from ccr.demo import run_demo
    from ccr.report import build_report

    root = work / "screens"
    shutil.rmtree(root, ignore_errors=True)
    quiet = Console(file=open(os.devnull, "w"))
    demo = root / "demo"
    run_demo(demo, models="toy", console=quiet, out=quiet)
    noisy = build_report(demo / "noisy", root / "noisy-report").index
    dest.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        v = visit(browser, demo / "report" / "index.html", "#overview", width=1280, height=800)
        v.page.screenshot(path=str(dest / "report-overview.png"), full_page=True)
        v = visit(browser, noisy, "#pairs?sort=xl_sim", width=1280, height=800)
        v.wait_pairs()
        v.page.screenshot(path=str(dest / "report-pairs.png"))
        assert not v.errors, v.errors


def markdown(result: dict) -> str:
    lines = ["| MT rows | media | cold: seconds | warm: seconds | peak RSS (MB) | on disk (MB) | first page (ms) "
             "| sort (ms) | filter (ms) | next page (ms) | first search (ms) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in result["sizes"].values():
        b = size["browser"]
        lines.append(f"| {size['rows']:,} | {size['media']:,} | {size['cold']['seconds']:.1f} | "
                     f"{size['warm']['seconds']:.1f} | {max(size['cold']['peak_rss_mb'], size['warm']['peak_rss_mb']):.0f} | "
                     f"{size['disk_mb']:.0f} | {b['first_page_ms']:.0f} | {b['sort_ms']:.0f} | {b['filter_ms']:.0f} | "
                     f"{b['next_page_ms']:.0f} | {b['search_ms']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000],
                        help="MT rows per corpus; none (`--sizes` alone) with --screenshots only redraws the pictures")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ccr-bench-report"))
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    result: dict = {
        "command": "python bench/report.py " + " ".join(sys.argv[1:]),
        "machine": {"nproc": os.cpu_count(), "cpu": platform.processor(), "python": platform.python_version(),
                    "loadavg_start": os.getloadavg()[0]},
        "sizes": {},
    }
    for rows in args.sizes:
        corpus = corpus_for(rows, args.work)
        out = args.work / f"report-{rows}"
        shutil.rmtree(out, ignore_errors=True)
        cold = generate(corpus, out)
        warm = generate(corpus, out)
        result["sizes"][str(rows)] = {"rows": cold["rows"], "media": cold["media"], "cold": cold, "warm": warm,
                                      "disk_mb": disk_mb(out), "browser": browse(out / "index.html")}
        print(f"{rows}: cold {cold['seconds']:.1f}s, warm {warm['seconds']:.1f}s, "
              f"peak {cold['peak_rss_mb']:.0f}/{warm['peak_rss_mb']:.0f} MB, "
              f"first page {result['sizes'][str(rows)]['browser']['first_page_ms']:.0f} ms", file=sys.stderr)
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    sizes = result["sizes"]
    if "10000" in sizes and "100000" in sizes:
        result.update(gen_seconds_100k=sizes["100000"]["cold"]["seconds"],
                      peak_rss_mb_10k=max(sizes["10000"]["cold"]["peak_rss_mb"], sizes["10000"]["warm"]["peak_rss_mb"]),
                      peak_rss_mb_100k=max(sizes["100000"]["cold"]["peak_rss_mb"],
                                           sizes["100000"]["warm"]["peak_rss_mb"]),
                      first_page_ms_100k=sizes["100000"]["browser"]["first_page_ms"])
        out_file = ROOT / "bench" / "results" / "report.json"
        out_file.write_text(json.dumps(result, indent=2) + "\n")
    if args.screenshots:
        screenshots(args.work, args.screenshots)
    print(json.dumps({k: v for k, v in result.items() if k not in ("sizes", "machine")}, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
