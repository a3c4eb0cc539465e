"""Gallery embeddings, computed once and memory-mapped after: ``RUN/search-cache/KEY/``.

Embedding a 100k-item gallery takes minutes; ranking it against one query takes a matrix-vector
product. So the first search of a gallery writes ``embeddings.npy`` (float32 ``[N, D]``) and
``ids.json`` there, then ``entry.json`` last (an entry without it was cut short and does not
count), and every later search opens the array with ``mmap_mode="r"``: nothing is read that the
product does not touch, and the page cache keeps it warm between processes.

KEY is a fingerprint of everything the embeddings are a function of, and nothing else:

- the checkpoint's bytes (sha256; remembered in ``checkpoints.json`` per size, mtime and inode, so
  a large checkpoint is hashed once, and a new one, written by rename, is always hashed again);
- the gallery's ids in order;
- the input data (``inputs``: the feature store's meta.json and the chunks committed to it, or for
  a caption gallery the texts), never the corpus fingerprint, so a stage that writes other tables
  leaves the entry valid.

Writing an entry deletes the entries made from an earlier state of the same checkpoint file: no
search can use them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ccr.config import fingerprint
from ccr.corpus import atomic
from ccr.errors import CcrError
from ccr.train.run import checkpoint as ckpt

DIR = "search-cache"
ENTRY = "entry.json"


@dataclass(frozen=True)
class Embedded:
    ids: list[str]  # the rows of ``embeddings``: the gallery, less items that could not be embedded
    embeddings: np.ndarray  # float32 [N, D], a read-only memory map
    built: bool  # computed by this call (False: read from the cache)


def checkpoint_digest(path: Path, loaded: list[int], root: Path) -> str:
    """sha256 of the checkpoint file whose ``ckpt.stamp`` was ``loaded`` when the model read it.

    Hashed once per stamp (``checkpoints.json`` remembers it). A file replaced since the model read
    it (training still writing ``best.pt``) holds other weights than the model's: refused, or its
    embeddings would be kept under the new weights' key.
    """
    memo_path = root / "checkpoints.json"
    memo = json.loads(memo_path.read_text(encoding="utf-8")) if memo_path.exists() else {}
    known = memo.get(path.name)
    if known and known["stamp"] == loaded and ckpt.stamp(path.stat()) == loaded:
        return str(known["sha256"])
    with open(path, "rb") as f:
        if ckpt.stamp(os.fstat(f.fileno())) != loaded:
            raise CcrError(f"{path} was replaced after this model read it (is training still running?); "
                           f"load the run again to search with the weights it holds now")
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    atomic.write_json(memo_path, memo | {path.name: {"stamp": loaded, "sha256": digest}})
    return digest


def digest(texts: Sequence[str]) -> str:
    """Of a list of ids or texts, order included."""
    return hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()


def embeddings(root: Path, checkpoint: tuple[str, str], inputs: dict[str, Any], ids: list[str],
               embed: Callable[[list[str]], tuple[list[str], np.ndarray]]) -> Embedded:
    """The cached embeddings of ``ids``, or ``embed(ids)`` -> (ids it embedded, ``[n, D]``) stored first.

    ``checkpoint`` is (file name, digest); ``inputs`` names the data the embeddings read.
    """
    key = fingerprint(checkpoint[1], inputs, digest(ids))
    entry = root / key
    if (entry / ENTRY).exists():
        kept = json.loads((entry / "ids.json").read_text(encoding="utf-8"))
        return Embedded(kept, np.load(entry / "embeddings.npy", mmap_mode="r"), built=False)
    kept, vectors = embed(ids)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, vectors)

    atomic.write_with(entry / "embeddings.npy", save)
    atomic.write_bytes(entry / "ids.json", json.dumps(kept).encode("utf-8"))
    atomic.write_json(entry / ENTRY, {"checkpoint": checkpoint[0], "sha256": checkpoint[1], "inputs": inputs,
                                      "n": len(kept), "requested": len(ids), "dim": int(vectors.shape[1])})
    _drop_stale(root, checkpoint)
    return Embedded(kept, np.load(entry / "embeddings.npy", mmap_mode="r"), built=True)


def _drop_stale(root: Path, checkpoint: tuple[str, str]) -> None:
    """Entries of the same checkpoint file made before it was replaced."""
    for marker in root.glob(f"*/{ENTRY}"):
        made = json.loads(marker.read_text(encoding="utf-8"))
        if made["checkpoint"] == checkpoint[0] and made["sha256"] != checkpoint[1]:
            shutil.rmtree(marker.parent, ignore_errors=True)
