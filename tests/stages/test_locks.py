"""Workers of one stage beside each other: real processes holding real flocks.

Worker A is held between writing its shard and writing its marker (``upper_stage.pause_before_marker``),
so each test acts at the one moment where a shard is on disk but not yet committed.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.stages.runner import RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parent))
from test_run_records import upper_command  # noqa: E402
from test_runner import assert_same, snapshot  # noqa: E402
from upper_stage import STAGE, UpperConfig  # noqa: E402

OPTS = dict(batch_size=4, chunk_rows=8, progress=False)


class Paused:
    """Worker A as a subprocess, stopped before its first marker until ``release``."""

    def __init__(self, corpus: Path, tmp: Path, *layout: str):
        self.go = tmp / "go"
        script = Path(__file__).parent / "upper_stage.py"
        self.proc = subprocess.Popen([sys.executable, str(script), str(corpus), "0", "--pause", str(self.go), *layout],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = tmp / "go.ready"
        deadline = time.time() + 120
        while not ready.exists():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.time() < deadline, "worker A never reached its first marker"
            time.sleep(0.02)

    def release(self) -> None:
        self.go.write_text("")
        _, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _uncommitted(corpus_dir: Path) -> set[Path]:
    committed = {corpus_dir / f for c in Corpus.open(corpus_dir).commits("upper") for f in c.files.values()}
    return {p for p in corpus_dir.glob("captions*/upper-*") if p not in committed}


def test_a_starting_worker_keeps_a_live_workers_uncommitted_shard(toy_corpus, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(toy_corpus, clean)
    run_stage(Corpus.open(clean), STAGE, UpperConfig(), RunOptions(**OPTS))
    a = Paused(toy_corpus, tmp_path, "--num-shards", "2", "--shard-index", "0")
    try:
        in_flight = _uncommitted(toy_corpus)
        assert in_flight, "A wrote its shard files and waits before the marker"
        b = run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(num_shards=2, shard_index=1, **OPTS))
        assert b.rows_in > 0
        assert all(p.exists() for p in in_flight), "B must not delete A's written-but-uncommitted shard"
        a.release()
    finally:
        a.stop()
    assert_same(snapshot(clean), snapshot(toy_corpus))  # A's marker landed on its files: the table reads whole


def test_cleanup_runs_alone_and_touches_only_its_stage(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    hex32 = "0123456789abcdef" * 2
    mine_tmp = toy_corpus / "captions" / f".tmp-{hex32}-upper-abc123-0of1-k.parquet"
    mine_orphan = toy_corpus / "captions.upper" / "upper-abc123-0of1-k.parquet"
    marker_tmp = toy_corpus / ".state" / "commits" / "upper" / "abc123" / f".tmp-{hex32}-k.json"
    others = [toy_corpus / "captions" / f".tmp-{hex32}-translate-abc123-0of1-k.parquet",
              toy_corpus / "captions" / "backtranslate-abc123-0of1-k.parquet",
              toy_corpus / "features" / "clip" / f".tmp-{hex32}-features-abc123-0of1-k.arrow",
              toy_corpus / ".state" / "commits" / "translate" / "abc123" / f".tmp-{hex32}-k.json",
              toy_corpus / "captions" / "upperx-abc123-0of1-k.parquet"]
    for path in [mine_tmp, mine_orphan, marker_tmp, *others]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left by a killed run")
    run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    assert not mine_tmp.exists() and not mine_orphan.exists() and not marker_tmp.exists()
    assert all(p.exists() for p in others), "another stage's temporaries and shards are its own business"


def test_workers_with_different_layouts_are_refused_while_one_runs(toy_corpus, tmp_path):
    """An unsharded run beside --num-shards 2 would hand rows to two workers (2,000 duplicates)."""
    clean = tmp_path / "clean"
    shutil.copytree(toy_corpus, clean)
    run_stage(Corpus.open(clean), STAGE, UpperConfig(), RunOptions(**OPTS))
    a = Paused(toy_corpus, tmp_path)  # unsharded: shard 0 of 1
    try:
        for index in (0, 1):
            with pytest.raises(CcrError) as refused:
                run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(),
                          RunOptions(num_shards=2, shard_index=index, **OPTS))
            message = str(refused.value)
            assert "\n" not in message and f"pid {a.proc.pid}" in message
            assert "--num-shards 1" in message and "--num-shards 2" in message
            assert message.endswith("so wait for it to finish"), "a second run of one shard would be refused too"
        with pytest.raises(CcrError) as second:  # another unsharded run: its own --shard-index alone cannot help
            run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
        assert str(second.value) == (f"ccr upper is already running on this corpus (pid {a.proc.pid}); wait for it "
                                     "to finish, or split the work: start every worker with --num-shards N --shard-index I")
        a.release()
    finally:
        a.stop()
    for index in (0, 1):  # once A is done, the other layout owes nothing and duplicates nothing
        assert run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(),
                         RunOptions(num_shards=2, shard_index=index, **OPTS)).rows_in == 0
    assert_same(snapshot(clean), snapshot(toy_corpus))


def test_an_unsharded_run_is_refused_beside_a_sharded_one(toy_corpus, tmp_path):
    a = Paused(toy_corpus, tmp_path, "--num-shards", "2", "--shard-index", "1")
    try:
        with pytest.raises(CcrError, match=r"--num-shards 2 --shard-index 1 \(pid \d+\).*--num-shards 1.*"
                                           r"wait for it to finish or use --num-shards 2 with another --shard-index$"):
            run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
        with pytest.raises(CcrError, match=r"ccr upper shard 1/2 is already running on this corpus \(pid \d+\); "
                                           r"wait for it to finish, or give each worker its own --shard-index \(0\.\.1\)"):
            run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(num_shards=2, shard_index=1, **OPTS))
        a.release()
    finally:
        a.stop()
    captions = Corpus.open(toy_corpus).table("captions")
    assert captions["caption_id"].n_unique() == captions.height


def test_the_command_line_refuses_another_layout_in_one_line(toy_corpus, tmp_path):
    """``ccr upper --num-shards 2 --shard-index 1`` beside a live unsharded ``ccr upper``: exit 2 and one
    ``error:`` line naming both layouts, the live worker's pid, and nothing written by the refused run."""
    a = Paused(toy_corpus, tmp_path)  # unsharded: shard 0 of 1
    try:
        refused = subprocess.run(upper_command(toy_corpus, "--num-shards", "2", "--shard-index", "1"),
                                 capture_output=True, text=True, timeout=120)
        a.release()
    finally:
        a.stop()
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    errors = [line for line in (refused.stdout + refused.stderr).splitlines() if line.startswith("error: ")]
    assert errors == [refused.stderr.strip().splitlines()[-1]], refused.stderr
    assert f"--num-shards 1 --shard-index 0 (pid {a.proc.pid})" in errors[0]
    assert "this run asks for --num-shards 2 --shard-index 1" in errors[0]
    assert [r["num_shards"] for r in Corpus.open(toy_corpus).runs() if r["stage"] == "upper"] == [1]


