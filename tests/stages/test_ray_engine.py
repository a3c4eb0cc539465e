"""The Ray engine's actor pool: ``ordered_map`` (ingest's readers) never waits on an actor that cannot start;
a model stage's actors load the model once for the whole run and are killed when it ends."""

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


def setup_noted(corpus, cfg, plan, log):
    """``upper``'s setup, noting in ``log`` which actor ran it (or ``driver``)."""
    import ray

    with open(log, "a") as fh:
        fh.write(f"{ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None}\n")
    return {"loaded": True}


def setup_failing(corpus, cfg, plan):
    raise CcrError("no such model: upper-xl")


def stage_actors(ray) -> dict[str, str]:
    from ray._private.state import actors

    return {a["ActorID"]: a["State"] for a in actors().values() if a["ActorClassName"].endswith("_StageActor")}


def killed(ray, before: set[str]) -> dict[str, str]:
    """The stage actors started since ``before``, once all are dead (a kill takes a moment to show)."""
    import time

    for _ in range(100):
        ran = {a: s for a, s in stage_actors(ray).items() if a not in before}
        if set(ran.values()) == {"DEAD"}:
            break
        time.sleep(0.1)
    return ran


def test_each_actor_loads_the_model_once_for_a_run_of_many_windows(toy_corpus, tmp_path, ray_local, monkeypatch):
    """One pool for the whole run: ``setup`` runs once per actor, not once per window; the actors are
    gone when the run ends; the corpus is a local run's."""
    import collections
    import functools
    import shutil
    from dataclasses import replace

    from test_runner import OPTS, assert_same, snapshot
    from upper_stage import STAGE, UpperConfig

    from ccr.corpus.corpus import Corpus
    from ccr.stages.runner import RunOptions, run_stage

    local = tmp_path / "local"
    shutil.copytree(toy_corpus, local)
    run_stage(Corpus.open(local), STAGE, UpperConfig(), RunOptions(**OPTS))
    windows = []
    window = ray_engine.StagePool.window
    monkeypatch.setattr(ray_engine.StagePool, "window", lambda self, chunks, batch_size: (
        windows.append(len(chunks)), window(self, chunks, batch_size))[1])
    log = tmp_path / "setups.log"
    before = set(stage_actors(ray_local))
    summary = run_stage(Corpus.open(toy_corpus), replace(STAGE, setup=functools.partial(setup_noted, log=log)),
                        UpperConfig(), RunOptions(engine="ray", ray_concurrency=2, ray_window_rows=16, **OPTS))
    assert summary.rows_failed > 0 and summary.rows_out["captions"] > 0
    assert len(windows) >= 3, windows
    setups = log.read_text().split()
    print(f"{len(windows)} windows {windows}, setups per actor {collections.Counter(setups)}")
    assert len(setups) == 2 and len(set(setups)) == 2, f"one setup per actor over {len(windows)} windows: {setups}"
    ran = killed(ray_local, before)
    assert sorted(ran) == sorted(setups) and set(ran.values()) == {"DEAD"}, "the run's actors are killed at its end"
    assert_same(snapshot(local), snapshot(toy_corpus))


def test_a_setup_that_fails_is_one_line_and_the_actors_are_killed(toy_corpus, ray_local):
    from dataclasses import replace

    from upper_stage import STAGE, UpperConfig

    from ccr.corpus.corpus import Corpus
    from ccr.stages.runner import RunOptions, run_stage

    before = set(stage_actors(ray_local))
    with pytest.raises(CcrError, match="^no such model: upper-xl$"):
        run_stage(Corpus.open(toy_corpus), replace(STAGE, setup=setup_failing), UpperConfig(),
                  RunOptions(engine="ray", ray_concurrency=2, ray_window_rows=16, batch_size=4, chunk_rows=8,
                             progress=False))
    ran = killed(ray_local, before)
    assert ran and set(ran.values()) == {"DEAD"}, "a failed run's actors are killed too"
