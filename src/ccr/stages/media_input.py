"""The media rows a visual stage owes, and their decoded pixels, for every stage that reads media.

``ccr features`` and ``ccr caption`` read every media item the same way: these helpers keep the
two stages from borrowing each other's code, and keep the rule that an unreadable file costs its
row (a failure with the reason), never the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.corpus.corpus import Corpus
from ccr.corpus.schema import MODALITIES
from ccr.errors import CcrError
from ccr.stages.media import MediaError, Sampling, Visual, load_visual
from ccr.stages.runner import Chunk, Failure, table_chunks

if TYPE_CHECKING:
    import polars as pl


def media_input(corpus: Corpus, modality: str | None) -> tuple[Callable[..., Iterator[Chunk]], Callable[[], int]]:
    """Chunks of media rows still owed, and their count, for stages that read every media item."""
    import polars as pl

    if modality is not None and modality not in MODALITIES:
        raise CcrError(f"--modality {modality!r}: use image or video")
    if not corpus.files("media"):
        raise CcrError(f"{corpus.root} has no media rows; ingest a dataset first (ccr ingest)")

    def rows() -> pl.LazyFrame:
        lf = corpus.scan("media", with_side_tables=False).select("media_id", "modality", "path")
        return lf if modality is None else lf.filter(pl.col("modality") == modality)

    return table_chunks(rows, "media_id"), lambda: rows().select(pl.len()).collect().item()


def load_rows(batch: Sequence[dict[str, Any]], corpus: Corpus, media_root: Path | None,
              sampling: Sampling) -> tuple[list[tuple[dict[str, Any], Visual]], list[Failure]]:
    """Decode a batch's media; unreadable files become failures and the rest go on."""
    loaded, failures = [], []
    for row in batch:
        try:
            visual = load_visual(corpus.resolve_media(row["path"], media_root), row["modality"], sampling)
        except MediaError as e:
            failures.append(Failure(row["media_id"], str(e)))
            continue
        loaded.append((row, visual))
    return loaded, failures