def test_force_is_refused_while_another_worker_runs(toy_corpus, tmp_path):
    a = Paused(toy_corpus, tmp_path, "--num-shards", "2", "--shard-index", "0")
    try:
        with pytest.raises(CcrError, match=r"--force redoes ccr upper from scratch, but 1 worker\(s\) of it are running "
                                           rf"\(pid {a.proc.pid}\)"):
            run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(),
                      RunOptions(force=True, num_shards=2, shard_index=1, **OPTS))
        assert _uncommitted(toy_corpus), "the refused --force deleted nothing"
        a.release()
    finally:
        a.stop()
    mt = Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt")
    assert mt["caption_id"].n_unique() == mt.height


def test_a_forked_child_that_outlives_the_run_does_not_hold_its_lock(tmp_path):
    """Media and DataLoader workers are forked while the run holds its locks; one still alive when
    the run ends must not keep the next run of the same stage out."""
    import multiprocessing

    from ccr.corpus.locks import stage_lease

    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    directory = tmp_path / "locks"
    with stage_lease(directory, "features", 0, 1):
        child = fork.Process(target=_start_then_sleep, args=(started,))
        child.start()
        assert started.wait(60)
    try:
        with stage_lease(directory, "features", 0, 1):
            pass
    finally:
        child.kill()
        child.join()


def _start_then_sleep(started) -> None:
    started.set()
    time.sleep(60)
