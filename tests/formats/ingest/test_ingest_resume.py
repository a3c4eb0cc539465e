"""The ingest stage's unit of work: source entries in file order, keyed by their range.

``--limit N`` takes the first N entries; rerunning it has nothing to do; a full run then adds
exactly the rest, however the earlier runs cut their chunks. Corpora made before this keying
still take a rerun without losing or duplicating a row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ccr.corpus.corpus import Corpus
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions

LEGACY = Path(__file__).parents[2] / "fixtures" / "legacy" / "corpus"


def options(limit: int | None = None, chunk: int = 8) -> RunOptions:
    return RunOptions(progress=False, limit=limit, chunk_rows=chunk, batch_size=chunk)


def source(tmp_path: Path, n: int = 50) -> Path:
    rows = [{"media_id": f"m{i // 4}", "path": f"m{i // 4}.png", "text": f"caption {i}", "caption_id": f"c{i:03d}"}
            for i in range(n)]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def caption_ids(corpus_dir: Path) -> list[str]:
    return sorted(Corpus.open(corpus_dir).table("captions")["caption_id"].to_list())


def test_limit_takes_the_first_entries_and_a_full_run_adds_exactly_the_rest(tmp_path):
    src, corpus = source(tmp_path), tmp_path / "corpus"
    first = ingest("jsonl", src, corpus, options=options(limit=20))
    assert first.rows_in == 20 and caption_ids(corpus) == [f"c{i:03d}" for i in range(20)]
    again = ingest("jsonl", src, corpus, options=options(limit=20))
    assert again.rows_in == 0 and again.rows_out == {} and again.skipped_chunks == 3
    rest = ingest("jsonl", src, corpus, options=options(chunk=16))  # another chunk size: the ranges still hold
    assert rest.rows_in == 30 and rest.rows_out["captions"] == 30
    assert caption_ids(corpus) == [f"c{i:03d}" for i in range(50)]
    assert Corpus.open(corpus).count("media") == 13 and Corpus.open(corpus).failures().height == 0
    done = ingest("jsonl", src, corpus, options=options())
    assert done.rows_in == 0 and done.rows_out == {}


def test_a_run_killed_after_some_chunks_finishes_the_same_limit(tmp_path):
    """A killed run leaves committed chunks; here the first run's limit stands in for the kill."""
    src, corpus = source(tmp_path), tmp_path / "corpus"
    ingest("jsonl", src, corpus, options=options(limit=5))  # a partial chunk: entries 0-4 of 0-7
    rerun = ingest("jsonl", src, corpus, options=options(limit=30))
    assert rerun.rows_in == 25 and caption_ids(corpus) == [f"c{i:03d}" for i in range(30)]


