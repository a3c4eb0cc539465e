"""The manifest's stage-run records: written when a run starts, completed when it ends.

A run killed with SIGKILL never reaches its end, so its record stays ``running``; its commit
markers name it (``Commit.run``), so what it committed is still counted. A record still marked
running whose worker no longer holds its shard lock is shown as ``killed``, and the stage's next
run that finds no live worker rewrites it so.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

from ccr.corpus import locks
from ccr.corpus.corpus import Corpus

RUNNING = "running"
KILLED = "killed"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def start(corpus: Corpus, record: dict[str, Any]) -> str:
    """Add a ``running`` record for this process; returns its id."""
    run_id = uuid.uuid4().hex[:16]
    corpus.append_run({"id": run_id, **record, "status": RUNNING, "pid": os.getpid(), "host": socket.gethostname(),
                       "started": now()})
    return run_id


def from_markers(corpus: Corpus, run_id: str) -> dict[str, Any]:
    """Rows in, out and failed that the markers of run ``run_id`` record."""
    rows_in, failed, out = 0, 0, {}
    for c in corpus.commits():
        if c.run != run_id:
            continue
        rows_in += c.inputs
        for table, n in c.rows.items():
            if table == "failures":
                failed += n
            else:
                out[table] = out.get(table, 0) + n
    return {"rows_in": rows_in, "rows_out": out, "rows_failed": failed}


def _alive(corpus: Corpus, run: dict[str, Any], live: dict[str, list[locks.Worker]]) -> bool:
    stage = run["stage"]
    if stage not in live:
        live[stage] = locks.live_workers(corpus.lock_dir, stage)
    return any(w.pid == run.get("pid") and w.shard_index == run.get("shard_index") for w in live[stage])


def shown(corpus: Corpus) -> list[dict[str, Any]]:
    """The records as they stand now: a dead ``running`` record is ``killed``, with what it committed."""
    live: dict[str, list[locks.Worker]] = {}
    out = []
    for run in corpus.runs():
        if run.get("status") == RUNNING and run.get("id") and not _alive(corpus, run, live):
            run = {**run, "status": KILLED, **from_markers(corpus, run["id"])}
        out.append(run)
    return out


def close_dead(corpus: Corpus, stage: str) -> None:
    """Rewrite ``stage``'s ``running`` records as killed; only while no worker of it is live."""
    dead = [r["id"] for r in corpus.runs() if r.get("stage") == stage and r.get("status") == RUNNING and r.get("id")]
    if not dead:
        return
    fields = {run_id: {"status": KILLED, **from_markers(corpus, run_id)} for run_id in dead}

    def update(runs: list[dict[str, Any]]) -> None:
        for run in runs:
            if run.get("id") in fields and run.get("status") == RUNNING:
                run.update(fields[run["id"]])

    corpus.update_runs(update)
