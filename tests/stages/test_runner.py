import random
import shutil
import signal
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
from upper_stage import STAGE, UpperConfig  # noqa: E402

OPTS = dict(batch_size=4, chunk_rows=8, progress=False)


def snapshot(corpus_dir: Path) -> dict[str, pl.DataFrame]:
    """'Identical corpus' = identical data tables sorted by id (DESIGN.md)."""
    c = Corpus.open(corpus_dir)
    return {
        "captions": _by_id(c.table("captions"), "caption_id"),
        "media": _by_id(c.table("media"), "media_id"),
        "failures": _by_id(c.table("failures"), "failure_id"),
    }


def _by_id(table: pl.DataFrame, key: str) -> pl.DataFrame:
    """Sorted by id, then by every other column: two runs' rows may share an id (a row and its
    --force redo, two models' MT of one caption), and polars does not keep ties in order."""
    return table.sort([key, *(c for c in table.columns if c != key)], nulls_last=True)


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for name in a:
        assert a[name].columns == b[name].columns, name
        assert a[name].equals(b[name]), name


def test_stage_writes_rows_side_table_and_isolated_failures(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    english = corpus.table("captions").filter(pl.col("lang") == "en")
    stars = english.filter(pl.col("text").str.contains("star"))
    summary = run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    assert summary.rows_in == english.height
    assert summary.rows_failed == stars.height > 0
    assert summary.rows_out["captions"] == english.height - stars.height
    captions = corpus.table("captions")
    mt = captions.filter(pl.col("origin") == "mt")
    assert set(mt["parent_id"]) == set(english["caption_id"]) - set(stars["caption_id"])
    # the side table is joined on the id
    joined = captions.filter(pl.col("caption_id").is_in(mt["parent_id"].to_list()))
    assert (joined["upper_len"] == joined["text"].str.len_chars()).all()
    failures = corpus.failures()
    assert set(failures["row_id"]) == set(stars["caption_id"])
    assert failures["reason"].str.starts_with("ValueError: stars are not allowed").all()
    run = corpus.runs()[-1]
    assert run["stage"] == "upper" and run["rows_in"] == english.height and run["rows_failed"] == stars.height
    assert run["status"] == "complete" and "polars" in run["versions"]


def test_rerun_skips_done_rows_and_failures_until_retry(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    before = snapshot(toy_corpus)
    again = run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    assert again.rows_in == 0
    assert_same(before, snapshot(toy_corpus))
    retried = run_stage(corpus, STAGE, UpperConfig(), RunOptions(retry_failed=True, **OPTS))
    assert retried.rows_in == before["failures"].height and retried.rows_failed == before["failures"].height


def test_batch_size_does_not_change_outputs_but_config_does(toy_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(toy_corpus, other)
    run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
    run_stage(Corpus.open(other), STAGE, UpperConfig(), RunOptions(batch_size=64, chunk_rows=1000, progress=False))
    assert_same(snapshot(toy_corpus), snapshot(other))
    changed = run_stage(Corpus.open(other), STAGE, UpperConfig(suffix="?"), RunOptions(**OPTS))
    assert changed.rows_in > 0, "a new fingerprint owes every row again"


def test_shards_split_the_work_and_together_equal_one_run(toy_corpus, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(toy_corpus, single)
    run_stage(Corpus.open(single), STAGE, UpperConfig(), RunOptions(**OPTS))
    counts = []
    for index in range(3):
        s = run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(),
                      RunOptions(num_shards=3, shard_index=index, **OPTS))
        counts.append(s.rows_in)
    assert all(n > 0 for n in counts)
    assert_same(snapshot(single), snapshot(toy_corpus))


def test_limit_and_force(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    assert run_stage(corpus, STAGE, UpperConfig(), RunOptions(limit=5, **OPTS)).rows_in == 5
    rest = run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    full = snapshot(toy_corpus)
    forced = run_stage(corpus, STAGE, UpperConfig(), RunOptions(force=True, **OPTS))
    assert forced.rows_in == rest.rows_in + 5
    assert_same(full, snapshot(toy_corpus))


def test_bad_shard_options_are_clear_errors(toy_corpus, cli_error):
    with pytest.raises(CcrError, match="--shard-index must be in 0..1"):
        run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(num_shards=2, shard_index=2))
    message = cli_error(["translate", toy_corpus, "--num-shards", "0"], "--num-shards must be at least 1 (got 0)")
    assert "--shard-index" not in message, "a shard index 0..-1 is no hint"


def _start(corpus_dir: Path, delay: float) -> subprocess.Popen:
    script = Path(__file__).parent / "upper_stage.py"
    return subprocess.Popen([sys.executable, str(script), str(corpus_dir), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_process_on_the_same_stage_is_refused(toy_corpus):
    proc = _start(toy_corpus, 0.2)
    try:
        deadline = time.time() + 30
        lock = toy_corpus / ".state" / "locks" / "upper-0.lock"
        while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.05)
        with pytest.raises(CcrError, match=r"ccr upper is already running on this corpus \(pid \d+\)"):
            run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(delay=0.2), RunOptions(**OPTS))
    finally:
        proc.kill()
        proc.wait()


def test_sigkill_five_times_then_resume_equals_an_uninterrupted_run(toy_corpus, tmp_path):
    """Kill the stage at random points five times; the finished corpus must equal a clean run."""
    clean = tmp_path / "clean"
    shutil.copytree(toy_corpus, clean)
    run_stage(Corpus.open(clean), STAGE, UpperConfig(delay=0.0), RunOptions(**OPTS))

    rng = random.Random(7)
    markers = toy_corpus / ".state" / "commits" / "upper"
    for _ in range(5):
        before = len(list(markers.rglob("*.json")))
        proc = _start(toy_corpus, 0.03)
        deadline = time.time() + 60
        while time.time() < deadline and len(list(markers.rglob("*.json"))) <= before:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))  # somewhere inside the next shard: mid-batch, mid-write or mid-commit
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = sum(len(c.done) + len(c.failed) for c in Corpus.open(toy_corpus).commits("upper", with_ids=True))
    final = run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(delay=0.0), RunOptions(**OPTS))
    assert partial >= 5 * 8 and final.rows_in > 0, "every kill landed after some progress and before the end"
    assert all(r["status"] != "complete" for r in Corpus.open(toy_corpus).runs()[:-1] if r["stage"] == "upper")
    assert_same(snapshot(clean), snapshot(toy_corpus))
    assert not list(toy_corpus.rglob(".tmp-*")), "temporaries of killed writes are cleaned up"
    shard_files = {p.name for p in (toy_corpus / "captions").glob("upper-*")}
    referenced = {Path(f).name for c in Corpus.open(toy_corpus).commits("upper") for f in c.files.values()}
    assert shard_files <= referenced, "no orphan shard survives a resumed run"


