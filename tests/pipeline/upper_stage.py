"""A small stage for runner tests: upper-cases English captions into new rows and a side table.

Rows whose text mentions a star raise, so failures are planted deterministically; ``delay``
slows each batch down so a test can kill the process mid-run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ccr.config import runtime_field
from ccr.pipeline.corpus import Corpus
from ccr.pipeline.runner import BatchResult, Plan, RunOptions, Stage, run_stage, table_chunks


@dataclass
class UpperConfig:
    suffix: str = "!"  # appended to each output
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
        if "star" in r["text"]:
            raise ValueError(f"stars are not allowed: {r['caption_id']}")
        rows.append({"caption_id": f"{r['caption_id']}|mt:xx:upper", "media_id": r["media_id"], "split": r["split"],
                     "lang": "de", "text": r["text"].upper() + cfg.suffix, "origin": "mt",
                     "parent_id": r["caption_id"], "model": "upper"})
        side.append({"caption_id": r["caption_id"], "upper_len": len(r["text"])})
    return BatchResult(rows={"captions": rows, "captions.upper": side})


STAGE = Stage(name="upper", version="1", config=UpperConfig, plan=plan, setup=setup, process=process)


if __name__ == "__main__":
    corpus_dir, delay = Path(sys.argv[1]), float(sys.argv[2])
    run_stage(Corpus.open(corpus_dir), STAGE, UpperConfig(delay=delay),
              RunOptions(batch_size=4, chunk_rows=8, progress=False))
