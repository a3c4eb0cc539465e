"""A copy of a whole corpus, for work that must never land in place (``ccr noise inject``).

It knows what the corpus directory holds: data shards are never modified in place (only replaced
by rename), so they are hard-linked where the file system allows; locks and the leftovers of
killed writes belong to the source's runs and stay behind. The copy appears at its destination
in one rename, so a killed copy leaves no half corpus there.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ccr.corpus import atomic
from ccr.corpus.corpus import STATE, Corpus

SHARD_SUFFIXES = (".parquet", ".arrow")  # table and feature shards


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link data shards, copy everything else (the manifest, commit markers, meta.json)."""
    if src.endswith(SHARD_SUFFIXES):
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass
    return shutil.copy2(src, dst)


def _skip(directory: str, names: list[str]) -> set[str]:
    """Locks and leftovers of killed writes stay behind."""
    skipped = {n for n in names if n.startswith(atomic.TMP_PREFIX) or n.endswith(".lock")}
    if Path(directory).name == STATE:
        skipped |= {"locks"} & set(names)
    return skipped


def copy_corpus(src: Corpus, out: Path, manifest: dict[str, Any] | None = None) -> Corpus:
    """Copy ``src`` to ``out`` (absent or empty); ``manifest``: fields the copy's manifest holds from
    the moment it appears (say, where it was copied from)."""
    tmp = out.parent / f"{atomic.TMP_PREFIX}{uuid.uuid4().hex}-{out.name}"
    try:
        with atomic.os_errors(out, "copy the corpus"):
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src.root, tmp, ignore=_skip, copy_function=_link_or_copy)
            if manifest:
                Corpus(tmp).update_manifest(**manifest)
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Corpus.open(out)
