"""The vectorised path of generic sources (jsonl, csv, parquet) against the record-by-record path.

Both read the same file with every kind of bad row into a corpus that already holds some media and
captions; the corpus tables and the failure rows (reason, row id, file:line) must be the same.
The record path is the one research formats take; the test reaches it for jsonl by emptying the
table of vectorised readers.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from ccr.corpus.corpus import Corpus
from ccr.formats.ingest import blocks, entries
from ccr.formats.ingest import runs as runs_module
from ccr.formats.ingest import stage as ingest_stage
from ccr.formats.ingest.entries import _entry
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions

QUIET = RunOptions(progress=False)

GOOD = [{"media_id": f"m{i // 3}", "path": f"m{i // 3}.png", "text": f"  a photo number {i} ", "caption_id": f"c{i}"}
        for i in range(30)]
BAD_LINES = [
    b'{"media_id": "x1", "text": \n',  # malformed JSON
    b'[1, 2]\n',  # not an object
    b'{"media_id": "x2", "text": "caf\xe9"}\n',  # invalid UTF-8
    b'   \n',  # blank: no entry
    b'{"media_id": true, "text": "a bool id", "caption_id": "b1"}\n',  # id of the wrong type
    b'{"media_id": "x3", "caption_id": "b2"}\n',  # no text
    b'{"media_id": "", "text": "no media", "caption_id": "b3"}\n',  # empty media id
    b'{"media_id": "x4", "text": "   ", "caption_id": "b4"}\n',  # empty caption
    b'{"media_id": "x4", "text": "' + b"w" * 60 + b'", "caption_id": "b5"}\n',  # over max_chars
    b'{"media_id": "x4", "text": "lone \\ud800", "caption_id": "b6"}\n',  # not encodable
    b'{"media_id": "x4", "text": "a lang", "lang": "xx", "caption_id": "b7"}\n',  # unknown language
    b'{"media_id": "x4", "text": "an origin", "origin": "robot", "caption_id": "b8"}\n',  # unknown origin
    b'{"media_id": "m0", "path": "m0.png", "split": "test", "text": "split clash", "caption_id": "b9"}\n',
    b'{"media_id": "m1", "path": "elsewhere.png", "text": "path clash", "caption_id": "b10"}\n',
    b'{"media_id": "x5", "split": "bogus", "text": "refused media", "caption_id": "b11"}\n',
    b'{"media_id": "x5", "text": "and its second caption", "caption_id": "b12"}\n',
    b'{"media_id": "x6", "modality": "sound", "text": "bad modality", "caption_id": "b13"}\n',
    b'{"media_id": "m0", "path": "m0.png", "text": "  a photo number 0 ", "caption_id": "c0"}\n',  # exact repeat
    b'{"media_id": "m0", "path": "m0.png", "text": "another text", "caption_id": "c1"}\n',  # clashing id
    b'{"media_id": "old", "path": "moved.png", "text": "corpus clash", "caption_id": "b14"}\n',
    b'{"media_id": "old", "path": "old.png", "text": "an old caption"}\n',  # derived id, repeats the corpus
    b'{"media_id": "old", "path": "old.png", "text": "other text"}\n',  # derived id #1
    b'{"media_id": 7, "caption_id": 8, "text": "integer ids", "duration": 3}\n',
    b'{"media_id": "x7", "text": "a duration", "duration": -1}\n',
    b'{"media_id": "x8", "text": "windows", "relevant_windows": [[0, 2]], "qid": 5}\n',
    b'{"media_id": "x9", "text": "two keys", "text": "twice"}\n',
    b'{"media_id": "x10", "text": "no caption id"}\n{"media_id": "x10", "text": "no caption id either"}\n',
]


def write_source(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r).encode() + b"\n" for r in GOOD]
    path.write_bytes(b"".join(lines[:10] + BAD_LINES + lines[10:]))
    return path


def seed(corpus: Path, tmp_path: Path) -> None:
    first = tmp_path / "seed.jsonl"
    first.write_text(json.dumps({"media_id": "old", "path": "old.png", "text": "an old caption"}) + "\n",
                     encoding="utf-8")
    ingest("jsonl", first, corpus, options=QUIET)


def tables(corpus: Path) -> dict[str, pl.DataFrame]:
    opened = Corpus.open(corpus)
    failures = opened.failures().select("table", "row_id", "reason", "source").sort(pl.all())
    return {"media": opened.table("media").sort("media_id"),
            "captions": opened.table("captions", with_side_tables=False).sort("caption_id"), "failures": failures}


def both_paths(fmt: str, src: Path, tmp_path: Path, monkeypatch, options: RunOptions = QUIET):
    """The corpus tables the vectorised path and the record path make of ``src``, each into a seeded
    corpus, and the rows the vectorised path read one by one."""
    by_row: list = []
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    for corpus in (fast, slow):
        seed(corpus, tmp_path)
    with monkeypatch.context() as m:
        m.setattr(entries, "_entry", lambda *a: by_row.append(a) or _entry(*a))
        ingest(fmt, src, fast, options=options, sets=["max_chars=50"])
    with monkeypatch.context() as m:
        m.setattr(ingest_stage, "ENTRY_READERS", {})
        ingest(fmt, src, slow, options=options, sets=["max_chars=50"])
    return tables(fast), tables(slow), by_row


def assert_same(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> None:
    for name in want:
        assert got[name].columns == want[name].columns, name
        assert got[name].equals(want[name]), (name, got[name], want[name])


@pytest.mark.parametrize(("chunk", "checked"), [(5, 5), (1000, 1000), (9, 4)])
def test_the_vectorised_path_gives_the_record_paths_tables_and_failures(tmp_path, monkeypatch, chunk, checked):
    """``checked``: entries checked at once, a chunk (a shard) made of such blocks."""
    monkeypatch.setattr(ingest_stage, "CHECK_ENTRIES", checked)
    src = write_source(tmp_path / "src" / "captions.jsonl")
    got, want, _ = both_paths("jsonl", src, tmp_path, monkeypatch, RunOptions(progress=False, chunk_rows=chunk))
    assert want["failures"].height >= 20  # every kind above failed on the record path
    assert_same(got, want)


def test_a_large_jsonl_lands_in_few_shards_and_resumes_by_range(tmp_path):
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"media_id": f"m{i // 5}", "text": f"caption {i}", "caption_id": f"c{i}"}) + "\n"
                           for i in range(100_000)), encoding="utf-8")
    corpus = tmp_path / "corpus"
    first = ingest("jsonl", src, corpus, options=RunOptions(progress=False, limit=30_000))
    rest = ingest("jsonl", src, corpus, options=RunOptions(progress=False))
    assert (first.rows_in, rest.rows_in, rest.skipped_chunks) == (30_000, 70_000, 1)
    opened = Corpus.open(corpus)
    assert opened.count("captions") == 100_000 and opened.count("media") == 20_000
    assert len(opened.files("captions")) <= 4


@pytest.mark.parametrize("on_disk", [False, True], ids=["in-memory", "on-disk"])
def test_derived_ids_and_path_conflicts_hold_across_chunks_of_a_scattered_source(tmp_path, monkeypatch, on_disk):
    """Media whose captions lie far apart, in two languages, without caption ids: each chunk counts
    derived ids on from the chunks before it, and a late path clash quotes the first path. On disk:
    every merged run of ids, references and derived-id counts goes to a file, read 3 entries at a time."""
    if on_disk:
        monkeypatch.setattr(runs_module, "SPILL_ENTRIES", 0)
        monkeypatch.setattr(runs_module, "WINDOW", 3)
    rows = [{"media_id": f"s{i % 7}", "path": f"dir/s{i % 7}.png", "lang": "de" if i % 3 == 0 else "en",
             "text": f"caption {i}"} for i in range(40)]
    rows += [{"media_id": "s3", "path": "dir/moved.png", "text": "late clash"},
             {"media_id": "old", "path": "old.png", "text": "an old caption"},  # repeats the corpus's old#en#0
             {"media_id": "s5", "path": None, "text": "no path: no clash"}]
    src = tmp_path / "src" / "scattered.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got, want, _ = both_paths("jsonl", src, tmp_path, monkeypatch, RunOptions(progress=False, chunk_rows=4))
    assert "dir/s3.png" in " ".join(want["failures"]["reason"].to_list())
    assert want["captions"].filter(pl.col("caption_id") == "s1#en#3").height == 1
    assert_same(got, want)


@pytest.mark.parametrize(("rows", "chunk", "blocks", "chunks"), [
    (30, 9, [3] * 10, [3, 9, 9, 9]),  # blocks of 4 cut a chunk of 9 in equal thirds
    (25, 10, [4, 4, 2, 4, 4, 2, 4, 1], [5, 10, 10]),  # a chunk's last block is the rest (chunks were 8)
])
def test_a_chunk_is_checked_in_blocks_and_keeps_its_size(tmp_path, monkeypatch, rows, chunk, blocks, chunks):
    """Entries are parsed and checked at most 4 at a time here (memory in flight), while a chunk, its
    shard and its commit keep the size the run asked for: the record path's chunks, so the shards
    (and which failures a later row fixes) are the same."""
    monkeypatch.setattr(ingest_stage, "CHECK_ENTRIES", 4)
    checked: list[int] = []
    check = ingest_stage.check_frame
    monkeypatch.setattr(ingest_stage, "check_frame", lambda frame, known: checked.append(frame.height) or
                        check(frame, known))
    src = tmp_path / "clean.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in GOOD[:rows]), encoding="utf-8")
    ingest("jsonl", src, tmp_path / "corpus", options=RunOptions(progress=False, chunk_rows=chunk))
    assert checked == blocks
    assert sorted(c.inputs for c in Corpus.open(tmp_path / "corpus").commits("ingest")) == chunks


def test_the_whitespace_stripped_is_pythons() -> None:
    """The vectorised path strips what ``str.strip`` strips, so a line blank to one path is blank to the other."""
    from ccr.formats.ingest.entries import PY_WHITESPACE

    assert PY_WHITESPACE == "".join(c for c in map(chr, range(0x110000)) if c.isspace())


PARQUET_ROWS = [
    *GOOD[:8],
    {"media_id": None, "text": "no media id", "caption_id": "p1"},
    {"media_id": "", "text": "empty media id", "caption_id": "p2"},
    {"media_id": "y1", "text": None, "caption_id": "p3"},
    {"media_id": "y1", "text": "   ", "caption_id": "p4"},
    {"media_id": "y1", "text": "w" * 60, "caption_id": "p5"},
    {"media_id": "y1", "text": "a lang", "lang": "xx", "caption_id": "p6"},
    {"media_id": "y1", "text": "an origin", "origin": "robot", "caption_id": "p7"},
    {"media_id": "m0", "path": "m0.png", "split": "test", "text": "split clash", "caption_id": "p8"},
    {"media_id": "y2", "split": "bogus", "text": "refused media", "caption_id": "p9"},
    {"media_id": "y2", "text": "its second caption", "caption_id": "p10"},
    {"media_id": "m0", "path": "m0.png", "text": "another text", "caption_id": "c1"},  # clashing id
    {"media_id": "old", "path": "moved.png", "text": "corpus clash", "caption_id": "p11"},
    {"media_id": "old", "path": "old.png", "text": "an old caption", "caption_id": ""},  # derived id, a repeat
    {"media_id": "y3", "text": "a duration", "duration": 2.5, "caption_id": "p12"},
    {"media_id": "y4", "text": "a bad duration", "duration": -1.0, "caption_id": "p13"},
    {"media_id": "y5", "text": b"caf\xe9", "caption_id": "p14"},  # not UTF-8: Parquet writers need not check
    {"media_id": "y6", "text": "an unread column that is not UTF-8", "exif": b"\xff", "caption_id": "p15"},
    *GOOD[8:20],
]


def _text_array(values: list, large: bool = False):
    """A string column that may hold bytes that are not UTF-8, as a careless writer leaves them."""
    import pyarrow as pa

    raw = pa.array([v.encode() if isinstance(v, str) else v for v in values],
                   pa.large_binary() if large else pa.binary())
    return pa.Array.from_buffers(pa.large_string() if large else pa.string(), len(raw), raw.buffers(), raw.null_count)


def write_parquet(path: Path, ints: bool) -> Path:
    """The rows above in Parquet's own types: large, dictionary and view strings, float32; or integer ids."""
    import pyarrow as pa

    rows = PARQUET_ROWS if not ints else [
        {"media_id": i // 3, "caption_id": i, "text": f"caption {i}", "duration": i // 3 % 4} for i in range(30)
    ] + [{"media_id": 2**64 - 1, "caption_id": 99, "text": "an id past int64"}]
    col = {k: [r.get(k) for r in rows] for k in ("media_id", "caption_id", "text", "path", "split", "lang",
                                                  "origin", "duration", "exif")}
    if ints:
        table = pa.table({"media_id": pa.array(col["media_id"], pa.uint64()),
                          "caption_id": pa.array(col["caption_id"], pa.int32()), "text": col["text"],
                          "duration": pa.array(col["duration"], pa.int16())})
    else:
        table = pa.table({"media_id": pa.array(col["media_id"], pa.large_string()), "caption_id": col["caption_id"],
                          "text": _text_array(col["text"], large=True), "path": pa.array(col["path"], pa.string_view()),
                          "split": pa.array(col["split"]).dictionary_encode(), "lang": col["lang"],
                          "origin": col["origin"], "duration": pa.array(col["duration"], pa.float32()),
                          "exif": _text_array(col["exif"])})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=7)
    return path


