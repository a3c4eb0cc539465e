"""Feature files of the field's research code: BigFile, npy + id list, and per-video npz.

The feature store imports and exports through these helpers. BigFile and npy are memory-mapped so
that a many-gigabyte ``feature.bin`` is never loaded whole; ``video2frames.txt`` is a Python dict
literal that the original code ``eval``-s, which we parse with ``ast.literal_eval`` instead so a
downloaded file can never run code.
"""

from __future__ import annotations

import ast
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ccr.errors import CcrError
from ccr.paths import regular_file, regular_files

_FLOAT = np.dtype("<f4")
_BLOCK_ROWS = 65536


def read_bigfile(directory: Path) -> tuple[list[str], np.ndarray]:
    """(row ids, memory-mapped float32 [N, D]) of a BigFile directory."""
    directory = Path(directory)
    for name in ("feature.bin", "id.txt", "shape.txt"):
        if not (directory / name).exists():
            raise CcrError(f"{directory}: no {name}; a BigFile directory holds feature.bin, id.txt and shape.txt")
        regular_file(directory / name, "BigFile file")
    n, d = _read_shape(directory / "shape.txt")
    ids = (directory / "id.txt").read_text(encoding="utf-8").split()
    if len(ids) != n:
        raise CcrError(f"{directory}: shape.txt says {n} rows but id.txt holds {len(ids)} ids")
    size = (directory / "feature.bin").stat().st_size
    if size != n * d * _FLOAT.itemsize:
        raise CcrError(
            f"{directory}: feature.bin has {size} bytes but shape.txt says {n} x {d} float32 "
            f"({n * d * _FLOAT.itemsize} bytes)"
        )
    if n * d == 0:
        return ids, np.zeros((n, d), dtype=np.float32)
    return ids, np.memmap(directory / "feature.bin", dtype=_FLOAT, mode="r", shape=(n, d))


def write_bigfile(directory: Path, ids: Sequence[str], array: np.ndarray) -> None:
    directory = Path(directory)
    matrix = _as_matrix(array, ids, directory)
    for item in ids:
        if not item or any(c.isspace() for c in item):
            raise CcrError(f"{directory}: id {item!r} is empty or holds whitespace, which id.txt cannot store")
    directory.mkdir(parents=True, exist_ok=True)
    _write_rows(directory / "feature.bin", matrix)
    _write_bytes(directory / "id.txt", " ".join(ids).encode("utf-8"))
    _write_bytes(directory / "shape.txt", f"{matrix.shape[0]} {matrix.shape[1]}".encode())


def read_video2frames(path: Path) -> dict[str, list[str]]:
    """Parses ``video2frames.txt`` as a literal; code in it is refused, never run."""
    path = regular_file(path, "video2frames file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CcrError(f"{path}: cannot be read ({err})") from None
    try:
        mapping = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise CcrError(f"{path}: not a Python dict literal of video id -> list of frame ids") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, list | tuple) and all(isinstance(f, str) for f in v)
        for k, v in mapping.items()
    ):
        raise CcrError(f"{path}: expected a dict of video id (str) -> list of frame ids (str)")
    return {k: list(v) for k, v in mapping.items()}


def write_video2frames(path: Path, mapping: Mapping[str, Iterable[str]]) -> None:
    literal = repr({str(k): [str(f) for f in v] for k, v in mapping.items()})
    _write_bytes(Path(path), literal.encode("utf-8"))


def frames_by_video(
    ids: Sequence[str], array: np.ndarray, video2frames: Mapping[str, Sequence[str]]
) -> Iterator[tuple[str, np.ndarray]]:
    """Each video's frame rows stacked in frame order, [T, D], for frame-level BigFiles."""
    row_of = {item: i for i, item in enumerate(ids)}
    for vid, frames in video2frames.items():
        missing = [f for f in frames if f not in row_of]
        if missing:
            raise CcrError(f"video {vid!r}: frame {missing[0]!r} is not in the BigFile ({len(missing)} missing)")
        yield vid, np.asarray(array[[row_of[f] for f in frames]], dtype=np.float32)


