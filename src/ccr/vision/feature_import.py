"""``ccr import-features``: features made by existing research code, into the feature store.

The field ships features as BigFile (frame rows + ``video2frames.txt``), ``.npy`` + id file, or one
``.npz`` per video (QVHighlights clip features). Importing them through the runner makes them
resumable and checked like any stage: an id with no media row becomes a failure, not a silent
orphan, and ``ccr export --features`` writes them back in the same layouts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.formats import bigfile
from ccr.paths import regular_file
from ccr.stages.runner import (
    BatchResult,
    Chunk,
    DoneState,
    Failure,
    Plan,
    RunOptions,
    Stage,
    chunk_key,
)

FORMATS = ("bigfile", "npy", "npz")


@dataclass
class ImportConfig:
    format: str = option("", "the source's layout", choices=("bigfile", "npy", "npz"))
    src: str = option("", "BigFile directory, .npy file, or directory of <vid>.npz", positional=True)
    name: str = option("", "feature set name in the corpus (features/NAME/), e.g. resnet152")
    ids: str | None = option(None, "npy: the id file whose lines name the rows (e.g. train_id.txt)")
    model: str = option("imported", "what made the features (recorded in meta.json)")
    variant: str = option("imported", "pooled, frames, clips2s, ...")
    dtype: str = option("float32", "float32 keeps imports lossless; float16 halves the store")


class _Source:
    """Random access by id into a memory-mapped source, so importing never loads it whole."""

    def __init__(self, cfg: ImportConfig):
        src = Path(cfg.src)
        self.videos: dict[str, list[int]] = {}
        self.npz: dict[str, Path] = {}
        if cfg.format == "bigfile":
            ids, self.array = bigfile.read_bigfile(src)
            row = {i: n for n, i in enumerate(ids)}
            v2f = src / "video2frames.txt"
            if v2f.exists():
                for vid, frames in bigfile.read_video2frames(v2f).items():
                    missing = [f for f in frames if f not in row]
                    if missing:
                        raise CcrError(f"{v2f}: frame {missing[0]!r} of {vid!r} is not in id.txt")
                    self.videos[vid] = [row[f] for f in frames]
            else:
                self.videos = {i: [n] for n, i in enumerate(ids)}
        elif cfg.format == "npy":
            if not cfg.ids:
                raise CcrError("--ids ID_FILE is needed with --format npy (the file naming the rows, e.g. train_id.txt)")
            ids, self.array = bigfile.read_npy_features(src, Path(cfg.ids))
            self.videos = {i: [n] for n, i in enumerate(ids)}
        else:
            self.npz = {p.stem: p for p in bigfile.npz_files(src)}
            if not self.npz:
                raise CcrError(f"no .npz files in {src}")
            self.array = bigfile.load_npz(next(iter(self.npz.values())))

    def ids(self) -> list[str]:
        return sorted(self.npz or self.videos)

    def dim(self) -> int:
        return int(self.array.shape[-1])

    def get(self, media_id: str) -> np.ndarray:
        if self.npz:
            return bigfile.load_npz(self.npz[media_id])
        return np.asarray(self.array[self.videos[media_id]])


def plan(corpus: Corpus, cfg: ImportConfig) -> Plan:
    if cfg.format not in FORMATS:
        raise CcrError(f"unknown feature format {cfg.format!r}; choose one of {', '.join(FORMATS)}")
    if not cfg.name:
        raise CcrError("--name NAME is needed: the feature set's name in the corpus, e.g. resnet152")
    regular_file(cfg.src, "source", directory_ok=cfg.format != "npy")  # a FIFO or device would block the reads
    if cfg.dtype not in ("float16", "float32"):
        raise CcrError(f"--set dtype={cfg.dtype}: use float16 or float32")
    source = _Source(cfg)

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        owed = done.owed_rows(source.ids())
        for start in range(0, len(owed), options.chunk_rows):
            part = owed[start:start + options.chunk_rows]
            yield Chunk(key=chunk_key(part), items=part, ids=part)

    corpus.features(cfg.name).claim({"model": cfg.model, "revision": "imported", "dim": source.dim(),
                                     "dtype": cfg.dtype, "variant": cfg.variant, "source": str(cfg.src)},
                                    fix="import into another feature set with --name NEW_NAME")
    return Plan(input_table=f"features/{cfg.name}", chunks=chunks, total=lambda: len(source.ids()),
                models={"features": {"id": cfg.model}}, id_of=str)


def setup(corpus: Corpus, cfg: ImportConfig, plan_: Plan) -> dict[str, Any]:
    return {"source": _Source(cfg), "media": corpus.ids("media")}


def process(batch: Sequence[str], state: dict[str, Any], cfg: ImportConfig) -> BatchResult:
    out = BatchResult(rows={f"features/{cfg.name}": []})
    for media_id in batch:
        if media_id not in state["media"]:
            out.failures.append(Failure(media_id, f"no media row {media_id!r} in the corpus; ingest its captions first"))
            continue
        try:
            arr = state["source"].get(media_id).astype(cfg.dtype)
        except CcrError as e:  # one damaged npz costs its row, not the run
            out.failures.append(Failure(media_id, str(e)))
            continue
        out.rows[f"features/{cfg.name}"].append({"media_id": media_id, "features": arr})
    return out


STAGE = Stage(name="import-features", version="1", config=ImportConfig, plan=plan, setup=setup, process=process,
              help="import BigFile / npy / npz features into the feature store",
              examples=("ccr import-features ccr-demo/corpus ccr-demo/export/nrccr/FeatureData/clip --format bigfile --name clip-bigfile",),
              batch_size=256, runner=("limit", "force", "retry_failed"), needs=frozenset({"media"}),
              provides={"features": "visual features"}, path_options=("src", "ids"), required=("format", "src", "name"))