@pytest.mark.parametrize("ints", [False, True], ids=["strings", "integer-ids"])
def test_parquet_in_bulk_gives_the_record_paths_tables_and_failures(tmp_path, monkeypatch, ints):
    """Batches of Parquet's own types are read in bulk, and a batch that needs the record path's
    judgement (a negative duration, text that is not UTF-8, an id past int64) goes row by row; the
    corpus is the record path's either way, and text that is not UTF-8 is a failure, not a crash."""
    src = write_parquet(tmp_path / "src" / "captions.parquet", ints)
    monkeypatch.setattr(entries, "ROWS_PER_FRAME", 4)
    got, want, by_row = both_paths("parquet", src, tmp_path, monkeypatch)
    assert 0 < len(by_row) <= pq.ParquetFile(src).metadata.num_rows // 2  # most batches in bulk, some row by row
    if not ints:
        assert want["failures"].height >= 12
        assert want["failures"].filter(pl.col("reason").str.contains("column 'text': invalid UTF-8")).height == 1
        assert "p15" in want["captions"]["caption_id"].to_list()
    assert_same(got, want)


CSV_SPECIAL = [
    'm0,q1,m0.png,,,,"a caption, with a comma",',
    'm0,q2,m0.png,,,,"she said ""hi""",',
    'm1,q3,m1.png,,,,a "literal" quote,',
    'y1,q4,,,xx,,a lang,',
    'y1,q5,,,,robot,an origin,',
    ',q6,,,,,no media id,',
    'm0,c1,m0.png,,,,another text,',  # clashing id
    'old,,old.png,,,,an old caption,',  # derived id, a repeat of the corpus's
    '',
    'm0,q7,m0.png,test,,,split clash,',
    'y2,q8,,bogus,,,refused media,',
    'y2,q9,,,,,"   ",',
    'y7,q14,,,,,a duration,2.5',
    'y8,q15,,,,,a duration in a quoted field,"4"',
]
CSV_LATE = [
    'y3,q10,,,,,"a caption across',
    'two lines",',
    'y4,q11,too,many,fields,here,x,y,z',
    b'y5,q12,,,,,caf\xe9,',
    'y6,q13,,,,,after the record path took over,',
    'y9,q16,,,,,a duration the csv module reads, 3',
    'y10,q17,,,,,a negative duration,-1',
]


