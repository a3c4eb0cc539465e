"""A source cut into pieces parses, piece by piece, into the entry frames the local reader gives.

``--engine ray`` parses each piece on whichever node Ray picks and numbers their lines on the
driver; nothing else differs from a local ingest, so this is where its sameness is decided (the
two-node test in ``tests/stages/test_ray_cluster.py`` runs the whole stage). No Ray here: pieces
are parsed one after another in this process.
"""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_frame_path import GOOD, write_source
from typer.testing import CliRunner

from ccr.formats.ingest import pieces
from ccr.formats.ingest.entries import ENTRY_READERS


def _by_pieces(fmt, src, size):
    cut = pieces.cut(fmt, src, size)
    frames = list(pieces.numbered(pieces.parse(p, {}) for p in cut))
    return cut, _as_checked(pl.concat(frames))


def _local(fmt, src):
    return _as_checked(pl.concat(ENTRY_READERS[fmt](src, {})))


def _as_checked(entries):
    """What the checks read of each entry: of an unusable one only its line, reason and id (the bulk
    parser of a block keeps the rest of its values, the line-by-line parser does not)."""
    kept = ("line", "bad", "bad_id")
    return entries.with_columns(pl.when(pl.col("bad").is_null()).then(pl.col(c)).alias(c)
                                for c in entries.columns if c not in kept)


@pytest.mark.parametrize("size", [1, 97, 4096, 1 << 20])
def test_jsonl_pieces_give_the_local_readers_entries(tmp_path, size):
    src = write_source(tmp_path / "captions.jsonl")
    body = src.read_bytes()
    # a byte-order mark opens the file (the reader drops it) and one opens a line in the middle (kept:
    # that line is malformed), a line is longer than a piece, lines end in CRLF, the last has no newline
    long = json.dumps({"media_id": "long", "text": "w " * 3000}).encode()
    src.write_bytes(b"\xef\xbb\xbf" + body + b"\xef\xbb\xbf" + body[:60].split(b"\n")[0] + b"\r\n" + long + b"\n"
                    + b'{"media_id": "crlf", "text": "a"}\r\n\r\n' + b'{"media_id": "end", "text": "no newline"}')
    want = _local("jsonl", src)
    cut, got = _by_pieces("jsonl", src, size)
    assert got.equals(want)
    assert cut[0].start == 0 and all(a.end == b.start for a, b in zip(cut, cut[1:], strict=False))
    assert cut[-1].end is None and (len(cut) > 10 if size < 100 else True)


def test_parquet_pieces_are_runs_of_row_groups(tmp_path):
    src = tmp_path / "captions.parquet"
    rows = [*GOOD, {"media_id": None, "text": "no media"}, {"media_id": "m9", "text": None}]
    pq.write_table(pa.Table.from_pylist(rows), src, row_group_size=4)
    want = _local("parquet", src)
    for size in (1, 1 << 20):
        cut, got = _by_pieces("parquet", src, size)
        assert got.equals(want)
        assert len(cut) == (8 if size == 1 else 1)


def test_a_gzip_file_is_one_piece(tmp_path):
    import gzip

    src = tmp_path / "captions.jsonl.gz"
    src.write_bytes(gzip.compress(write_source(tmp_path / "plain.jsonl").read_bytes()))
    cut, got = _by_pieces("jsonl", src, 1)
    assert len(cut) == 1 and got.equals(_local("jsonl", src))


def test_a_csv_file_is_one_piece_and_other_formats_are_refused_before_a_corpus_is_made(tmp_path):
    from test_frame_path import write_csv

    src = write_csv(tmp_path / "captions.csv", b"\r\n")
    cut, got = _by_pieces("csv", src, 1)
    assert len(cut) == 1 and got.equals(_local("csv", src))

    from ccr.cli import app

    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "corpus"), str(src), "--format", "coco", "--engine", "ray"])
    assert result.exit_code == 2 and "ingest coco without --engine ray" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "corpus").exists()
