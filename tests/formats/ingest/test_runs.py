"""Sorted runs merge as a stable sort of the two would, and a tally sums what was added."""

from __future__ import annotations

import numpy as np

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


def test_runs_find_every_hash_added_over_many_appends() -> None:
    runs = Runs()
    for start in range(0, 1000, 100):
        runs.add(np.arange(start, start + 100, dtype=np.uint64) * 7, np.arange(start, start + 100))
    found, (values,) = runs.first(np.array([0, 693, 6993, 5], np.uint64))
    assert found.tolist() == [True, True, True, False]
    assert values[:3].tolist() == [0, 99, 999]


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