def test_rows_in_counts_source_entries_and_failures_keep_their_entry(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text('{"media_id": "a", "path": "a.png", "text": "a dog"}\n{"media_id": \n'
                   '{"media_id": "a", "text": ""}\n', encoding="utf-8")
    summary = ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert summary.rows_in == 3 and summary.rows_failed == 2
    commits = Corpus.open(tmp_path / "corpus").commits("ingest", summary.fingerprint, with_ids=True)
    assert [c.key for c in commits] == ["0000000000-0000000003"]
    assert commits[0].failed == [f"{src}:2"] and commits[0].done == [f"{src}:1", f"{src}:3"]


def test_a_corpus_ingested_before_entry_ranges_takes_a_rerun_without_duplicates(tmp_path, toy_source):
    """The legacy corpus (tests/fixtures/legacy) was ingested from the toy source with position keys."""
    corpus = tmp_path / "corpus"
    shutil.copytree(LEGACY, corpus)
    before = Corpus.open(corpus)
    media, captions = before.table("media").sort("media_id"), before.table("captions", with_side_tables=False)
    summary = ingest("jsonl", toy_source / "captions.jsonl", corpus, options=RunOptions(progress=False))
    assert summary.rows_out == {} and summary.rows_failed == 0 and summary.rows_in > 0
    after = Corpus.open(corpus)
    assert after.table("media").sort("media_id").equals(media)
    assert after.table("captions", with_side_tables=False).height == captions.height


@pytest.mark.parametrize("args", [
    {"split": "tset"},  # a bad option
    {"src": "missing.jsonl"},  # a missing source
    {"src": "dir"},  # a directory where a file belongs
    {"fmt": "coco"},  # a source the reader refuses outright
])
def test_a_run_that_fails_at_once_leaves_no_corpus_directory(tmp_path, args):
    from ccr.errors import CcrError

    (tmp_path / "dir").mkdir()
    good = source(tmp_path)
    src = tmp_path / args.pop("src") if "src" in args else good
    with pytest.raises(CcrError):
        ingest(args.pop("fmt", "jsonl"), src, tmp_path / "new" / "corpus", options=options(), **args)
    assert not (tmp_path / "new").exists()


def test_media_refused_once_and_ingested_later_is_no_longer_an_outstanding_failure(tmp_path):
    """Ingest's done ids are source entries: a refused item that a later ingest accepts is fixed by its presence."""
    corpus = tmp_path / "corpus"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"media_id": "m0", "path": "m0.png", "split": "bogus", "text": "a dog",
                               "caption_id": "c0"}) + "\n", encoding="utf-8")
    ingest("jsonl", bad, corpus, options=options())
    assert sorted(Corpus.open(corpus).failures()["table"].to_list()) == ["captions", "media"]
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"media_id": "m0", "path": "m0.png", "split": "test", "text": "a dog",
                                "caption_id": "c0"}) + "\n", encoding="utf-8")
    ingest("jsonl", good, corpus, options=options())
    opened = Corpus.open(corpus)
    assert opened.failures().height == 0 and opened.failures(outstanding=False).height == 2


def test_a_source_of_several_files_ingested_one_after_another_is_checked_across_files(tmp_path):
    """What the README tells a user with a sharded source: each file's entries meet the corpus's."""
    first, second = tmp_path / "part-0.jsonl", tmp_path / "part-1.jsonl"
    first.write_text(json.dumps({"media_id": "m", "path": "m.png", "caption_id": "c0", "text": "a dog"}) + "\n"
                     + json.dumps({"media_id": "n", "path": "n.png", "caption_id": "c1", "text": "a cat"}) + "\n")
    second.write_text("".join(json.dumps(r) + "\n" for r in [
        {"media_id": "m", "path": "m.png", "caption_id": "c0", "text": "a dog"},  # a repeat: nothing to do
        {"media_id": "m", "path": "m.png", "caption_id": "c1", "text": "a bird"},  # c1 said otherwise before
        {"media_id": "n", "path": "other.png", "caption_id": "c2", "text": "a cow"},  # n described otherwise
        {"media_id": "o", "path": "o.png", "caption_id": "c3", "text": "a fox"}]))
    corpus = tmp_path / "corpus"
    for part in (first, second):
        ingest("jsonl", part, corpus, options=options())
    assert caption_ids(corpus) == ["c0", "c1", "c3"]
    failures = Corpus.open(corpus).failures()
    assert sorted(failures["row_id"].to_list()) == ["c1", "c2", "n"]  # n: the media conflict, and its caption
    assert all(src.startswith(str(second)) for src in failures["source"].to_list())
    conflict = failures.filter(failures["row_id"] == "n")["reason"].item()
    assert conflict == "media conflict: media_id 'n' has path 'other.png' here but 'n.png' in the corpus"


def test_a_rerun_finds_its_chunks_done_by_their_ranges_without_reading_the_done_ids(tmp_path, monkeypatch):
    """At 2M lines the done ids are 330 MB of Python strings; ingest's ranges make them unneeded."""
    from ccr.corpus import corpus as corpus_module

    monkeypatch.setattr(corpus_module, "INLINE_IDS", 0)  # every marker keeps its ids in a file beside it
    src, corpus = source(tmp_path), tmp_path / "corpus"
    ingest("jsonl", src, corpus, options=options(chunk=8))
    assert list((corpus / ".state").rglob("*.ids.parquet"))

    def unread(path):
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(corpus_module, "_read_ids", unread)
    again = ingest("jsonl", src, corpus, options=options(chunk=8))
    assert again.rows_in == 0 and again.skipped_chunks == 7
    assert len(caption_ids(corpus)) == 50