def write_csv(path: Path, ending: bytes) -> Path:
    """GOOD rows around single-line oddities (read in bulk), then what only the record path reads."""
    import csv
    import io

    def line(row: dict) -> str:
        out = io.StringIO()
        keys = ("media_id", "caption_id", "path", "split", "lang", "origin", "text")
        csv.writer(out, lineterminator="").writerow([row.get(k, "") for k in keys] + [""])
        return out.getvalue()

    lines = ["media_id,caption_id,path,split,lang,origin,text,duration", *map(line, GOOD[:20]), *CSV_SPECIAL,
             *map(line, GOOD[20:]), *CSV_LATE]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ending.join(x if isinstance(x, bytes) else x.encode() for x in lines) + ending)
    return path


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_csv_in_bulk_gives_the_record_paths_tables_and_failures(tmp_path, monkeypatch, ending):
    """Blocks of one-line records are read in bulk (quoted commas, doubled and literal quotes, blank
    lines); from a record across lines on, the csv module reads the rest; both give one corpus."""
    src = write_csv(tmp_path / "src" / "captions.csv", ending)
    monkeypatch.setattr(entries, "blocks", partial(blocks.blocks, block_bytes=256))
    got, want, by_row = both_paths("csv", src, tmp_path, monkeypatch)
    assert 0 < len(by_row) <= len(CSV_LATE) + 6  # in bulk up to the block of the record across lines
    assert want["failures"].height >= 9
    assert "q13" in want["captions"]["caption_id"].to_list()
    assert_same(got, want)


