"""``Digests`` remembers caption ids by two hashes, and tells apart ids that share the first."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ccr.formats.ingest import digests
from ccr.formats.ingest.digests import Digests


def test_finds_what_was_added_across_many_merged_runs(tmp_path) -> None:
    seen = Digests(tmp_path)
    for start in range(0, 1000, 100):  # ten appends: runs merge like a binary counter
        ids = pl.Series([f"c{i}" for i in range(start, start + 100)])
        seen.add(ids, pl.Series(np.arange(start, start + 100, dtype=np.uint64)))
    assert seen.find(pl.Series(["c0", "c999", "c500", "nope"])).to_list() == [0, 999, 500, None]


def test_an_empty_index_finds_nothing(tmp_path) -> None:
    assert Digests(tmp_path).find(pl.Series(["a", "b"])).to_list() == [None, None]


def test_ids_sharing_the_first_hash_are_told_apart_by_the_second(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    def colliding(ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(ids), 7, np.uint64), ids.hash(seed=1).to_numpy()

    monkeypatch.setattr(digests, "_hashes", colliding)
    seen = Digests(tmp_path)
    seen.add(pl.Series(["a", "b"]), pl.Series([1, 2], dtype=pl.UInt64))
    seen.add(pl.Series(["c"]), pl.Series([3], dtype=pl.UInt64))
    assert seen.find(pl.Series(["c", "b", "a", "z"])).to_list() == [3, 2, 1, None]
