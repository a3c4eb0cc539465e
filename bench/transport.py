"""Benchmark: ccr.ot.sinkhorn against POT's Sinkhorn solvers on CPU.

Run: .venv/bin/python bench/transport.py [--runs N] [--max-wait SECONDS] [--retries N] [--threads N]

Problems: 16 problems of 128x128 and one of 1024x1024, squared Euclidean costs between random
8-d Gaussian points, each scaled to max 1, uniform marginals, eps 0.05 and 0.01. Every solver
gets the same tolerance: the L2 norm of the marginal violation (POT's own criterion), checked
after iteration 1 and then every 10 iterations by all of them.

Timing: each solver runs in its own block after a pause, because numpy's OpenBLAS threads keep
spinning for a while after a call and on 2 cores that slowed a torch call that followed at once
3 to 5x; interleaving would be unfair to whoever runs second. A block is one untimed run, then
N timed runs (3 if a run takes over 0.3 s; the untimed run alone if it took over 2 s); the median
is reported. Before each case the script waits for the machine to be idle (bounded by
--max-wait), records the CPU share other processes took during the case, and reruns a case they
took over 15% of (--retries times), keeping the least disturbed attempt.

A POT solver counts as converged when its plans have no NaN and both marginals are within the
tolerance; only converged POT solvers compete for "POT best" on the 1024x1024 case.

Writes bench/results/transport.json and prints the markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import ot
import torch

from ccr.ot import sinkhorn

TOL = 1e-6
MAX_ITER = 10_000
PAUSE = 0.3
CASES = [(16, 128, 0.05), (16, 128, 0.01), (1, 1024, 0.05), (1, 1024, 0.01)]
POT_LOOP = "POT loop of ot.bregman.sinkhorn_log"

Solver = Callable[[], "np.ndarray | torch.Tensor"]


def problems(batch: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((batch, n, 8)), rng.standard_normal((batch, n, 8))
    cost = ((x[:, :, None] - y[:, None]) ** 2).sum(-1)
    return cost / cost.max(axis=(1, 2), keepdims=True)


def solvers(cost: np.ndarray, eps: float) -> dict[tuple[str, str], Solver]:
    """Each entry solves the whole batch from inputs already in that solver's own format."""
    batch, n, m = cost.shape
    out: dict[tuple[str, str], Solver] = {}
    for dtype in ("float32", "float64"):
        c_np = cost.astype(dtype)
        a, b = np.full(n, 1 / n, dtype=dtype), np.full(m, 1 / m, dtype=dtype)
        c_t = torch.tensor(c_np)

        def ours(c_t: torch.Tensor = c_t) -> torch.Tensor:
            return sinkhorn(c_t, eps, tol=TOL, max_iter=MAX_ITER)

        def pot_log(c: np.ndarray = c_np, a: np.ndarray = a, b: np.ndarray = b) -> np.ndarray:
            return np.stack([ot.bregman.sinkhorn_log(a, b, ci, eps, stopThr=TOL, numItermax=MAX_ITER) for ci in c])

        def pot_plain(c: np.ndarray = c_np, a: np.ndarray = a, b: np.ndarray = b) -> np.ndarray:
            return np.stack([ot.sinkhorn(a, b, ci, eps, stopThr=TOL, numItermax=MAX_ITER) for ci in c])

        out[("ours", dtype)] = ours
        out[(POT_LOOP, dtype)] = pot_log
        out[("POT loop of ot.sinkhorn", dtype)] = pot_plain
        for method in ("log_sinkhorn", "sinkhorn"):
            for backend, c_in in (("numpy", c_np), ("torch", c_t)):

                def batched(c_in: np.ndarray | torch.Tensor = c_in, method: str = method) -> np.ndarray | torch.Tensor:
                    res = ot.batch.solve_batch(c_in, eps, max_iter=MAX_ITER, tol=TOL, method=method, grad="detach")
                    return res.plan

                out[(f"POT ot.batch.solve_batch {method}, {backend}", dtype)] = batched
    return out


