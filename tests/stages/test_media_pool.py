"""MediaPool: results in the asked order whatever the worker count, errors handed back, a dead worker survived."""

from __future__ import annotations

import os

import pytest

from ccr.errors import CcrError
from ccr.stages.media_pool import (
    MAX_AUTO_WORKERS,
    MediaPool,
    WorkerDied,
    machine_cores,
    resolve_workers,
)


def square_or_fail(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative: {n}")
    if n == 13:
        os._exit(3)  # a decoder that crashes its process
    return n * n


def items(*ns: int) -> list[tuple[str, tuple[int]]]:
    return [(f"k{n}", (n,)) for n in ns]


@pytest.mark.parametrize("workers", [0, 2])
def test_results_come_back_in_order_with_errors_in_their_place(workers):
    pool = MediaPool(square_or_fail, workers)
    pool.submit(items(5, 6))  # started early, then asked for among others
    out = pool.results(items(3, -1, 5, 4))
    assert out[0] == 9 and out[2] == 25 and out[3] == 16
    assert isinstance(out[1], ValueError) and str(out[1]) == "negative: -1"
    assert pool.results(items(5)) == [25], "an item already collected is computed again"
    assert pool.results(items(2, 2)) == [4, 4], "a key asked for twice"
    pool.close()


def test_a_worker_that_dies_costs_its_items_and_the_pool_starts_again():
    pool = MediaPool(square_or_fail, 2)
    out = pool.results(items(13))
    assert isinstance(out[0], WorkerDied) and "died" in str(out[0])
    assert pool.results(items(2, 3)) == [4, 9], "a fresh pool serves the next batch"
    pool.close()


def test_workers_default_to_the_cores_and_refuse_a_negative_count():
    assert resolve_workers(None) == min(machine_cores(), MAX_AUTO_WORKERS)
    assert resolve_workers(0) == 0 and resolve_workers(3) == 3
    with pytest.raises(CcrError, match="--workers -1: give 0"):
        resolve_workers(-1)
