"""Compaction: merge the many small shards a stage commits (small for kill granularity) into
shards sized for reading, so a table of millions of rows is tens of files, not thousands.

DESIGN.md's rule: under ``STAGE.lock`` held exclusively (no run, cleanup or other compaction of
the stage is live; runs that start meanwhile wait), per (stage, fingerprint) and per table, write
the merged shard, then one marker that lists the keys of the markers it supersedes, then delete
those markers and their files. Readers ignore superseded markers, so a kill at any point leaves
the rows exactly once: before the new marker they are read from the old shards (the merged file
is an orphan the next cleanup deletes), after it from the merged one (the next cleanup finishes
the deletion). The merged marker lists every done and failed id and every original chunk key, so
resume, failures and the corpus fingerprint a trained run records do not change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ccr.corpus import feature_store, locks, runs
from ccr.corpus.corpus import Commit, Corpus, scan_shard
from ccr.errors import CcrError

TARGET_ROWS = 262_144  # rows per merged shard: a few MB, read whole in well under a second
# bytes per merged feature shard: feature rows differ in size by orders of magnitude (a pooled
# image: 1 KB; a video's patch tokens: MBs), so rows alone would not bound the file
TARGET_FEATURE_BYTES = 256 * 2**20
AUTO_MIN_COMMITS = 32  # the end of a run compacts only when it merges at least this many markers
# the end of a run leaves commits of this many rows as they are: it merges the small chunks model stages
# commit for kill granularity, not ingest's shards of 65,536 entries (nor those of them a few failed rows cut)
AUTO_SIZED_ROWS = 32_768


@dataclass
class Compacted:
    """What compacting one stage did: markers merged into how many, or nothing because it was busy."""

    stage: str
    merged: int = 0
    written: int = 0
    busy: bool = False


def compact(corpus: Corpus, stage: str | None = None, *, target_rows: int = TARGET_ROWS,
            min_commits: int = 2, sized_rows: int | None = None) -> list[Compacted]:
    """Compact ``stage`` (every stage when None); a stage that is running is skipped (``busy``).

    Nothing is written for a stage unless at least ``min_commits`` markers would merge. A commit of
    ``sized_rows`` rows or more (default: half the target) stays as it is.
    """
    if target_rows < 1:
        raise CcrError(f"--target-rows {target_rows}: give 1 or more rows per shard")
    present = sorted({c.stage for c in corpus.commits()})
    if stage is not None and stage not in present:
        raise CcrError(f"{corpus.root} holds no commits of stage {stage!r}; stages here: {', '.join(present) or 'none'}")
    out = []
    for name in [stage] if stage else present:
        with locks.stage_alone(corpus.lock_dir, name) as alone:
            if not alone:
                out.append(Compacted(name, busy=True))
                continue
            corpus.remove_orphans(name)  # also finishes a compaction killed before its deletions
            runs.close_dead(corpus, name)  # a killed run's record counts its rows before its markers merge
            groups = list(_groups(corpus, name, target_rows, target_rows // 2 if sized_rows is None else sized_rows))
            done = Compacted(name)
            if sum(len(g) for g in groups) >= min_commits:
                ids = {(c.fingerprint, c.key): c for c in corpus.commits(name, with_ids=True)}
                for group in groups:
                    _merge(corpus, group, [ids[(c.fingerprint, c.key)] for c in group])
                    done.merged += len(group)
                    done.written += 1
            out.append(done)
    return out


def after_run(corpus: Corpus, stage: str) -> None:
    """The runner's hook after a complete run: compact ``stage`` when it left many small shards
    and no other worker of it is live (the last shard worker to finish does it). A run that committed
    nothing (an empty source) has nothing to compact."""
    if corpus.commits(stage):
        compact(corpus, stage, min_commits=AUTO_MIN_COMMITS, sized_rows=AUTO_SIZED_ROWS)


def _size(corpus: Corpus, commit: Commit) -> int:
    """Rows of a commit's largest table (from its marker, or its files' metadata for markers without)."""
    if commit.rows:
        return max(commit.rows.values())
    import polars as pl

    return max((scan_shard(corpus.root / rel).select(pl.len()).collect().item() for rel in commit.files.values()),
               default=0)


def _feature_bytes(corpus: Corpus, commit: Commit) -> int:
    return sum((corpus.root / rel).stat().st_size for t, rel in commit.files.items() if t.startswith("features/"))


def _groups(corpus: Corpus, stage: str, target_rows: int, sized_rows: int) -> Iterator[list[Commit]]:
    """Runs of small commits of ``stage`` to merge, each of one fingerprint and about ``target_rows``.

    A run holds only commits adjacent in commit order as far as reading goes: a commit of another
    fingerprint of the stage, or of another stage writing one of its tables, ends it. The merged
    marker takes the last member's place, so which row a side table's reader keeps for an id
    (the last committed) and when an ingested row first landed stay as they were. A group also ends
    at ``TARGET_FEATURE_BYTES`` of feature shards; commits of ``sized_rows`` rows, or of half
    ``TARGET_FEATURE_BYTES``, stay as they are.
    """
    group: list[Commit] = []
    rows = size_bytes = 0
    for c in corpus.commits():
        if c.stage != stage:
            if group and any(t in c.files for g in group for t in g.files):
                yield from _full(group)
                group, rows, size_bytes = [], 0, 0
            continue
        size, nbytes = _size(corpus, c), _feature_bytes(corpus, c)
        if group and c.fingerprint != group[0].fingerprint:
            yield from _full(group)
            group, rows, size_bytes = [], 0, 0
        if size >= sized_rows or nbytes >= TARGET_FEATURE_BYTES // 2:
            yield from _full(group)
            group, rows, size_bytes = [], 0, 0
            continue
        group.append(c)
        rows, size_bytes = rows + size, size_bytes + nbytes
        if rows >= target_rows or size_bytes >= TARGET_FEATURE_BYTES:
            yield from _full(group)
            group, rows, size_bytes = [], 0, 0
    yield from _full(group)


def _full(group: list[Commit]) -> Iterator[list[Commit]]:
    """A group worth merging: two commits or more."""
    if len(group) > 1:
        yield group


def _merge(corpus: Corpus, group: list[Commit], with_ids: list[Commit]) -> None:
    """One merged shard per table, then its marker, then the old markers and files go.

    ``with_ids``: the group's markers with their done and failed ids (read once per stage).
    """
    import polars as pl

    first = group[0]
    stage, fp = first.stage, first.fingerprint
    keys = [c.key for c in group]
    key = "compact-" + hashlib.sha256("\0".join(keys).encode("utf-8")).hexdigest()[:16]
    files: dict[str, str] = {}
    rows: dict[str, int] = {}
    for table in sorted({t for c in group for t in c.files}):
        sources = [corpus.root / c.files[table] for c in group if table in c.files]
        path = corpus.shard_path(table, stage, fp, key)
        if table.startswith("features/"):
            rows[table] = feature_store.merge_shards(path, sources)
        else:
            frame = pl.concat([scan_shard(s) for s in sources], how="diagonal_relaxed").collect()
            rows[table] = corpus.write_shard(table, frame, path)
        files[table] = str(path.relative_to(corpus.root))
    done = {i for c in with_ids for i in c.done}
    failed = {i for c in with_ids for i in c.failed} - done  # failed once, done by a later retry
    run: Any = {c.run for c in group}
    corpus.commit(Commit(stage=stage, fingerprint=fp, key=key, files=files, done=sorted(done), failed=sorted(failed),
                         rows=rows, run=run.pop() if len(run) == 1 else "", table=first.table,
                         inputs=sum(c.inputs for c in group), supersedes=keys,
                         chunks=[k for c in group for k in c.chunk_keys]),
                  committed_at=group[-1].committed_at)
    for c in group:
        corpus.remove_marker(c)