def marginal_error(plan: np.ndarray) -> float:
    """Worst L2 violation of either marginal over the batch, in float64."""
    p = plan.astype(np.float64)
    if not np.isfinite(p).all():
        return float("nan")
    n, m = p.shape[1:]
    rows = np.linalg.norm(p.sum(2) - 1 / n, axis=1)
    cols = np.linalg.norm(p.sum(1) - 1 / m, axis=1)
    return float(max(rows.max(), cols.max()))


def cpu_busy_seconds() -> float:
    """Busy CPU time of the whole machine so far (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(budget: float) -> float:
    """Wait (at most ``budget`` seconds) until other processes use under 10% of the CPU over a
    second: on a shared 2-core machine torch's threads stall behind other jobs. Returns the wait."""
    start = time.perf_counter()
    while True:
        busy = cpu_busy_seconds()
        time.sleep(1.0)
        quiet = (cpu_busy_seconds() - busy) / (os.cpu_count() or 1) < 0.1
        if quiet or time.perf_counter() - start > budget:
            return time.perf_counter() - start


def time_solver(fn: Solver, runs: int) -> tuple[np.ndarray, list[float], list[str]]:
    """The plan of an untimed first run, the timed runs, and the warnings the solver gave."""
    time.sleep(PAUSE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        plan = fn()
        first = time.perf_counter() - start
    plan = plan.numpy() if isinstance(plan, torch.Tensor) else plan
    messages = sorted({str(w.message).split(".")[0][:60] for w in caught})
    if first > 2.0:
        return plan, [first], messages
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(runs if first < 0.3 else 3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return plan, times, messages


def run_case(batch: int, n: int, eps: float, runs: int) -> dict:
    busy0, own0, wall0 = cpu_busy_seconds(), time.process_time(), time.perf_counter()
    cost = problems(batch, n, seed=n + int(eps * 1000))
    results = {key: time_solver(fn, runs) for key, fn in solvers(cost, eps).items()}
    reference = results[(POT_LOOP, "float64")][0]
    rows = []
    for (solver, dtype), (plan, times, messages) in results.items():
        err = marginal_error(plan)
        rows.append(
            {
                "solver": solver,
                "dtype": dtype,
                "median_s": statistics.median(times),
                "times_s": times,
                "runs": len(times),
                "marginal_error": err,
                "converged": bool(np.isfinite(err) and err <= TOL),
                "warnings": messages,
                "max_plan_diff_vs_pot_log_f64": float(np.abs(plan.astype(np.float64) - reference).max()),
            }
        )
    ours = {r["dtype"]: r for r in rows if r["solver"] == "ours"}
    for r in rows:
        r["ours_f32_over_this"] = ours["float32"]["median_s"] / r["median_s"]
    best = min((r for r in rows if r["solver"] != "ours" and r["converged"]), key=lambda r: r["median_s"])
    loop = [r["median_s"] for r in rows if r["solver"] == POT_LOOP and r["converged"]]
    _, info = sinkhorn(torch.tensor(cost, dtype=torch.float32), eps, tol=TOL, max_iter=MAX_ITER, return_info=True)
    others = (cpu_busy_seconds() - busy0) - (time.process_time() - own0)
    return {
        "batch": batch,
        "n": n,
        "eps": eps,
        "other_processes_cpu_share": max(0.0, others) / ((time.perf_counter() - wall0) * (os.cpu_count() or 1)),
        "plan_max": float(reference.max()),
        "ours_iterations": info.iterations.tolist(),
        "rows": rows,
        "pot_best": f"{best['solver']} ({best['dtype']})",
        "ratio_vs_pot_best": ours["float32"]["median_s"] / best["median_s"],
        "ratio_vs_pot_best_ours_float64": ours["float64"]["median_s"] / best["median_s"],
        "speedup_vs_pot_loop": min(loop) / ours["float32"]["median_s"] if loop else None,
        "max_plan_diff": ours["float32"]["max_plan_diff_vs_pot_log_f64"],
        "max_plan_diff_ours_float64": ours["float64"]["max_plan_diff_vs_pot_log_f64"],
        "not_converged": sorted(f"{r['solver']} ({r['dtype']})" for r in rows if not r["converged"]),
    }


def blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return next((p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"), None)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy_blas_threads": blas_threads(),
        "pot": ot.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg()[0],
    }


def markdown(result: dict) -> str:
    lines = []
    for case in result["cases"]:
        lines += [
            f"\n**{case['batch']} x {case['n']}x{case['n']}, eps {case['eps']}** (largest plan entry "
            f"{case['plan_max']:.2e}; ours: {max(case['ours_iterations'])} iterations; other processes used "
            f"{100 * case['other_processes_cpu_share']:.0f}% of the CPU meanwhile)\n",
            "| solver | dtype | median ms (runs) | ours f32 / this | converged to tol | max plan diff vs POT log f64 |",
            "|---|---|---|---|---|---|",
        ]
        for r in sorted(case["rows"], key=lambda r: r["median_s"]):
            conv = "yes" if r["converged"] else f"**no** (err {r['marginal_error']:.1e})"
            lines.append(
                f"| {r['solver']} | {r['dtype']} | {r['median_s'] * 1e3:.1f} ({r['runs']}) | "
                f"{r['ours_f32_over_this']:.3f} | {conv} | {r['max_plan_diff_vs_pot_log_f64']:.1e} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per solver and case")
    parser.add_argument("--max-wait", type=float, default=120.0, help="seconds to wait in all for an idle machine")
    parser.add_argument("--threads", type=int, help="threads for torch and numpy's BLAS alike (default: theirs)")
    parser.add_argument(
        "--retries", type=int, default=2, help="reruns of a case during which other processes took over 15%% of the CPU"
    )
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
    info = machine()
    cases, waited = [], 0.0
    for batch, n, eps in CASES:
        attempts = []
        for _ in range(1 + args.retries):
            waited += wait_for_quiet(max(0.0, args.max_wait - waited))
            attempts.append(run_case(batch, n, eps, args.runs))
            if attempts[-1]["other_processes_cpu_share"] < 0.15:
                break
        cases.append(min(attempts, key=lambda c: c["other_processes_cpu_share"]))
        cases[-1]["attempts"] = len(attempts)
    info["loadavg_end"] = os.getloadavg()[0]
    info["waited_for_quiet_s"] = waited
    batched = [c for c in cases if c["batch"] > 1]
    single = [c for c in cases if c["batch"] == 1]
    result = {
        "command": ".venv/bin/python bench/transport.py" + (f" --threads {args.threads}" if args.threads else ""),
        "runs": args.runs,
        "tol": TOL,
        "machine": info,
        "speedup_vs_pot_loop_batched": min(c["speedup_vs_pot_loop"] for c in batched),
        "ratio_vs_pot_best_1024": max(c["ratio_vs_pot_best"] for c in single),
        "max_plan_diff": max(c["max_plan_diff"] for c in cases),
        "summary": {
            f"{c['batch']}x{c['n']}x{c['n']} eps {c['eps']}": {
                key: c[key]
                for key in (
                    "speedup_vs_pot_loop",
                    "ratio_vs_pot_best",
                    "pot_best",
                    "ratio_vs_pot_best_ours_float64",
                    "max_plan_diff",
                    "max_plan_diff_ours_float64",
                    "not_converged",
                    "other_processes_cpu_share",
                    "attempts",
                )
            }
            for c in cases
        },
        "cases": cases,
    }
    out = Path(__file__).parent / "results" / "transport.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    headline = ("speedup_vs_pot_loop_batched", "ratio_vs_pot_best_1024", "max_plan_diff", "summary", "machine")
    print(json.dumps({k: result[k] for k in headline}, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
