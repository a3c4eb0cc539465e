"""``MediaRefs`` keeps media references as hashes and codes, and gives them back as text."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ccr.formats.ingest import refs as refs_module
from ccr.formats.ingest.refs import MediaRefs
from ccr.formats.ingest.runs import hashes


def rows(ids: list[str], paths: list[str | None], split: str | None = "train", verdict: str | None = None,
         line: int | None = 1) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame({"media_id": ids, "split": [split] * n, "modality": ["image"] * n, "path": paths,
                         "duration": [None] * n, "file": [0] * n, "line": [line] * n, "verdict": [verdict] * n},
                        schema={"media_id": pl.String, "split": pl.String, "modality": pl.String, "path": pl.String,
                                "duration": pl.Float64, "file": pl.UInt32, "line": pl.Int64, "verdict": pl.String})


def add(refs: MediaRefs, frame: pl.DataFrame) -> None:
    refs.append(frame.drop("media_id"), hashes(frame["media_id"]))


def find(refs: MediaRefs, *ids: str) -> np.ndarray:
    return refs.find(hashes(pl.Series(list(ids), dtype=pl.String)))


@pytest.fixture
def refs(tmp_path):
    held = MediaRefs(spill_dir=tmp_path)
    yield held
    held.close()


def test_appended_references_are_found_and_read_back_as_text(refs) -> None:
    add(refs, rows(["a", "b"], ["a.jpg", None], line=None))
    add(refs, rows(["c"], ["dir/é.jpg"], split="test_2016", verdict="media refused"))
    at = find(refs, "c", "zz", "a", "b")
    assert at.tolist() == [2, -1, 0, 1]
    got = refs.columns(at)
    assert got["ref_split"].to_list() == ["test_2016", None, "train", "train"]
    assert got["verdict"].to_list() == ["media refused", None, None, None]
    assert got["ref_line"].to_list() == [1, None, None, None]
    assert got["ref_row"].to_list() == [2, None, 0, 1]
    assert [refs.path(r) for r in (0, 1, 2)] == ["a.jpg", None, "dir/é.jpg"]


def test_paths_compare_by_hash_and_a_missing_path_stays_null(refs) -> None:
    add(refs, rows(["a", "b"], ["a.jpg", None]))
    got = refs.columns(np.array([0, 1]))["ref_path"]
    want = pl.DataFrame({"p": ["a.jpg", None]}).select(refs_module.path_hash(pl.col("p")))["p"]
    assert got.to_list() == want.to_list() and got[1] is None


def test_an_empty_store_finds_nothing(refs) -> None:
    assert find(refs, "a").tolist() == [-1]
    assert refs.columns(np.array([-1]))["ref_split"].to_list() == [None]


def test_ids_sharing_the_first_hash_are_told_apart_by_the_second(refs) -> None:
    def colliding(*ids: str) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(ids), 7, np.uint64), pl.Series(list(ids)).hash(seed=1).to_numpy()

    refs.append(rows(["a", "b"], ["a.jpg", "b.jpg"]), colliding("a", "b"))
    refs.append(rows(["c"], ["c.jpg"]), colliding("c"))
    assert refs.find(colliding("c", "b", "a", "z")).tolist() == [2, 1, 0, -1]


def test_scattered_rows_are_read_back_in_stretches(refs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refs_module, "_READ_ROWS", 2)
    for batch in range(3):
        ids = [f"m{batch}-{i}" for i in range(3)]
        add(refs, rows(ids, [f"{m}.jpg" for m in ids], split=f"test_{batch}", line=batch * 10))
    got = refs.columns(np.array([8, 0, 4, -1, 8, 3]))
    assert got["ref_split"].to_list() == ["test_2", "test_0", "test_1", None, "test_2", "test_1"]
    assert got["ref_line"].to_list() == [20, 0, 10, None, 20, 10]
    assert [refs.path(r) for r in (8, 0, 4)] == ["m2-2.jpg", "m0-0.jpg", "m1-1.jpg"]