def test_ray_engine_gives_the_same_corpus_as_the_local_one(toy_corpus, tmp_path, ray_local):
    """A real local Ray instance: an actor pool runs the stage's batch function."""
    local = tmp_path / "local"
    shutil.copytree(toy_corpus, local)
    run_stage(Corpus.open(local), STAGE, UpperConfig(), RunOptions(**OPTS))
    summary = run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(),
                        RunOptions(engine="ray", ray_concurrency=2, ray_window_rows=40, **OPTS))
    assert summary.rows_failed > 0 and summary.rows_out["captions"] > 0
    assert_same(snapshot(local), snapshot(toy_corpus))


def test_a_marker_killed_before_its_rename_is_not_a_commit(toy_corpus):
    """A SIGKILL between writing a marker and renaming it leaves `.tmp-*`; that chunk must be redone."""
    corpus = Corpus.open(toy_corpus)
    run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    clean = snapshot(toy_corpus)
    marker = next((toy_corpus / ".state" / "commits" / "upper").rglob("*.json"))
    marker.rename(marker.parent / f".tmp-deadbeef-{marker.name}")
    redo = run_stage(Corpus.open(toy_corpus), STAGE, UpperConfig(), RunOptions(**OPTS))
    assert redo.rows_in > 0
    assert_same(clean, snapshot(toy_corpus))


def test_side_tables_override_only_the_rows_they_have(toy_corpus):
    from ccr.corpus.corpus import Commit

    corpus = Corpus.open(toy_corpus)
    first = corpus.table("captions").sort("caption_id").row(0, named=True)
    path = corpus.shard_path("captions.fix", "fix", "fp", "0")
    corpus.write_shard("captions.fix", [{"caption_id": first["caption_id"], "text": "fixed"}], path)
    corpus.commit(Commit(stage="fix", fingerprint="fp", key="0", files={"captions.fix": str(path.relative_to(corpus.root))}))
    after = corpus.table("captions").sort("caption_id")
    assert after["text"][0] == "fixed" and after["text"].null_count() == 0
    assert after["text"][1:].to_list() == corpus.table("captions", with_side_tables=False).sort("caption_id")["text"][1:].to_list()