def test_a_quoted_field_across_a_block_boundary_is_read_whole(tmp_path, monkeypatch):
    """A block that ends inside a quoted field (its record's first line the block's last) is left to
    the record path: Arrow would close the field at the block's end and read its rest as a row."""
    src = tmp_path / "src" / "captions.csv"
    src.parent.mkdir()
    src.write_bytes(b"media_id,text\n" + b"m0,aaaa\n" * 3 + b'm1,"a caption\nacross lines"\nm2,after it\n')
    # the first block ends after 'm1,"a caption'
    monkeypatch.setattr(entries, "blocks", partial(blocks.blocks, block_bytes=56))
    got, want, _ = both_paths("csv", src, tmp_path, monkeypatch)
    assert want["failures"].height == 0 and "a caption\nacross lines" in want["captions"]["text"].to_list()
    assert_same(got, want)


def test_a_byte_order_mark_past_the_first_line_stays_in_its_field(tmp_path, monkeypatch):
    """Only line 1's byte-order mark is dropped; one that starts a later line (a block's first) is text."""
    src = tmp_path / "src" / "captions.csv"
    src.parent.mkdir()
    src.write_bytes(b"\xef\xbb\xbfmedia_id,text\n\xef\xbb\xbfm0,first\n" + b"m1,aaaa\n" * 3 + b"\xef\xbb\xbfm2,later\n")
    monkeypatch.setattr(entries, "blocks", partial(blocks.blocks, block_bytes=16))
    got, want, _ = both_paths("csv", src, tmp_path, monkeypatch)
    assert sorted(want["media"]["media_id"].to_list()) == ["m1", "old", "\ufeffm0", "\ufeffm2"]
    assert_same(got, want)


