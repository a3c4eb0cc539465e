"""``--limit N``: the first N rows of the whole plan in id order (DESIGN.md, "Stage runner").

Rerunning the same command finishes those N and then has nothing to do; the shards of a limited
run union to the unsharded run with the same limit; a grouped stage takes whole groups.
"""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from ccr.corpus.corpus import Corpus
from ccr.stages import table as stages
from ccr.stages.runner import DoneState, RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parent))
from test_run_records import start, upper_command  # noqa: E402
from test_runner import OPTS, assert_same, snapshot  # noqa: E402
from upper_stage import STAGE, UpperConfig  # noqa: E402

TINY_MT = {"tiny": True, "max_length": 4, "lang": "de"}


def _english(corpus: Path) -> list[str]:
    captions = Corpus.open(corpus).table("captions")
    return sorted(captions.filter((pl.col("lang") == "en") & (pl.col("origin") == "human"))["caption_id"].to_list())


def test_rerunning_a_limit_finishes_it_and_then_owes_nothing(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    first = _english(toy_corpus)[:10]
    # a run killed after its first chunk of 8 rows
    assert run_stage(corpus, STAGE, UpperConfig(), RunOptions(limit=8, **OPTS)).rows_in == 8
    assert run_stage(corpus, STAGE, UpperConfig(), RunOptions(limit=10, **OPTS)).rows_in == 2
    assert run_stage(corpus, STAGE, UpperConfig(), RunOptions(limit=10, **OPTS)).rows_in == 0
    mt = Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt")
    failed = set(Corpus.open(toy_corpus).failures()["row_id"])
    assert sorted(set(mt["parent_id"]) | failed) == first, "the first ten ids of the whole plan, nothing else"


def test_a_limited_run_sigkilled_mid_run_then_rerun_gives_the_limit_once(toy_corpus, tmp_path):
    """A real ``ccr upper --limit 20`` killed with its second chunk's shard on disk and no marker; the same
    command again owes the other 12 rows, and the corpus holds the first 20 ids once each."""
    proc = start(toy_corpus, tmp_path / "go", 2, "--limit", "20")  # chunks of 8: one committed, one in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(upper_command(toy_corpus, "--limit", "20"), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert [r["rows_in"] for r in Corpus.open(toy_corpus).runs() if r["stage"] == "upper"] == [8, 12]
    mt = Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt")
    failed = Corpus.open(toy_corpus).failures().filter(pl.col("stage") == "upper")["row_id"].to_list()
    assert mt["parent_id"].n_unique() == mt.height and len(set(failed)) == len(failed), "no row twice"
    assert sorted([*mt["parent_id"], *failed]) == _english(toy_corpus)[:20], "the first 20 ids, none lost"


def test_the_shards_of_a_limited_run_union_to_the_unsharded_run(toy_corpus, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(toy_corpus, single)
    run_stage(Corpus.open(single), STAGE, UpperConfig(), RunOptions(limit=20, **OPTS))
    counts = [run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(),
                        RunOptions(limit=20, num_shards=3, shard_index=i, **OPTS)).rows_in for i in range(3)]
    assert sum(counts) == 20 and all(0 < n < 20 for n in counts)
    assert_same(snapshot(single), snapshot(toy_corpus))


def test_translate_limit_twice_gives_the_limit_once(toy_corpus, tmp_path):
    """`ccr translate --limit 2000` twice gave 4,000 rows."""
    sharded = tmp_path / "sharded"
    shutil.copytree(toy_corpus, sharded)
    options = RunOptions(limit=12, chunk_rows=5, progress=False)
    assert stages.run("translate", toy_corpus, overrides=TINY_MT, options=options).rows_in == 12
    assert stages.run("translate", toy_corpus, overrides=TINY_MT, options=options).rows_in == 0
    mt = Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt")
    assert sorted(mt["parent_id"]) == _english(toy_corpus)[:12]
    for index in (0, 1):
        stages.run("translate", sharded, overrides=TINY_MT,
                   options=RunOptions(limit=12, num_shards=2, shard_index=index, progress=False))
    assert_same(snapshot(toy_corpus), snapshot(sharded))


def test_import_features_limit_is_resume_safe(toy_corpus, tmp_path):
    from ccr.formats.bigfile import write_npz

    media = sorted(Corpus.open(toy_corpus).table("media")["media_id"].to_list())[:6]
    for media_id in reversed(media):
        write_npz(tmp_path / "npz", media_id, np.full((2, 4), 1.0, dtype=np.float32))
    overrides = {"format": "npz", "src": str(tmp_path / "npz"), "name": "imp"}
    for expected in (3, 0):
        summary = stages.run("import-features", toy_corpus, overrides=overrides,
                             options=RunOptions(limit=3, chunk_rows=2, progress=False))
        assert summary.rows_in == expected
    assert sorted(Corpus.open(toy_corpus).features("imp").ids()) == media[:3]


def test_a_grouped_limit_takes_whole_groups_and_shards_union():
    groups = [["c", "a"], ["b", "z"], ["d"], ["e", "y"]]

    def owed(**options):
        done = DoneState(set(), set(), set(), options=RunOptions(**options))
        return done.owed_groups(groups)

    assert owed(limit=3) == [["c", "a"], ["b", "z"]]  # a, b, c are the first three ids: their groups whole
    assert owed(limit=0) == []
    union = [g for i in range(3) for g in owed(limit=3, num_shards=3, shard_index=i)]
    assert sorted(map(tuple, union)) == sorted(map(tuple, owed(limit=3)))
    resumed = DoneState({"a", "c"}, set(), set(), options=RunOptions(limit=3)).owed_groups(groups)
    assert resumed == [["b", "z"]], "a rerun finishes the same groups, nothing beyond"


def test_the_progress_total_is_what_this_run_still_owes(toy_corpus):
    from ccr.stages import runner

    totals = []
    real = runner.Progress

    class Recording(real):
        def set_total(self, total):
            totals.append(total)
            super().set_total(total)

    english = len(_english(toy_corpus))
    corpus = Corpus.open(toy_corpus)
    try:
        runner.Progress = Recording
        run_stage(corpus, STAGE, UpperConfig(), RunOptions(limit=30, **OPTS))
        run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    finally:
        runner.Progress = real
    assert totals == [30, english - 30]
