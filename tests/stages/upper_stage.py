"""A small stage for runner tests: upper-cases English captions into new rows and a side table.

Rows whose text mentions a star raise, so failures are planted deterministically; ``delay``
slows each batch down so a test can kill the process mid-run, and ``pause_before_marker`` holds
a commit between its shard files and its marker.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ccr.config import runtime_field
from ccr.corpus.corpus import Corpus
from ccr.stages.runner import (
    BatchResult,
    Plan,
    RunOptions,
    Stage,
    run_stage,
    table_chunks,
)


@dataclass
class UpperConfig:
    suffix: str = "!"  # appended to each output
    allow_stars: bool = False  # a later run with other settings that succeeds where this one failed
    delay: float = runtime_field(0.0)  # seconds per batch


def plan(corpus: Corpus, cfg: UpperConfig) -> Plan:
    import polars as pl

    def inputs() -> pl.LazyFrame:
        return corpus.scan("captions", with_side_tables=False).filter(pl.col("lang") == "en")

    return Plan(input_table="captions", chunks=table_chunks(inputs, "caption_id"),
                total=lambda: inputs().select(pl.len()).collect().item(), id_of=lambda r: r["caption_id"])


def setup(corpus: Corpus, cfg: UpperConfig, plan_: Plan) -> dict:
    return {"loaded": True}


def process(batch, state, cfg: UpperConfig) -> BatchResult:
    time.sleep(cfg.delay)
    rows, side = [], []
    for r in batch:
        if "star" in r["text"] and not cfg.allow_stars:
            raise ValueError(f"stars are not allowed: {r['caption_id']}")
        rows.append({"caption_id": f"{r['caption_id']}|mt:xx:upper", "media_id": r["media_id"], "split": r["split"],
                     "lang": "de", "text": r["text"].upper() + cfg.suffix, "origin": "mt",
                     "parent_id": r["caption_id"], "model": "upper"})
        side.append({"caption_id": r["caption_id"], "upper_len": len(r["text"])})
    return BatchResult(rows={"captions": rows, "captions.upper": side})


STAGE = Stage(name="upper", version="1", config=UpperConfig, plan=plan, setup=setup, process=process)


def read_ahead(batch, state, cfg: UpperConfig) -> None:
    """``PREFETCHING``'s ``Stage.prefetch``: notes the rows it was handed."""
    state.setdefault("read", set()).update(r["caption_id"] for r in batch)


def process_noting(batch, state, cfg: UpperConfig) -> BatchResult:
    """``process``, with ``ahead`` on each side row: whether a later batch was read before this one ran."""
    ids = {r["caption_id"] for r in batch}
    state["read"] = state.get("read", set()) - ids
    out = process(batch, state, cfg)
    for row in out.rows["captions.upper"]:
        row["ahead"] = bool(state["read"])
    return out


PREFETCHING = replace(STAGE, prefetch=read_ahead, process=process_noting)


def pause_before_marker(go: Path, nth: int = 1) -> None:
    """Stop this process's ``nth`` commit after its shard files are written and before its marker.

    ``GO.ready`` appears (holding the pid) when the commit waits; it goes on once ``go`` exists. A
    test can then act while a worker's shard is on disk but not yet committed.
    """
    commit = Corpus.commit
    calls = [0]

    def paused(self: Corpus, record) -> None:
        calls[0] += 1
        if calls[0] == nth:
            go.with_name(go.name + ".ready").write_text(str(os.getpid()))
            while not go.exists():
                time.sleep(0.01)
        commit(self, record)

    Corpus.commit = paused


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("delay", type=float)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--shard-index", type=int, default=0)
    parser.add_argument("--pause", type=Path, help="pause before the first marker until this file exists")
    args = parser.parse_args()
    if args.pause:
        pause_before_marker(args.pause)
    run_stage(Corpus.open(args.corpus), STAGE, UpperConfig(delay=args.delay),
              RunOptions(batch_size=4, chunk_rows=8, progress=False, num_shards=args.num_shards,
                         shard_index=args.shard_index))
