"""``ordered_map`` (ingest's readers on Ray) never waits on an actor that cannot start."""

import pytest

from ccr.errors import CcrError
from ccr.stages import ray_engine


def double(x: int) -> int:
    return 2 * x


def test_more_actors_than_the_cluster_holds_still_map_every_item_in_order(ray_local):
    # 2 CPUs: a third one-CPU actor could never start, and the items dealt to it would never come back
    assert list(ray_engine.ordered_map(double, range(9), 5)) == [2 * i for i in range(9)]


def test_no_actor_starting_is_one_line(ray_local, monkeypatch):
    monkeypatch.setattr(ray_engine, "READY_SECONDS", 0.5)
    monkeypatch.setattr(ray_engine, "_nodes", lambda: [(4.0, 0.0)])  # believes in CPUs the cluster lacks
    with pytest.raises(CcrError, match="no Ray actor with 4 CPU\\(s\\) started within 0.5 s"):
        list(ray_engine.ordered_map(double, range(3), 1))
