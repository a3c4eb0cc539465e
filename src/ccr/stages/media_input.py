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
from ccr.stages.media import MediaError
from ccr.stages.media_pool import MediaPool, resolve_workers
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


class MediaReader:
    """A stage's media rows through a ``MediaPool``: the job's result per row, or a failure with the reason.

    ``job(path, modality)`` decodes one row (and may preprocess it); ``MediaError`` becomes the
    row's failure and the rest go on. Any other error is raised once the whole batch is collected,
    so the runner's row-by-row retry can tell which row it was.
    """

    def __init__(self, corpus: Corpus, media_root: str | None, job: Callable[[Path | None, str], Any],
                 workers: int | None):
        self.corpus = corpus
        self.media_root = Path(media_root) if media_root else corpus.media_root  # read once, not per row
        self.pool = MediaPool(job, resolve_workers(workers))

    def _items(self, batch: Sequence[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
        return [(row["media_id"], (self.corpus.resolve_media(row["path"], self.media_root), row["modality"]))
                for row in batch]

    def prefetch(self, batch: Sequence[dict[str, Any]]) -> None:
        """Start reading rows the stage will ask for next."""
        self.pool.submit(self._items(batch))

    def load(self, batch: Sequence[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], Any]], list[Failure]]:
        loaded, failures, error = [], [], None
        for row, result in zip(batch, self.pool.results(self._items(batch))):
            if isinstance(result, MediaError):
                failures.append(Failure(row["media_id"], str(result)))
            elif isinstance(result, Exception):
                error = error or result
            else:
                loaded.append((row, result))
        if error is not None:
            raise error
        return loaded, failures


def prefetch(batch: Sequence[dict[str, Any]], state: Any, cfg: Any) -> None:
    """``Stage.prefetch`` of the stages whose state holds a ``reader``: decode the next batch during this one."""
    state.reader.prefetch(batch)
