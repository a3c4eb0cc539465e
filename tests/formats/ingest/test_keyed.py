"""``Keyed`` finds rows by hash, and stays exact where two keys share a hash."""

from __future__ import annotations

import polars as pl
import pytest

from ccr.formats.ingest import keyed
from ccr.formats.ingest.keyed import Keyed


def test_finds_appended_rows_and_misses_others() -> None:
    index = Keyed(pl.DataFrame({"id": ["a", "b"], "v": [1, 2]}), "id")
    index.append(pl.DataFrame({"id": ["c"], "v": [3]}))
    rows = index.find(pl.Series(["c", "x", "a", "b"]))
    assert rows.tolist() == [2, -1, 0, 1]
    assert index.column("v", rows).to_list() == [3, None, 1, 2]


def test_empty_index_finds_nothing() -> None:
    index = Keyed(pl.DataFrame(schema={"id": pl.String}), "id")
    assert index.find(pl.Series(["a"])).tolist() == [-1]


def test_keys_sharing_a_hash_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setattr(keyed, "_hash", lambda keys: np.full(len(keys), 7, np.uint64))
    index = Keyed(pl.DataFrame({"id": ["a", "b"]}), "id")
    index.append(pl.DataFrame({"id": ["c"]}))
    assert index.find(pl.Series(["c", "b", "a", "z"])).tolist() == [2, 1, 0, -1]
