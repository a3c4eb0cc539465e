"""``ccr ingest`` as a user runs it: argument mistakes are one line naming the bad value (exit 2,
no corpus left behind), a source that is no regular file is refused before it is read, and data
that looks like rich markup is printed as it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus


def ccr(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *names: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for name in names:
        assert name in lines[0]
    return lines[0]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_limit_then_a_full_run_keeps_every_caption(tmp_path):
    """The issue's case: 2,000 captions, --limit 1500 (a partial second chunk of 1,024), then all."""
    src = jsonl(tmp_path / "x.jsonl", [{"media_id": f"m{i // 5}", "path": f"m{i // 5}.jpg", "text": f"caption {i}"}
                                       for i in range(2000)])
    assert ccr("ingest", tmp_path / "C", src, "--format", "jsonl", "--limit", 1500).exit_code == 0
    result = ccr("ingest", tmp_path / "C", src, "--format", "jsonl")
    assert result.exit_code == 0 and "ingest: 500 rows in" in result.output
    assert Corpus.open(tmp_path / "C").count("captions") == 2000


@pytest.mark.parametrize(("args", "names"), [
    (["--column", "text"], ["--column 'text'", "OURS=THEIRS"]),
    (["--column", "txt=caption"], ["'txt'", "not a ccr column"]),
    (["--column", "text=caption"], ["text=caption", "'caption'", "x.jsonl"]),
    (["--split", "tset"], ["--split 'tset'", "test_*"]),
])
def test_argument_mistakes_are_one_line_and_leave_no_corpus(tmp_path, args, names):
    src = jsonl(tmp_path / "x.jsonl", [{"media_id": "a", "text": "a dog"}])
    one_line_error(ccr("ingest", tmp_path / "C", src, "--format", "jsonl", *args), *names)
    assert not (tmp_path / "C").exists()


def test_a_csv_without_a_text_column_is_one_line(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("media_id,caption\na,a dog\n", encoding="utf-8")
    one_line_error(ccr("ingest", tmp_path / "C", src, "--format", "csv"), str(src), "'text'", "--column text=")
    assert ccr("ingest", tmp_path / "C", src, "--format", "csv", "--column", "text=caption").exit_code == 0
    assert Corpus.open(tmp_path / "C").table("captions")["text"].to_list() == ["a dog"]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_source_that_is_no_regular_file_is_refused_before_it_is_read(tmp_path, kind, no_hang):
    path = {"fifo": tmp_path / "pipe.jsonl", "device": Path("/dev/zero"), "directory": tmp_path / "d.jsonl"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    one_line_error(ccr("ingest", tmp_path / "C", path, "--format", "jsonl"), str(path))
    assert not (tmp_path / "C").exists()


def test_data_that_looks_like_markup_is_printed_as_it_is(tmp_path):
    src = jsonl(tmp_path / "x.jsonl", [{"media_id": "[/x]", "path": "a.jpg", "text": "a dog", "lang": "[/x]"},
                                       {"media_id": "[/x]", "path": "b.jpg", "text": "a cat"}])
    result = ccr("ingest", tmp_path / "C", src, "--format", "jsonl")
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "ingest: 2 rows in, 1 media, 2 failed" in result.output
    reasons = sorted(Corpus.open(tmp_path / "C").failures()["reason"])
    assert reasons[0].startswith("media conflict: media_id '[/x]' has path 'b.jpg' here")
    assert reasons[1] == "unknown language code '[/x]'"


@pytest.mark.parametrize("blocked", ["raw/train.de", "image_splits/train.txt"])
def test_a_fifo_inside_a_multi30k_directory_is_refused_not_skipped(tmp_path, no_hang, blocked):
    root = tmp_path / "m30k"
    (root / "raw").mkdir(parents=True)
    (root / "image_splits").mkdir()
    for name, text in {"raw/train.en": "a dog\n", "raw/train.de": "ein Hund\n", "image_splits/train.txt": "1.jpg\n"}.items():
        if name == blocked:
            os.mkfifo(root / name)
        else:
            (root / name).write_text(text, encoding="utf-8")
    one_line_error(ccr("ingest", tmp_path / "C", root, "--format", "multi30k"), str(root / blocked), "not a regular file")
    assert not (tmp_path / "C").exists()


def test_a_fifo_among_nrccr_caption_files_is_refused_not_skipped(tmp_path, no_hang):
    text = tmp_path / "nrccr" / "TextData"
    text.mkdir(parents=True)
    (text / "toytrain.caption.txt").write_text("v1#enc#0 a dog runs\n", encoding="utf-8")
    os.mkfifo(text / "toytrain_de.caption.txt")
    one_line_error(ccr("ingest", tmp_path / "C", tmp_path / "nrccr", "--format", "nrccr"), str(text / "toytrain_de.caption.txt"),
                   "not a regular file")
    assert not (tmp_path / "C").exists()


def test_a_mapped_jsonl_key_first_written_past_the_probed_rows_is_no_typo(tmp_path):
    """jsonl has no header: its columns are the keys of its first rows, so a sparse key mapped with
    ``--column`` is looked for in the rest of the file before the mapping is refused."""
    from ccr.formats.ingest import generic

    src = tmp_path / "sparse.jsonl"
    rows = [{"media_id": f"m{i}", "text": f"caption {i}"} for i in range(generic._JSONL_PROBE + 5)]
    rows[-1]["img"] = "late.png"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert ccr("ingest", tmp_path / "C", src, "--format", "jsonl", "--column", "path=img").exit_code == 0
    media = Corpus.open(tmp_path / "C").table("media", with_side_tables=False)
    assert media.filter(media["path"].is_not_null())["media_id"].to_list() == [f"m{len(rows) - 1}"]
    one_line_error(ccr("ingest", tmp_path / "D", src, "--format", "jsonl", "--column", "path=imgg"), "'imgg'",
                   str(src))
