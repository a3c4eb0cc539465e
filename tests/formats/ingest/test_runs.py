"""Sorted runs on disk merge as a stable sort of the two would, are found window by window, and a
tally sums what was added."""

from __future__ import annotations

import numpy as np
import pytest

from ccr.formats.ingest import runs as runs_module
from ccr.formats.ingest.runs import Runs, Tally, _merge


def test_a_merge_is_a_stable_sort_of_both_runs() -> None:
    rng = np.random.default_rng(0)
    for size_a, size_b in ((0, 5), (5, 0), (40, 7), (300, 300)):
        a = np.sort(rng.integers(0, 50, size_a).astype(np.uint64))
        b = np.sort(rng.integers(0, 50, size_b).astype(np.uint64))
        values = (np.arange(size_a), np.arange(size_a, size_a + size_b))
        hashes, merged = _merge((a, values[0]), (b, values[1]))
        order = np.argsort(np.concatenate([a, b]), kind="stable")
        assert hashes.tolist() == np.concatenate([a, b])[order].tolist()
        assert merged.tolist() == np.concatenate(values)[order].tolist()


@pytest.mark.parametrize(("window", "spill"), [(runs_module.WINDOW, runs_module.SPILL_ENTRIES), (7, 50), (7, 0)],
                         ids=["in-memory", "mixed", "on-disk"])
def test_runs_find_every_key_over_many_appends_and_windows(tmp_path, monkeypatch, window, spill) -> None:
    """Keys share first hashes within and across appends (told apart by the second), so equal
    first hashes straddle the windows that lookups and merges read."""
    monkeypatch.setattr(runs_module, "WINDOW", window)
    monkeypatch.setattr(runs_module, "SPILL_ENTRIES", spill)
    rng = np.random.default_rng(2)
    runs = Runs(tmp_path)
    held: dict[tuple[int, int], int] = {}
    for step in range(13):
        first = rng.integers(0, 120, 40).astype(np.uint64)
        second = np.arange(step * 40, step * 40 + 40, dtype=np.uint64) % 97  # pairs repeat only by chance
        fresh = [k for k in zip(first.tolist(), second.tolist(), strict=True) if k not in held]
        keys = np.array(sorted(set(fresh)), np.uint64).reshape(-1, 2)
        values = np.arange(len(held), len(held) + len(keys))
        runs.add((keys[:, 0], keys[:, 1]), values, values * 2)
        held.update(zip(map(tuple, keys.tolist()), values.tolist(), strict=True))
    assert [r.size for r in runs.runs] == sorted((r.size for r in runs.runs), reverse=True)
    stored = [isinstance(r, runs_module._Stored) for r in runs.runs]
    assert any(stored) == (spill < len(held)) and not stored[-1]  # the newest, smallest run is in memory
    probe = [(a, b) for a in range(0, 125, 3) for b in range(0, 97, 5)]
    found, (values, doubled) = runs.find((np.array([a for a, _ in probe], np.uint64),
                                          np.array([b for _, b in probe], np.uint64)))
    assert found.tolist() == [k in held for k in probe]
    assert values[found].tolist() == [held[k] for k in probe if k in held]
    assert (doubled == 2 * values).all()
    runs.close()


def test_an_empty_runs_finds_nothing(tmp_path) -> None:
    found, values = Runs(tmp_path).find((np.array([1, 2], np.uint64), np.array([3, 4], np.uint64)))
    assert found.tolist() == [False, False] and values == []


@pytest.mark.parametrize(("window", "spill"), [(runs_module.WINDOW, runs_module.SPILL_ENTRIES), (7, 50), (7, 0)],
                         ids=["in-memory", "mixed", "on-disk"])
def test_a_tally_sums_counts_across_merged_runs(tmp_path, monkeypatch, window, spill) -> None:
    """Equal keys meet in one merge step however the windows cut the runs, so each is summed once."""
    monkeypatch.setattr(runs_module, "WINDOW", window)
    monkeypatch.setattr(runs_module, "SPILL_ENTRIES", spill)
    tally = Tally(tmp_path)
    want: dict[int, int] = {}
    rng = np.random.default_rng(1)
    for _ in range(20):
        keys = np.unique(rng.integers(0, 200, 30)).astype(np.uint64)
        counts = rng.integers(1, 5, len(keys))
        assert tally.get(keys).tolist() == [want.get(int(k), 0) for k in keys]
        tally.add(keys, counts)
        for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
            want[k] = want.get(k, 0) + n
    probe = np.arange(0, 210, dtype=np.uint64)
    assert tally.get(probe).tolist() == [want.get(k, 0) for k in range(210)]
    assert len(tally.runs) <= 5  # merged like a binary counter
    assert all((np.diff(r.read(0, 0, r.size).astype(np.int64)) > 0).all() for r in tally.runs)  # a key once a run
    assert any(isinstance(r, runs_module._Stored) for r in tally.runs) == (spill < 200)
    tally.close()


@pytest.mark.parametrize("spill", [runs_module.SPILL_ENTRIES, 0], ids=["in-memory", "on-disk"])
def test_keys_sharing_a_first_hash_are_told_apart_by_all_64_bits_of_it(tmp_path, monkeypatch, spill) -> None:
    """A key whose first hash matches another's but whose second does not is looked for among the
    entries of exactly its first hash: between 2**53 and 2**63 a hash as a Python int searched in
    uint64 was compared as float64, so the entries of a neighbouring hash were taken for its own."""
    monkeypatch.setattr(runs_module, "WINDOW", 2)
    monkeypatch.setattr(runs_module, "SPILL_ENTRIES", spill)
    runs = Runs(tmp_path)
    near = 2**63 - 1  # 2**63 - 1 and 2**63 are the same float64
    runs.add((np.array([near], np.uint64), np.array([1], np.uint64)), np.array([10]))
    runs.add((np.array([near + 1], np.uint64), np.array([2], np.uint64)), np.array([20]))
    found, (values,) = runs.find((np.array([near, near, near + 1], np.uint64), np.array([2, 1, 2], np.uint64)))
    assert found.tolist() == [False, True, True]
    assert values.tolist() == [0, 10, 20]
    runs.close()