def test_a_carriage_return_in_an_unquoted_field_is_a_failure_row(tmp_path, monkeypatch):
    """The csv module refuses a lone carriage return outside quotes (it raised, and the run died on
    both paths); the line is a failure row and the rest of the file still reads. A header line with
    one (a file with old Mac line endings) is refused before any row is read."""
    from ccr.errors import CcrError

    src = tmp_path / "src" / "captions.csv"
    src.parent.mkdir()
    src.write_bytes(b"media_id,text\nm0,first\nm1,a\rb\nm2,\"a quoted\rone\"\nm3,after it\n")
    got, want, _ = both_paths("csv", src, tmp_path, monkeypatch)
    assert want["failures"]["source"].to_list() == [f"{src}:3"]
    assert want["failures"]["reason"].str.starts_with("not a CSV record: ").all()
    assert sorted(want["media"]["media_id"].to_list()) == ["m0", "m2", "m3", "old"]
    assert_same(got, want)
    mac = tmp_path / "mac.csv"
    mac.write_bytes(b"media_id,text\rm0,first\r")
    with pytest.raises(CcrError, match="header line is not a CSV record"):
        ingest("csv", mac, tmp_path / "mac", options=QUIET)


def test_a_field_longer_than_the_csv_modules_default_limit_is_read(tmp_path, monkeypatch):
    """Fields past 131,072 characters (the csv module's default limit, where it raised) read as Arrow
    reads them; one past ``FIELD_LIMIT`` is a failure row on both paths, and the lines after it still
    read."""
    from ccr.formats.ingest import generic

    src = tmp_path / "src" / "captions.csv"
    src.parent.mkdir()
    long = b"x" * 200_000
    src.write_bytes(b"media_id,text,other\nm0,first,x\nm1,a caption," + long + b"\nm2," + long + b",y\nm3,last,z\n")
    got, want, _ = both_paths("csv", src, tmp_path, monkeypatch)
    assert sorted(want["captions"]["media_id"].to_list()) == ["m0", "m1", "m3", "old"]  # m2's is over max_chars
    assert_same(got, want)
    for module in (generic, entries):
        monkeypatch.setattr(module, "FIELD_LIMIT", 100_000)
    (tmp_path / "limited").mkdir()
    got, want, _ = both_paths("csv", src, tmp_path / "limited", monkeypatch)
    assert want["failures"].filter(pl.col("reason").str.contains("field larger than field limit"))["source"].to_list() \
        == [f"{src}:3", f"{src}:4"]
    assert "m3" in want["media"]["media_id"].to_list()
    assert_same(got, want)


