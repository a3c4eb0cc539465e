"""Compaction (DESIGN.md's rule): merged shards read as the small ones did; resume, failures,
``--force``, the corpus fingerprint and the locks keep working; a fault between its steps leaves
every row exactly once."""

import sys
from pathlib import Path

import polars as pl
import pytest

from ccr.corpus import compact as compaction
from ccr.corpus import locks
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.stages.runner import RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parents[1] / "stages"))
from test_runner import assert_same, snapshot  # noqa: E402
from upper_stage import STAGE, UpperConfig  # noqa: E402

OPTS = dict(batch_size=4, chunk_rows=4, progress=False)


class Fault(Exception):
    """Stands for a kill between two steps of a compaction."""


@pytest.fixture
def small_shards(toy_corpus, monkeypatch):
    """The toy corpus after a run of ``upper`` in 4-row commits (with planted failures), not compacted."""
    monkeypatch.setattr(compaction, "AUTO_MIN_COMMITS", 10**9)
    run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
    assert len(Corpus.open(toy_corpus).commits("upper")) > 4
    return toy_corpus


def _state(root: Path) -> tuple:
    """What must not change: the tables, outstanding failures, the chunks, the done and failed ids."""
    c = Corpus.open(root)
    marks = c.commits("upper", with_ids=True)
    return (snapshot(root), c.failures().sort("failure_id"), c.chunk_keys(),
            sorted(i for m in marks for i in m.done), sorted(i for m in marks for i in m.failed))


def _assert_state(a: tuple, b: tuple) -> None:
    assert_same(a[0], b[0])
    assert a[1].equals(b[1]) and a[2:] == b[2:]


def _files(root: Path) -> set[Path]:
    return {p for p in root.glob("captions*/upper-*") if p.is_file()}


def test_compaction_merges_small_shards_and_reads_the_same(small_shards):
    before, files = _state(small_shards), _files(small_shards)
    commits = len(Corpus.open(small_shards).commits("upper"))
    [done] = compaction.compact(Corpus.open(small_shards), "upper")
    assert (done.merged, done.written) == (commits, 1)
    assert len(Corpus.open(small_shards).commits("upper")) == 1
    after = _files(small_shards)
    assert len(after) == 2 < len(files) and not after & files  # captions and captions.upper: one shard each
    _assert_state(before, _state(small_shards))
    assert not any(p.name.startswith(".tmp-") for p in small_shards.rglob("*"))


def test_resume_force_and_retry_after_compaction(small_shards, toy_corpus, tmp_path):
    compaction.compact(Corpus.open(small_shards), "upper")
    again = run_stage(Corpus.open(small_shards), STAGE, UpperConfig(), RunOptions(**OPTS))
    assert again.rows_in == 0  # every done row is still done, failures stay failed
    assert Corpus.open(small_shards).failures().height > 0
    before = snapshot(small_shards)
    forced = run_stage(Corpus.open(small_shards), STAGE, UpperConfig(), RunOptions(force=True, **OPTS))
    assert forced.rows_in > 0
    assert_same(before, snapshot(small_shards))
    fixed = run_stage(Corpus.open(small_shards), STAGE, UpperConfig(), RunOptions(retry_failed=True, **OPTS))
    assert fixed.rows_failed == fixed.rows_in > 0  # the failed rows, and only they, are tried again


def test_a_second_compaction_merges_merged_shards_with_new_ones(small_shards):
    compaction.compact(Corpus.open(small_shards), "upper")
    first = _state(small_shards)
    run_stage(Corpus.open(small_shards), STAGE, UpperConfig(suffix="?"), RunOptions(**OPTS))
    grown = _state(small_shards)
    [done] = compaction.compact(Corpus.open(small_shards), "upper")
    assert done.written == 1  # only the new fingerprint's commits merge: the first is one marker already
    _assert_state(grown, _state(small_shards))
    assert set(first[2]) < set(grown[2])


@pytest.mark.parametrize("step", ["before_marker", "after_marker"])
def test_a_fault_between_steps_leaves_every_row_once(small_shards, monkeypatch, step):
    before = _state(small_shards)
    if step == "before_marker":  # the merged shards are written, their marker is not
        monkeypatch.setattr(Corpus, "commit", lambda self, commit, **kw: (_ for _ in ()).throw(Fault()))
    else:  # the marker is written, no old marker or file is deleted yet
        monkeypatch.setattr(Corpus, "remove_marker", lambda self, commit: (_ for _ in ()).throw(Fault()))
    with pytest.raises(Fault):
        compaction.compact(Corpus.open(small_shards), "upper")
    monkeypatch.undo()
    _assert_state(before, _state(small_shards))
    again = run_stage(Corpus.open(small_shards), STAGE, UpperConfig(), RunOptions(**OPTS))
    assert again.rows_in == 0  # the stage's cleanup finished (or undid) the compaction; nothing owed
    _assert_state(before, _state(small_shards))
    compaction.compact(Corpus.open(small_shards), "upper")
    _assert_state(before, _state(small_shards))
    committed = {small_shards / f for c in Corpus.open(small_shards).commits() for f in c.files.values()}
    assert _files(small_shards) <= committed  # no orphan stays


def test_a_busy_stage_is_skipped(small_shards):
    with locks.stage_alone(Corpus.open(small_shards).lock_dir, "upper") as alone:
        assert alone
        [done] = compaction.compact(Corpus.open(small_shards), "upper")
    assert done.busy and done.written == 0
    assert len(Corpus.open(small_shards).commits("upper")) > 4


