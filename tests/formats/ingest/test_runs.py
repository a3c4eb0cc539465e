"""Sorted runs on disk merge as a stable sort of the two would, are found window by window, and a
tally sums what was added."""

from __future__ import annotations

import numpy as np
import pytest

from ccr.formats.ingest import runs as runs_module
from ccr.formats.ingest.runs import Runs, Tally, _merge


@pytest.mark.parametrize("spill", [runs_module.SPILL_ENTRIES, 10], ids=["sorted", "searched"])
def test_a_merge_is_a_stable_sort_of_both_runs(monkeypatch, spill) -> None:
    monkeypatch.setattr(runs_module, "SPILL_ENTRIES", spill)
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
def test_runs_find_every_hash_over_many_appends_and_windows(tmp_path, monkeypatch, window, spill) -> None:
    """Hashes repeat (keys sharing one) within and across appends, so equal hashes straddle the
    windows that lookups and merges read."""
    monkeypatch.setattr(runs_module, "WINDOW", window)
    monkeypatch.setattr(runs_module, "SPILL_ENTRIES", spill)
    rng = np.random.default_rng(2)
    runs = Runs(tmp_path)
    held: dict[int, list[int]] = {}
    for step in range(13):
        hashes = rng.integers(0, 300, 40).astype(np.uint64)
        rows = np.arange(step * 40, step * 40 + 40)
        runs.add(hashes, rows, rows * 2)
        for h, r in zip(hashes.tolist(), rows.tolist(), strict=True):
            held.setdefault(h, []).append(r)
    assert [r.size for r in runs.runs] == sorted((r.size for r in runs.runs), reverse=True)
    stored = [isinstance(r, runs_module._Stored) for r in runs.runs]
    assert any(stored) == (spill < 520) and not stored[-1]  # the newest, smallest run is in memory
    probe = np.arange(0, 320, dtype=np.uint64)
    found, (rows, doubled) = runs.first(probe)
    assert found.tolist() == [h in held for h in range(320)]
    for h in np.flatnonzero(found).tolist():
        assert rows[h] in held[h] and doubled[h] == 2 * rows[h]
    for h in (0, 150, 299, 310):
        assert sorted(r for r, _ in runs.every(h)) == sorted(held.get(h, []))
    runs.close()
    assert not any(tmp_path.iterdir())  # the runs' files are unlinked: nothing is left beside the corpus


def test_an_empty_runs_finds_nothing(tmp_path) -> None:
    found, values = Runs(tmp_path).first(np.array([1, 2], np.uint64))
    assert found.tolist() == [False, False] and values == []


def test_a_tally_sums_counts_across_merged_runs() -> None:
    tally = Tally()
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
