"""Where the visual tower's input comes from: a feature set of the corpus, or a pixel fallback.

``visual`` in the config names a feature set (``features/NAME/``, what ``ccr features`` writes),
``auto`` (the corpus's only feature set; slot vectors do not count), or ``pixels``: every image
(or ``PIXEL_FRAMES`` frames of a video, sampled as ``ccr features`` samples them) box-averaged to
a ``PIXEL_GRID`` x ``PIXEL_GRID`` colour grid. Pixels exist so that a corpus without extracted features (the demo's toy corpus,
a quick smoke run) can still train; they are no substitute for CLIP features.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ccr.errors import CcrError

if TYPE_CHECKING:
    from ccr.corpus.corpus import Corpus
    from ccr.vision.extract import Extractor

PIXEL_GRID = 8
PIXEL_FRAMES = 8
SLOT_PREFIX = "slots-"


class MediaSource(Protocol):
    name: str
    dim: int

    def has(self, media_id: str) -> bool: ...

    def get(self, media_id: str) -> np.ndarray: ...  # [T, D] float32

    def read(self, path: Path, modality: str) -> np.ndarray: ...  # the same for a file outside the corpus


class FeatureSource:
    """A feature set of the corpus, read memory-mapped item by item."""

    def __init__(self, corpus: Corpus, name: str):
        self.name = name
        self.store = corpus.features(name)
        self.dim = int(self.store.meta["dim"])
        self._extractor: Extractor | None = None

    def has(self, media_id: str) -> bool:
        return media_id in self.store

    def get(self, media_id: str) -> np.ndarray:
        return np.asarray(self.store.get(media_id), dtype=np.float32)

    def read(self, path: Path, modality: str) -> np.ndarray:
        """The features the store's extractor makes of a new file (its CLIP is loaded on first use)."""
        from ccr.vision.extract import Extractor

        if self._extractor is None:
            self._extractor = Extractor(self.name, self.store.meta)
        return self._extractor(path, modality)


class PixelSource:
    """Box-averaged colour grids of the media files, computed on first use and kept in memory."""

    name = "pixels"
    dim = PIXEL_GRID * PIXEL_GRID * 3

    def __init__(self, corpus: Corpus, media_root: Path | None = None):
        media = corpus.table("media").select("media_id", "path", "modality")
        self.rows = {m: (p, kind) for m, p, kind in media.iter_rows()}
        self.corpus, self.media_root = corpus, media_root
        self.cache: dict[str, np.ndarray] = {}

    def has(self, media_id: str) -> bool:
        path = self._path(media_id)
        return path is not None and path.exists()

    def _path(self, media_id: str) -> Path | None:
        path, _ = self.rows.get(media_id, (None, None))
        return self.corpus.resolve_media(path, self.media_root)

    def get(self, media_id: str) -> np.ndarray:
        if media_id not in self.cache:
            self.cache[media_id] = self.read(self._path(media_id), self.rows[media_id][1])
        return self.cache[media_id]

    def read(self, path: Path | None, modality: str) -> np.ndarray:
        return np.stack([_grid(np.asarray(f)) for f in pixel_frames(path, modality, "--visual pixels")])


def pixel_frames(path: Path | None, modality: str, what: str) -> list[Any]:
    """The ``PIXEL_FRAMES`` frames a pixel input reads of a media file; a bad file is one line naming ``what``."""
    from ccr.stages.media import MediaError, Sampling, load_visual

    try:
        return list(load_visual(path, modality, Sampling(frames=PIXEL_FRAMES)).frames)
    except MediaError as e:
        raise CcrError(f"{what}: {e}") from None