def test_the_end_of_a_run_compacts_only_many_small_commits(toy_corpus, monkeypatch):
    monkeypatch.setattr(compaction, "AUTO_MIN_COMMITS", 4)
    run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
    assert len(Corpus.open(toy_corpus).commits("upper")) == 1
    monkeypatch.setattr(compaction, "AUTO_MIN_COMMITS", 10**9)
    run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(suffix="?"), RunOptions(**OPTS))
    small = len(Corpus.open(toy_corpus).commits("upper")) - 1
    assert small > 2
    monkeypatch.setattr(compaction, "AUTO_MIN_COMMITS", 4)  # as many commits, but each already a shard's
    monkeypatch.setattr(compaction, "AUTO_SIZED_ROWS", 1)  # size (as ingest's 65,536 entries are): they stay
    run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(suffix="#"), RunOptions(**OPTS))
    assert len(Corpus.open(toy_corpus).commits("upper")) == 1 + 2 * small


def test_target_rows_bounds_merged_shards(small_shards):
    before = _state(small_shards)
    compaction.compact(Corpus.open(small_shards), "upper", target_rows=10)  # commits of 4 rows: 3 a shard
    sizes = [pl.scan_parquet(p).select(pl.len()).collect().item() for p in small_shards.glob("captions/upper-*")]
    assert len(sizes) > 1 and max(sizes) <= 12
    _assert_state(before, _state(small_shards))


def test_user_mistakes_are_one_line(small_shards):
    with pytest.raises(CcrError, match="no commits of stage 'nope'; stages here: .*upper"):
        compaction.compact(Corpus.open(small_shards), "nope")
    with pytest.raises(CcrError, match="--target-rows 0"):
        compaction.compact(Corpus.open(small_shards), target_rows=0)


def test_many_ids_live_beside_the_marker(small_shards, monkeypatch):
    """A marker with more ids than ``INLINE_IDS`` keeps them in Parquet; a fault after that file
    and before the marker leaves an orphan the stage's cleanup removes."""
    from ccr.corpus import corpus as corpus_module

    before = _state(small_shards)
    monkeypatch.setattr(corpus_module, "INLINE_IDS", 1)
    write_json = corpus_module.atomic.write_json
    monkeypatch.setattr(corpus_module.atomic, "write_json", lambda *a: (_ for _ in ()).throw(Fault()))
    with pytest.raises(Fault):
        compaction.compact(Corpus.open(small_shards), "upper")
    sidecars = small_shards / ".state" / "commits" / "upper"
    assert list(sidecars.rglob("*.ids.parquet"))
    monkeypatch.setattr(corpus_module.atomic, "write_json", write_json)
    _assert_state(before, _state(small_shards))
    compaction.compact(Corpus.open(small_shards), "upper")
    [marker] = Corpus.open(small_shards).commits("upper")
    assert [p.name for p in sidecars.rglob("*.ids.parquet")] == [marker.ids]
    _assert_state(before, _state(small_shards))
    assert run_stage(Corpus.open(small_shards), STAGE, UpperConfig(), RunOptions(**OPTS)).rows_in == 0


def test_feature_shards_merge_and_read_the_same(toy_corpus, monkeypatch):
    """Feature stores (Arrow shards) compact too, up to ``TARGET_FEATURE_BYTES`` a shard; every id reads
    the same array and the stage has nothing left to do."""
    import numpy as np

    from ccr.vision.features import STAGE as FEATURES
    from ccr.vision.features import FeaturesConfig

    monkeypatch.setattr(compaction, "AUTO_MIN_COMMITS", 10**9)
    cfg, opts = FeaturesConfig(model="tiny/clip", device="cpu"), RunOptions(batch_size=4, chunk_rows=8, progress=False)
    run_stage(Corpus.open(toy_corpus), FEATURES, cfg, opts)
    corpus = Corpus.open(toy_corpus)
    [name] = corpus.feature_names()
    before = {m: corpus.features(name).get(m) for m in corpus.features(name).ids()}
    shards, chunks = len(corpus.files(f"features/{name}")), corpus.chunk_keys()
    one = (toy_corpus / corpus.files(f"features/{name}")[0]).stat().st_size
    monkeypatch.setattr(compaction, "TARGET_FEATURE_BYTES", 3 * one)  # about 3 commits a merged shard
    [done] = compaction.compact(corpus, "features")
    corpus = Corpus.open(toy_corpus)
    after = corpus.features(name)
    assert shards > 3 and 1 < len(corpus.files(f"features/{name}")) < shards and done.written > 1
    assert sorted(after.ids()) == sorted(before) and all(np.array_equal(after.get(m), v) for m, v in before.items())
    assert corpus.chunk_keys() == chunks
    assert run_stage(corpus, FEATURES, cfg, opts).rows_in == 0


def test_merging_feature_shards_holds_one_source_open_at_a_time(tmp_path):
    """Thousands of small feature commits merge under a low open-files limit; a shard of another
    dim is one line, not a traceback."""
    import resource

    import numpy as np

    from ccr.corpus.feature_store import merge_shards, write_shard

    sources = []
    for i in range(200):
        sources.append(tmp_path / f"s{i}.arrow")
        write_shard(sources[-1], [{"media_id": f"m{i}", "features": np.full((1, 4), i, np.float16)}])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, hard), hard))
    try:
        assert merge_shards(tmp_path / "merged.arrow", sources) == 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    write_shard(tmp_path / "odd.arrow", [{"media_id": "x", "features": np.zeros((1, 8), np.float16)}])
    with pytest.raises(CcrError, match="odd.arrow holds features of another dim or dtype"):
        merge_shards(tmp_path / "bad.arrow", [sources[0], tmp_path / "odd.arrow"])
