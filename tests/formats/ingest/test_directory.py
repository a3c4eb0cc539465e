"""A generic source given as a directory of parts (img2dataset, Spark): one source, files in path order.

Entries are numbered on across the files, so ``--limit`` and resume work as for one file; each
file is checked against the corpus and the files before it, and every failure names its file.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from ccr.corpus.corpus import MANIFEST, Corpus
from ccr.errors import CcrError
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions


def options(limit: int | None = None, chunk: int = 4) -> RunOptions:
    return RunOptions(progress=False, limit=limit, chunk_rows=chunk, batch_size=chunk)


def rows(start: int, n: int) -> list[dict[str, str]]:
    return [{"media_id": f"m{i // 3}", "path": f"m{i // 3}.png", "text": f"caption {i}", "caption_id": f"c{i:03d}"}
            for i in range(start, start + n)]


def write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def parts(tmp_path: Path) -> Path:
    """Three parts of 7, 5 and 6 entries (cut mid-media), plus files ingest must pass over."""
    src = tmp_path / "parts"
    write_jsonl(src / "part-00000.jsonl", rows(0, 7))
    write_jsonl(src / "part-00001.jsonl", rows(7, 5))
    write_jsonl(src / "sub" / "part-00002.jsonl", rows(12, 6))
    (src / "_stats.json").write_text("{}", encoding="utf-8")
    (src / "images.tar").write_bytes(b"\0" * 16)
    write_jsonl(src / ".hidden" / "part-9.jsonl", [{"media_id": "x", "text": "never read"}])
    return src


def captions(corpus_dir: Path) -> pl.DataFrame:
    return Corpus.open(corpus_dir).table("captions", with_side_tables=False).sort("caption_id")


def test_a_directory_reads_as_its_parts_one_after_another(parts, tmp_path):
    whole = tmp_path / "whole.jsonl"
    write_jsonl(whole, rows(0, 18))
    summary = ingest("jsonl", parts, tmp_path / "dir", options=options())
    ingest("jsonl", whole, tmp_path / "one", options=options())
    assert summary.rows_in == 18 and summary.rows_failed == 0
    got, want = captions(tmp_path / "dir"), captions(tmp_path / "one")
    assert got.equals(want.select(got.columns))
    assert Corpus.open(tmp_path / "dir").count("media") == 6
    assert Corpus.open(tmp_path / "dir").media_root == parts.resolve()  # media paths are relative to it
    again = ingest("jsonl", parts, tmp_path / "dir", options=options())
    assert again.rows_in == 0 and again.rows_out == {}


def test_chunks_never_span_two_files_and_limit_counts_across_them(parts, tmp_path):
    corpus = tmp_path / "corpus"
    first = ingest("jsonl", parts, corpus, options=options(limit=9))  # all of part 0, two lines of part 1
    assert first.rows_in == 9 and captions(corpus)["caption_id"].to_list() == [f"c{i:03d}" for i in range(9)]
    keys = sorted(k for c in Corpus.open(corpus).commits("ingest") for k in c.chunk_keys)
    assert keys == ["0000000000-0000000004", "0000000004-0000000007", "0000000007-0000000009"]
    rest = ingest("jsonl", parts, corpus, options=options(chunk=8))  # another chunk size: the ranges hold
    assert rest.rows_in == 9 and captions(corpus)["caption_id"].to_list() == [f"c{i:03d}" for i in range(18)]
    ids = Corpus.open(corpus).commits("ingest")
    assert {k for c in ids for k in c.chunk_keys} >= {"0000000009-0000000012", "0000000012-0000000018"}


def test_a_repeat_or_clash_across_files_is_caught_and_named_by_file_and_line(tmp_path):
    src = tmp_path / "parts"
    write_jsonl(src / "a.jsonl", [{"media_id": "m1", "split": "train", "text": "a dog", "caption_id": "c1"},
                                  {"media_id": "m2", "text": "a cat", "caption_id": "c2"}])
    write_jsonl(src / "b.jsonl", [{"media_id": "m1", "text": "a dog", "caption_id": "c1"},  # a repeat: nothing
                                  {"media_id": "m1", "text": "a bird", "caption_id": "c2"},  # a clash
                                  {"media_id": "m2", "split": "test", "text": "a cow", "caption_id": "c3"}])
    summary = ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert summary.rows_out["captions"] == 2
    failures = Corpus.open(tmp_path / "corpus").failures().sort("source")
    assert failures["source"].to_list() == [f"{src / 'b.jsonl'}:2", f"{src / 'b.jsonl'}:3"]
    clash, conflict = failures["reason"].to_list()
    assert "c2" in clash
    assert "'test'" in conflict and f"at {src / 'a.jsonl'}:2" in conflict


def test_a_parquet_directory_and_its_split_named_by_each_file(tmp_path):
    src = tmp_path / "parquet"
    src.mkdir()
    pl.DataFrame(rows(0, 4)).write_parquet(src / "train-0.parquet")
    pl.DataFrame(rows(4, 3)).write_parquet(src / "val-0.parquet")
    ingest("parquet", src, tmp_path / "corpus", options=options())
    media = Corpus.open(tmp_path / "corpus").table("media", with_side_tables=False).sort("media_id")
    assert media["split"].to_list() == ["train", "train", "val"]  # m1 is described in train-0 first


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_directory_without_files_of_the_format_is_refused_before_a_corpus_exists(tmp_path, fmt):
    src = tmp_path / "empty"
    src.mkdir()
    (src / "notes.txt").write_text("nothing here", encoding="utf-8")
    with pytest.raises(CcrError, match=f"holds no {fmt} files"):
        ingest(fmt, src, tmp_path / "corpus", options=options())
    assert not (tmp_path / "corpus").exists()


def test_every_part_is_checked_for_the_columns_before_a_corpus_exists(tmp_path):
    src = tmp_path / "parts"
    write_jsonl(src / "a.jsonl", rows(0, 2))
    write_jsonl(src / "b.jsonl", [{"media_id": "m9", "caption": "no text column"}])
    with pytest.raises(CcrError, match=r"b\.jsonl has no 'text' column"):
        ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert not (tmp_path / "corpus").exists()


def test_on_ray_the_parts_are_read_in_pieces_and_give_the_local_corpus(parts, tmp_path, ray_local, monkeypatch):
    from ccr.formats.ingest import pieces

    monkeypatch.setattr(pieces, "PIECE_BYTES", 128)  # several pieces a file, read on across file ends
    write_jsonl(parts / "part-00001.jsonl", [*rows(7, 4), {"media_id": "m0", "text": "a clash", "caption_id": "c001"}])
    ingest("jsonl", parts, tmp_path / "local", options=options())
    ingest("jsonl", parts, tmp_path / "ray", options=RunOptions(progress=False, chunk_rows=4, batch_size=4,
                                                                    engine="ray", ray_concurrency=2))
    local, ray = Corpus.open(tmp_path / "local"), Corpus.open(tmp_path / "ray")
    assert captions(tmp_path / "ray").equals(captions(tmp_path / "local"))
    assert ray.failures()["source"].to_list() == local.failures()["source"].to_list() == [
        f"{parts / 'part-00001.jsonl'}:5"]
    tables = tmp_path / "csv"  # a csv part is one piece: the parts are parsed a part per actor
    for part in sorted(parts.glob("**/part-*.jsonl")):
        if not part.parent.name.startswith("."):
            name = tables / part.relative_to(parts).with_suffix(".csv")
            name.parent.mkdir(parents=True, exist_ok=True)
            pl.read_ndjson(part).write_csv(name)
    ingest("csv", tables, tmp_path / "csv-local", options=options())
    ingest("csv", tables, tmp_path / "csv-ray", options=RunOptions(progress=False, chunk_rows=4, engine="ray",
                                                                       ray_concurrency=2))
    assert captions(tmp_path / "csv-ray").equals(captions(tmp_path / "csv-local"))
    assert Corpus.open(tmp_path / "csv-ray").failures()["source"].to_list() == [f"{tables / 'part-00001.csv'}:6"]


def test_the_small_shards_of_many_small_parts_are_compacted_at_the_end(tmp_path):
    from ccr.corpus.compact import AUTO_MIN_COMMITS

    src = tmp_path / "parts"
    for i in range(AUTO_MIN_COMMITS + 1):
        write_jsonl(src / f"part-{i:05d}.jsonl", rows(i, 1))
    ingest("jsonl", src, tmp_path / "corpus", options=RunOptions(progress=False))
    corpus = Corpus.open(tmp_path / "corpus")
    assert len(corpus.files("captions")) == 1 and corpus.count("captions") == AUTO_MIN_COMMITS + 1
    again = ingest("jsonl", src, tmp_path / "corpus", options=RunOptions(progress=False))
    assert again.rows_in == 0 and again.skipped_chunks == AUTO_MIN_COMMITS + 1


def test_a_rerun_parses_the_done_chunk_keys_once_not_once_per_part(tmp_path, monkeypatch):
    from ccr.formats.ingest import spans

    src = tmp_path / "parts"
    for i in range(20):
        write_jsonl(src / f"part-{i:05d}.jsonl", rows(i, 1))
    ingest("jsonl", src, tmp_path / "corpus", options=options())
    parsed = []
    entry_range = spans.entry_range
    monkeypatch.setattr(spans, "entry_range", lambda key: parsed.append(key) or entry_range(key))
    again = ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert again.skipped_chunks == 20 and len(parsed) == 20  # a rerun of 40k parts is not quadratic


def test_a_corpus_written_inside_the_source_directory_is_no_part_of_it(tmp_path):
    src = tmp_path / "parts"
    src.mkdir()
    pl.DataFrame(rows(0, 6)).write_parquet(src / "part-0.parquet")
    (src / "data").mkdir()
    (src / "data" / MANIFEST).write_text('{"files": []}', encoding="utf-8")  # a dataset's own manifest
    pl.DataFrame(rows(6, 2)).write_parquet(src / "data" / "part-1.parquet")
    ingest("parquet", src, src / "corpus", options=options())
    again = ingest("parquet", src, src / "corpus", options=options())  # its shards are not read as parts
    assert again.rows_in == 0 and again.skipped_chunks == 3
    assert captions(src / "corpus")["caption_id"].to_list() == [f"c{i:03d}" for i in range(8)]


def test_a_part_whose_name_holds_braces_is_named_as_it_is(tmp_path):
    src = tmp_path / "parts"
    write_jsonl(src / "a{}.jsonl", rows(0, 2))
    (src / "b{1}.jsonl").write_text('{"media_id": "m9", "text": "x"}\n{bad\n', encoding="utf-8")
    summary = ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert summary.rows_out["captions"] == 3
    assert Corpus.open(tmp_path / "corpus").failures()["source"].to_list() == [f"{src / 'b{1}.jsonl'}:2"]


def test_a_gzip_part_named_in_capitals_is_read_as_gzip(tmp_path):
    import gzip

    from ccr.formats.ingest import pieces

    src = tmp_path / "parts"
    src.mkdir()
    (src / "PART-0.JSONL.GZ").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows(0, 3)).encode()))
    summary = ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert summary.rows_out["captions"] == 3 and summary.rows_failed == 0
    assert len(pieces.cut("jsonl", src / "PART-0.JSONL.GZ", 8)) == 1  # on Ray too: never cut into byte ranges


def test_a_split_named_by_a_parts_folder_and_underscore_names_passed_over(tmp_path):
    src = tmp_path / "parts"
    write_jsonl(src / "val" / "part-0.jsonl", rows(0, 3))
    write_jsonl(src / "_temporary" / "0" / "part-1.jsonl", [{"media_id": "half", "text": "an unfinished Spark part"}])
    write_jsonl(src / "_partial.jsonl", [{"media_id": "half", "text": "not a part either"}])
    summary = ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert summary.rows_in == 3
    assert Corpus.open(tmp_path / "corpus").table("media", with_side_tables=False)["split"].to_list() == ["val"]


def test_a_parts_split_is_a_whole_word_of_its_path(tmp_path):
    """``latest/`` or ``interval/`` name no split; ``split=test/`` (Hive) and ``validation/`` do."""
    from ccr.formats.ingest.textio import part_split

    assert [part_split(p) for p in ("latest/part-0.jsonl", "interval/0.jsonl", "retrain/x.parquet",
                                    "split=test/part-0.parquet", "validation/0.jsonl", "val-00003.parquet",
                                    "train/val_2014.jsonl", "parts/restval/0.jsonl")] == \
        [None, None, None, "test", "val", "val", "val", "train"]
    src = tmp_path / "contest"
    write_jsonl(src / "latest" / "part-0.jsonl", rows(0, 3))
    ingest("jsonl", src, tmp_path / "corpus", options=options())
    assert Corpus.open(tmp_path / "corpus").table("media", with_side_tables=False)["split"].to_list() == ["train"]


def test_a_mapped_column_some_parts_leave_out_is_null_there_and_a_typo_is_refused(tmp_path):
    """Spark's JSON writer leaves null fields out: a part whose rows have no ``img`` has no such key."""
    src = tmp_path / "parts"
    write_jsonl(src / "a.jsonl", [{"media_id": "m1", "img": "m1.png", "text": "a dog", "caption_id": "c1"}])
    write_jsonl(src / "b.jsonl", [{"media_id": "m2", "text": "a cow", "caption_id": "c2"}])
    ingest("jsonl", src, tmp_path / "corpus", columns={"path": "img"}, options=options())
    media = Corpus.open(tmp_path / "corpus").table("media", with_side_tables=False).sort("media_id")
    assert media["path"].to_list() == ["m1.png", None]
    with pytest.raises(CcrError, match=rf"--column path=imgg: {src} has no column 'imgg' \(it has 'media_id', 'img'"):
        ingest("jsonl", src, tmp_path / "other", columns={"path": "imgg"}, options=options())
    with pytest.raises(CcrError, match=r"--column text=caption: .*a\.jsonl has no column 'caption'"):
        ingest("jsonl", src, tmp_path / "other", columns={"text": "caption"}, options=options())
    assert not (tmp_path / "other").exists()


def test_a_mapping_no_part_has_lists_the_columns_of_every_part(tmp_path):
    """The directory's columns are all its parts' columns, not only the first part's: here the one
    the user meant is only in the second."""
    src = tmp_path / "parts"
    write_jsonl(src / "a.jsonl", [{"media_id": "m1", "text": "a dog"}])
    write_jsonl(src / "b.jsonl", [{"media_id": "m2", "text": "a cow", "img": "m2.png"}])
    with pytest.raises(CcrError, match=rf"--column path=imgg: {src} has no column 'imgg' "
                                       r"\(it has 'media_id', 'text', 'img'\)"):
        ingest("jsonl", src, tmp_path / "corpus", columns={"path": "imgg"}, options=options())
