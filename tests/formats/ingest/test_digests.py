"""``Digests`` remembers caption ids by two hashes, and tells apart ids that share the first."""

from __future__ import annotations

import numpy as np
import polars as pl

from ccr.formats.ingest.digests import Digests
from ccr.formats.ingest.runs import hashes


def ids(*names: str) -> tuple[np.ndarray, np.ndarray]:
    return hashes(pl.Series(list(names), dtype=pl.String))


def test_finds_what_was_added_across_many_merged_runs(tmp_path) -> None:
    seen = Digests(tmp_path)
    for start in range(0, 1000, 100):  # ten appends: runs merge like a binary counter
        seen.add(ids(*[f"c{i}" for i in range(start, start + 100)]),
                 pl.Series(np.arange(start, start + 100, dtype=np.uint64)))
    assert seen.find(ids("c0", "c999", "c500", "nope")).to_list() == [0, 999, 500, None]


def test_an_empty_index_finds_nothing(tmp_path) -> None:
    assert Digests(tmp_path).find(ids("a", "b")).to_list() == [None, None]


def test_ids_sharing_the_first_hash_are_told_apart_by_the_second(tmp_path) -> None:
    def colliding(*names: str) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(names), 7, np.uint64), ids(*names)[1]

    seen = Digests(tmp_path)
    seen.add(colliding("a", "b"), pl.Series([1, 2], dtype=pl.UInt64))
    seen.add(colliding("c"), pl.Series([3], dtype=pl.UInt64))
    assert seen.find(colliding("c", "b", "a", "z")).to_list() == [3, 2, 1, None]