def read_npy_features(npy_path: Path, id_path: Path) -> tuple[list[str], np.ndarray]:
    """(ids, memory-mapped [N, D]) of an ``.npy`` whose rows follow an id file (e.g. train_id.txt)."""
    npy_path, id_path = regular_file(npy_path, "features file"), regular_file(id_path, "id file")
    try:
        array = np.load(npy_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CcrError(f"{npy_path}: not a readable .npy array ({err})") from None
    try:
        ids = id_path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as err:
        raise CcrError(f"{id_path}: cannot be read ({err})") from None
    if array.ndim != 2:
        raise CcrError(f"{npy_path}: expected a 2-d [N, D] array, found shape {array.shape}")
    if len(ids) != array.shape[0]:
        raise CcrError(f"{npy_path} has {array.shape[0]} rows but {id_path} holds {len(ids)} ids")
    return ids, array


def write_npy_features(npy_path: Path, id_path: Path, ids: Sequence[str], array: np.ndarray) -> None:
    npy_path, id_path = Path(npy_path), Path(id_path)
    matrix = _as_matrix(array, ids, npy_path)
    for item in ids:
        if not item or any(c.isspace() for c in item):
            raise CcrError(f"{id_path}: id {item!r} is empty or holds whitespace, which the id file cannot store")
    npy_path.parent.mkdir(parents=True, exist_ok=True)
    id_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = npy_path.with_name(f".{npy_path.name}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(matrix, dtype=np.float32))
    os.replace(tmp, npy_path)
    _write_bytes(id_path, "".join(f"{item}\n" for item in ids).encode("utf-8"))


def read_npz_dir(directory: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(video id, [T, D]) for every ``<vid>.npz`` with key ``features``, in file-name order."""
    for path in npz_files(directory):
        yield path.stem, load_npz(path)


def npz_files(directory: Path) -> list[Path]:
    """The ``<vid>.npz`` files of a directory, in name order; one that is no regular file is refused."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CcrError(f"{directory}: no such directory of per-video .npz features")
    return regular_files(sorted(directory.glob("*.npz")), "features file")


def load_npz(path: Path) -> np.ndarray:
    """The ``features`` array [T, D] of one per-video npz."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "features" not in npz.files:
                raise CcrError(f"{path}: no 'features' array (found {', '.join(npz.files) or 'none'})")
            features = npz["features"]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise CcrError(f"{path}: not a readable .npz file ({err})") from None
    if features.ndim != 2:
        raise CcrError(f"{path}: 'features' should be [T, D], found shape {features.shape}")
    return features


def write_npz(directory: Path, vid: str, array: np.ndarray) -> Path:
    directory = Path(directory)
    features = np.asarray(array)
    if features.ndim != 2:
        raise CcrError(f"features of video {vid!r} should be [T, D], got shape {features.shape}")
    if not vid or "/" in vid or vid.startswith("."):
        raise CcrError(f"video id {vid!r} cannot be a file name in {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{vid}.npz"
    tmp = directory / f".{vid}.npz.tmp"
    with tmp.open("wb") as fh:
        np.savez(fh, features=features)
    os.replace(tmp, path)
    return path


def _read_shape(path: Path) -> tuple[int, int]:
    parts = path.read_text(encoding="utf-8").split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise CcrError(f"{path}: expected 'N D' (two non-negative integers), found {' '.join(parts)!r}")
    return int(parts[0]), int(parts[1])


def _as_matrix(array: np.ndarray, ids: Sequence[str], target: Path) -> np.ndarray:
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        raise CcrError(f"{target}: features must be a 2-d [N, D] array, got shape {matrix.shape}")
    if matrix.shape[0] != len(ids):
        raise CcrError(f"{target}: {matrix.shape[0]} feature rows but {len(ids)} ids")
    return matrix


def _write_rows(path: Path, matrix: np.ndarray) -> None:
    """Streams float32 rows in blocks, so exporting a memory-mapped source never loads it whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        for start in range(0, matrix.shape[0], _BLOCK_ROWS):
            fh.write(np.ascontiguousarray(matrix[start : start + _BLOCK_ROWS], dtype=_FLOAT).tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write then rename, so a killed export never leaves a half-written file under the real name."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