def _grid(rgb: np.ndarray) -> np.ndarray:
    """Mean colour of each cell of a PIXEL_GRID x PIXEL_GRID grid, centred on 0, flattened."""
    h, w, _ = rgb.shape
    ys = np.linspace(0, h, PIXEL_GRID + 1).astype(int)
    xs = np.linspace(0, w, PIXEL_GRID + 1).astype(int)
    cells = [rgb[ys[i]:max(ys[i + 1], ys[i] + 1), xs[j]:max(xs[j + 1], xs[j] + 1)].reshape(-1, 3).mean(0)
             for i in range(PIXEL_GRID) for j in range(PIXEL_GRID)]
    return (np.stack(cells).reshape(-1) / 255.0 - 0.5).astype(np.float32)


def open_source(corpus: Corpus, visual: str, media_root: Path | None = None) -> MediaSource:
    """The visual input named by the config; ``auto`` prefers the corpus's one feature set."""
    if visual == "pixels":
        return PixelSource(corpus, media_root)
    if visual != "auto":
        return FeatureSource(corpus, visual)
    names = [n for n in corpus.feature_names() if not n.startswith(SLOT_PREFIX)]
    if len(names) == 1:
        return FeatureSource(corpus, names[0])
    if not names:
        raise CcrError(f"{corpus.root} has no visual features; run ccr features, "
                       f"or train on raw pixels with --visual pixels (a weak fallback)")
    raise CcrError(f"{corpus.root} has several feature sets ({', '.join(names)}); choose one with --visual NAME")


class SlotSource(FeatureSource):
    """``ccr slots``' vectors with every filler slot (``size`` 0 in the ``slots`` table) set to zero.

    An item with fewer distinct description sentences than K gets filler slots so that every item
    has ``[K, D]``; they stand for nothing and must not take part in attention or matching. The
    shape stays ``[K, D]`` (batches gathered across processes need one K), and the zero rows tell
    the fillers apart: real slot vectors are unit length.
    """

    def __init__(self, corpus: Corpus, name: str):
        import polars as pl

        super().__init__(corpus, name)
        self.fillers: dict[str, list[int]] = {}
        if corpus.files("slots"):
            rows = (corpus.table("slots").filter(pl.col("slot_id").str.contains(f"|{name}|", literal=True)
                                                 & (pl.col("size") == 0)).select("media_id", "slot"))
            for media_id, slot in rows.iter_rows():
                self.fillers.setdefault(media_id, []).append(int(slot))

    def get(self, media_id: str) -> np.ndarray:
        vectors = super().get(media_id)
        fillers = self.fillers.get(media_id)
        if fillers:
            vectors = vectors.copy()  # the store's arrays may be read-only memory maps
            vectors[fillers] = 0.0
        return vectors


def open_slots(corpus: Corpus, name: str) -> SlotSource:
    """Slot vectors of ``ccr slots`` (``features/slots-k{K}-{embedder}/``, ``[K, D]`` per item).

    ``name`` is one such feature set, or ``auto``: the corpus's only one. Methods read them
    through the ``slots`` data key (LECCR's ``--set slots=corpus``).
    """
    if name != "auto":
        if not name.startswith(SLOT_PREFIX):
            raise CcrError(f"slot_features {name!r}: expected a {SLOT_PREFIX}* feature set written by ccr slots")
        return SlotSource(corpus, name)
    names = [n for n in corpus.feature_names() if n.startswith(SLOT_PREFIX)]
    if len(names) == 1:
        return SlotSource(corpus, names[0])
    if not names:
        raise CcrError(f"{corpus.root} has no slot vectors; run ccr slots first")
    raise CcrError(f"{corpus.root} has several slot sets ({', '.join(names)}); "
                   f"choose one with --set slot_features=NAME")


def frames_batch(source: MediaSource, media_ids: list[str], max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``[B, T, D]`` features (first ``max_frames`` frames, zero-padded) and their ``[B, T]`` mask."""
    items = [source.get(m)[:max_frames] for m in media_ids]
    t = max(len(x) for x in items)
    out = np.zeros((len(items), t, source.dim), dtype=np.float32)
    mask = np.zeros((len(items), t), dtype=bool)
    for k, x in enumerate(items):
        out[k, :len(x)] = x
        mask[k, :len(x)] = True
    return out, mask
