"""``ccr demo``: every stage that exists, on the bundled toy corpus, into a fresh directory.

Each issue that lands a stage adds its step here, so the demo is always the whole pipeline as it
stands. Models are the tiny random stand-ins unless ``--real-models`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccr.errors import CcrError

TINY_NOTE = "demo models are tiny random stand-ins built on the spot: every score and metric below is meaningless"


def run_demo(dest: Path | str, *, real_models: bool = False, console: Any, out: Any) -> Path:
    """Build ``dest/toy`` (source files), ``dest/corpus`` and ``dest/export``; returns the corpus path."""
    from ccr.pipeline.export import export
    from ccr.pipeline.info import show
    from ccr.pipeline.ingest.stage import ingest
    from ccr.pipeline.runner import RunOptions
    from ccr.testing.toy_corpus import write_toy_corpus

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise CcrError(f"{dest} is not empty; give the demo a new directory: ccr demo NEW_DIR")
    console.print("[yellow]real default models (need a hub or a local cache)[/]" if real_models else f"[yellow]{TINY_NOTE}[/]")
    source = write_toy_corpus(dest / "toy")
    corpus = dest / "corpus"
    options = RunOptions(progress=False)
    steps = [("ingest", lambda: ingest("jsonl", source / "captions.jsonl", corpus, options=options))]
    for name, step in steps:
        summary = step()
        console.print(f"[green]{name}[/]: {summary.rows_in} rows in, "
                      + ", ".join(f"{n} {t}" for t, n in summary.rows_out.items())
                      + f", {summary.rows_failed} failed", highlight=False)
    show(corpus, out)
    written = export(corpus, dest / "export" / "parquet", fmt="parquet")
    written += export(corpus, dest / "export" / "nrccr", fmt="nrccr", collection="toy")
    console.print(f"[green]export[/]: {len(written)} files under {dest / 'export'}", highlight=False)
    console.print(f"corpus: {corpus} (dataset card: {corpus / 'README.md'})", highlight=False)
    return corpus