def test_a_parquet_file_with_a_repeated_column_name_is_read_row_by_row(tmp_path, monkeypatch):
    """Parquet lets a name repeat (pyarrow writes what it is given); Arrow cannot pick one of the
    columns by name (a KeyError ended the run), so such a file goes row by row, where the last one counts."""
    import pyarrow as pa

    src = tmp_path / "src" / "captions.parquet"
    src.parent.mkdir()
    arrays = [pa.array(["m0", "m1"]), pa.array(["first", "one"]), pa.array(["second", None])]
    pq.write_table(pa.Table.from_arrays(arrays, names=["media_id", "text", "text"]), src)
    got, want, by_row = both_paths("parquet", src, tmp_path, monkeypatch)
    assert len(by_row) == 2 and want["captions"].filter(pl.col("media_id") == "m0")["text"].to_list() == ["second"]
    assert_same(got, want)


@pytest.mark.parametrize("layout", ["string_view", "dictionary", "list"])
def test_text_not_utf8_in_any_string_layout_is_a_failure_row(tmp_path, monkeypatch, layout):
    """View, dictionary and nested strings that are not UTF-8 name their column in a failure row, as
    plain ones do (a UnicodeDecodeError ended the run on both paths)."""
    import pyarrow as pa

    text = _text_array(["ok", b"caf\xe9", "fine", None])
    columns = {"media_id": pa.array(["m0", "m1", "m2", "m3"]), "text": pa.array(["a", "b", "c", "d"])}
    if layout == "list":
        columns["relevant_windows"] = pa.ListArray.from_arrays(pa.array([0, 1, 2, 3, 3], pa.int32()), text)
    else:
        columns["path"] = text.cast(pa.string_view()) if layout == "string_view" else text.dictionary_encode()
    src = tmp_path / "src" / "captions.parquet"
    src.parent.mkdir()
    pq.write_table(pa.table(columns), src)
    got, want, _ = both_paths("parquet", src, tmp_path, monkeypatch)
    name = "relevant_windows" if layout == "list" else "path"
    bad = want["failures"].filter(pl.col("reason") == f"column '{name}': invalid UTF-8 at byte 3")
    assert bad["source"].to_list() == [f"{src}:2"]
    assert_same(got, want)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_gzip_source_cut_short_is_an_error_on_both_paths(tmp_path, monkeypatch, fmt):
    """A damaged gzip part is refused with the record path's message, not an EOFError from the block reader."""
    import gzip

    from ccr.errors import CcrError

    rows = [{"media_id": f"m{i}", "text": f"caption {i}"} for i in range(5000)]
    body = ("".join(json.dumps(r) + "\n" for r in rows) if fmt == "jsonl"
            else "media_id,text\n" + "".join(f"{r['media_id']},{r['text']}\n" for r in rows))
    whole = gzip.compress(body.encode())
    src = tmp_path / f"captions.{fmt}.gz"
    src.write_bytes(whole[:len(whole) // 2])
    for readers in (ingest_stage.ENTRY_READERS, {}):
        with monkeypatch.context() as m:
            m.setattr(ingest_stage, "ENTRY_READERS", readers)
            with pytest.raises(CcrError, match="damaged and cannot be read to the end"):
                ingest(fmt, src, tmp_path / f"corpus{len(readers)}", options=QUIET)


def test_a_run_that_fails_while_loading_the_corpus_closes_what_it_opened(tmp_path, monkeypatch):
    """The media references are open beside the corpus when a captions shard cannot be read: they
    are closed as the error leaves, not when the collector finds them (a caller holding the error,
    as here, kept the unlinked files open)."""
    from ccr.formats.ingest import frame_checks
    from ccr.formats.ingest.refs import MediaRefs

    seed(tmp_path / "corpus", tmp_path)
    closed: list[MediaRefs] = []
    close = MediaRefs.close
    monkeypatch.setattr(MediaRefs, "close", lambda self: closed.append(self) or close(self))
    scan = frame_checks.scan_shard
    monkeypatch.setattr(frame_checks, "scan_shard",
                        lambda path: 1 / 0 if path.parent.name == "captions" else scan(path))
    src = write_source(tmp_path / "src" / "captions.jsonl")
    with pytest.raises(ZeroDivisionError):
        ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    assert len(closed) == 1
