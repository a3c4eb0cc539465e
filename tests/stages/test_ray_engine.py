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
    """One pool for the whole run: ``setup`` runs once per actor however many ``ray_window_rows`` the
    run streams; the driver never holds more than that (and one chunk) out; the actors are gone when
    the run ends; the corpus is a local run's."""
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
    taken, out = [], []  # rows of each chunk the pool took; rows out (taken, not handed back) as it took each
    stream = ray_engine.StagePool.stream

    def counted(self, chunks, batch_size, max_rows):
        back = 0

        def taking():
            for chunk in chunks:
                taken.append(len(chunk.items))
                out.append(sum(taken) - back)
                yield chunk

        for chunk, results in stream(self, taking(), batch_size, max_rows):
            back += len(chunk.items)
            yield chunk, results

    monkeypatch.setattr(ray_engine.StagePool, "stream", counted)
    log = tmp_path / "setups.log"
    before = set(stage_actors(ray_local))
    summary = run_stage(Corpus.open(toy_corpus), replace(STAGE, setup=functools.partial(setup_noted, log=log)),
                        UpperConfig(), RunOptions(engine="ray", ray_concurrency=2, ray_window_rows=16, **OPTS))
    assert summary.rows_failed > 0 and summary.rows_out["captions"] > 0
    assert sum(taken) >= 3 * 16, taken
    assert max(out) <= 16 + max(taken), f"rows out as each chunk was taken: {out}"
    setups = log.read_text().split()
    print(f"{sum(taken)} rows in {len(taken)} chunks, at most {max(out)} out, setups per actor "
          f"{collections.Counter(setups)}")
    assert len(setups) == 2 and len(set(setups)) == 2, f"one setup per actor over {sum(taken)} rows: {setups}"
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


def batches_noted(stage, batches, state, cfg, plan, log, slow):
    """A ``process`` for ``StagePool`` whose batches are lists of numbers: notes each batch's first number in
    ``log`` as it starts; the batch starting at ``slow`` then waits (up to 30 s) for a batch of a later
    window (one starting past it) to start, and answers whether one did; any other answers its numbers."""
    import time

    out = []
    for batch in batches:
        with open(log, "a") as fh:
            fh.write(f"{batch[0]}\n")
        if batch[0] != slow:
            out.append(batch)
            continue
        for _ in range(300):
            if any(int(n) > slow for n in open(log).read().split()):
                break
            time.sleep(0.1)
        out.append(any(int(n) > slow for n in open(log).read().split()))
    return out


def test_the_next_windows_batches_start_while_the_slowest_of_a_window_runs(toy_corpus, tmp_path, ray_local):
    """Chunks stream: once the first chunk is back, the next chunk past ``max_rows`` goes to the actor that
    is free while the last batch of the first window's worth still runs. (Handed over a window at a
    time, that batch would wait in vain: the next window starts only when all of this one is back.)"""
    import functools
    from types import SimpleNamespace

    from upper_stage import STAGE, UpperConfig

    from ccr.corpus.corpus import Corpus

    log = tmp_path / "starts.log"
    chunks = [SimpleNamespace(items=list(range(start, start + 8))) for start in range(0, 40, 8)]
    # 2 actors, 16 rows out: chunks 0 and 1 (batches 0, 4 | 8, 12); batch 12 is the slow one
    with ray_engine.StagePool(STAGE, Corpus.open(toy_corpus).root, UpperConfig(), 2,
                              functools.partial(batches_noted, log=str(log), slow=12)) as pool:
        back = list(pool.stream(iter(chunks), 4, 16))
    starts = [int(n) for n in log.read_text().split()]
    print(f"batches started in the order {starts}")
    assert [chunk for chunk, _ in back] == chunks, "every chunk, in order"
    assert [results for _, results in back] == [[c.items[:4], c.items[4:]] for c in chunks[:1]] + [
        [[8, 9, 10, 11], True]] + [[c.items[:4], c.items[4:]] for c in chunks[2:]], \
        f"batch 12 saw a later batch start while it ran: {starts}"
