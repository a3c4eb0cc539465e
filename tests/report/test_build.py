"""The report's files: what they hold against the corpus they describe, narrowing, rebuilding, errors."""

from __future__ import annotations

import base64
import math
import re

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.report import build_report, rows
from ccr.report.shards import read_js
from ccr.report.thumbnails import MediaItem, make_one

SCORES = ["mt_logprob", "rt_sim", "xl_sim", "xm_sim", "dcot_conf", "weight", "keep", "noise_type"]


def _rows(report_dir):
    meta = read_js(report_dir / "data" / "meta.js")
    out = []
    for shard in range(math.ceil(meta["rows"]["count"] / meta["rows"]["size"])):
        out += read_js(report_dir / "data" / "rows" / f"{shard:05d}.js")
    return meta, out


def test_report_holds_every_mt_pair_with_its_texts_scores_and_media(scored, scored_report):
    out = scored_report.parent
    meta, pairs = _rows(out)
    assert meta["mode"] == "pairs" and meta["rows"]["count"] == scored.mt_rows == len(pairs)
    assert {c["name"] for c in meta["columns"]} >= set(SCORES) | {"lang", "split"}
    corpus = Corpus.open(scored.corpus)
    mt = corpus.table("captions").filter(pl.col("origin") == "mt")
    assert sorted(p["id"] for p in pairs) == sorted(mt["caption_id"].to_list())
    by_id = {p["id"]: p for p in pairs}
    worst = by_id[scored.worst_xl]
    english = corpus.table("captions").filter(pl.col("caption_id") == worst["id"].split("|")[0])["text"][0]
    assert worst["xl_sim"] == -0.5 and worst["noise_type"] == "swap" and worst["keep"] == "false"
    assert worst["src"] == english and worst["bt"] and worst["text"]
    # the contract's defaults: missing keep is true, missing weight 1.0; other missing scores stay missing
    query = by_id[scored.query_mt]
    assert (query["lang"], query["src_lang"], query["xl_sim"]) == ("en", "de", None) and query["src"]
    ghost = by_id[scored.ghost_mt]
    assert ghost["keep"] == "true" and ghost["weight"] == 1.0 and ghost["xl_sim"] is None
    assert ghost["thumb"] is None and ghost["problem"].startswith("file not found")
    # thumbnails exist; a video's is a strip of frames
    video = next(p for p in pairs if p["media"].startswith("v"))
    with Image.open(out / video["thumb"]) as strip:
        assert strip.format == "JPEG" and strip.width > 3 * strip.height
    assert all((out / p["thumb"]).is_file() for p in pairs if p["thumb"])
    # score summaries and the worst/best lists
    xl = meta["stats"]["xl_sim"]
    assert (xl["min"], xl["max"], xl["missing"]) == (-0.5, 1.0, 3)
    assert sum(xl["noisy"]) == len(scored.noisy) and sum(xl["clean"]) == xl["count"] - len(scored.noisy)
    noise = next(c for c in meta["columns"] if c["name"] == "noise_type")
    assert noise["counts"]["swap"] == len(scored.noisy)
    extremes = read_js(out / "data" / "extremes.js")
    assert extremes["xl_sim"]["lowest"][0]["id"] == scored.worst_xl
    assert extremes["xl_sim"]["highest"][0]["id"] == scored.best_xl
    # failures, unshowable media, descriptions and slots
    failures = read_js(out / "data" / "failures" / "00000.js")
    assert [(f["row"], f["stage"], f["reason"]) for f in failures] == [(scored.failed_caption, "ingest", "empty caption")]
    assert read_js(out / "data" / "problems" / "00000.js") == [
        {"media": "ghost", "path": "images/ghost.png", "reason": ghost["problem"]}]
    described = next(p for p in pairs if p["media"] == scored.described_media)
    details = read_js(out / "data" / "details" / "00000.js")[described["details"]]
    assert len(details["descriptions"]) == 2 and [s["text"] for s in details["slots"]] == ["coloured shapes",
                                                                                          "plain background"]
    # overview: the corpus's own counts and stage history with model revisions
    assert meta["overview"]["failures_total"] == 1
    assert sum(r["captions"] for r in meta["overview"]["captions"]) == corpus.count("captions")
    assert meta["overview"]["history"][-1]["models"] == ["embedder: tiny/minilm @ tiny-v1"]


def test_page_needs_nothing_outside_the_report_directory(scored_report):
    out = scored_report.parent
    for path in [scored_report, out / "assets" / "app.js", out / "assets" / "style.css"]:
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+/[^\s\"')]*", path.read_text(encoding="utf-8")))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path, urls)
    referenced = re.findall(r'(?:src|href)="([^"#]+)"', scored_report.read_text(encoding="utf-8"))
    assert referenced and all((out / ref).is_file() for ref in referenced)


def test_slices_give_the_same_report_as_one_pass(scored, tmp_path, monkeypatch):
    whole = build_report(scored.corpus, tmp_path / "whole")
    monkeypatch.setattr(rows, "PART_ROWS", 7)
    sliced = build_report(scored.corpus, tmp_path / "sliced")
    meta_whole, pairs_whole = _rows(whole.index.parent)
    meta_sliced, pairs_sliced = _rows(sliced.index.parent)
    assert len(pairs_sliced) == len({p["id"] for p in pairs_sliced})
    assert sorted(pairs_sliced, key=lambda p: p["id"]) == sorted(pairs_whole, key=lambda p: p["id"])
    assert meta_sliced["stats"] == meta_whole["stats"]


def test_side_tables_override_only_their_rows_as_corpus_scan_joins_them(scored, tmp_path):
    import shutil

    from scored_corpus import commit_rows

    root = tmp_path / "corpus"
    shutil.copytree(scored.corpus, root)
    corpus = Corpus.open(root)
    before = dict(corpus.table("captions").filter(pl.col("origin") == "mt").select("caption_id", "xl_sim").iter_rows())
    unscored = sorted(i for i, v in before.items() if v is None)
    commit_rows(corpus, "captions.rescore", "rescore", [{"caption_id": i, "xl_sim": 0.123} for i in unscored])
    _, pairs = _rows(build_report(root, tmp_path / "r").index.parent)
    joined = dict(corpus.table("captions").select("caption_id", "xl_sim").iter_rows())
    assert {p["id"]: p["xl_sim"] for p in pairs} == pytest.approx({i: joined[i] for i in before}, abs=1e-4)
    assert unscored and all(joined[i] == 0.123 for i in unscored)  # the new side table fills its rows
    assert all(joined[i] == v for i, v in before.items() if v is not None)  # and leaves the others alone


def test_narrowing_and_rebuilding_in_place(scored, tmp_path):
    out = tmp_path / "r"
    narrow = build_report(scored.corpus, out, langs="de", splits=["train"], limit=5)
    meta, pairs = _rows(out)
    assert narrow.rows == 5 and len(pairs) == 5
    assert {(p["lang"], p["split"]) for p in pairs} == {("de", "train")}
    assert meta["selection"] == {"lang": ["de"], "split": ["train"], "limit": 5}
    assert sum(r["captions"] for r in meta["overview"]["captions"]) == Corpus.open(scored.corpus).count("captions")
    made = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()}
    full = build_report(scored.corpus, out)
    assert full.rows == scored.mt_rows
    assert all((out / "thumbs" / name).stat().st_mtime_ns == t for name, t in made.items())  # made once
    assert len(list((out / "data" / "rows").iterdir())) == math.ceil(scored.mt_rows / 100)
    assert not (out / ".data-new").exists()


def test_unreadable_media_gives_a_reason_not_a_crash(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
    image = make_one(MediaItem("a", "image", tmp_path / "bad.png"), tmp_path)
    video = make_one(MediaItem("b", "video", tmp_path / "bad.mp4"), tmp_path)
    orphan = make_one(MediaItem("c", None, None), tmp_path)
    assert image.file is None and image.problem.startswith("unreadable image")
    assert video.file is None and video.problem.startswith("unreadable video")
    assert orphan.problem == "no media row for this media_id"


def test_captions_only_corpus_still_gets_a_report(toy_corpus, tmp_path):
    summary = build_report(toy_corpus, tmp_path / "r")
    meta, pairs = _rows(tmp_path / "r")
    assert meta["mode"] == "captions" and summary.rows == Corpus.open(toy_corpus).count("captions") == len(pairs)
    assert not meta["has"]["bt"] and meta["stats"] == {} and summary.media_problems == 0
    assert {c["name"] for c in meta["columns"]} == {"lang", "split", "model", "origin"}


def test_cli_report_and_its_one_line_errors(scored, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["report", str(scored.corpus), "--out", str(tmp_path / "r"), "--lang", "fr"],
                       env={"COLUMNS": "300"})
    assert ok.exit_code == 0, ok.output
    assert str(tmp_path / "r" / "index.html") in ok.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cases = [
        (["--out", str(foreign)], "is not empty and holds no ccr report"),
        (["--out", str(tmp_path / "x"), "--lang", "xx"], "present: de, en, fr"),
        (["--out", str(tmp_path / "x"), "--split", "dev"], "use one of train, val, test"),
        (["--out", str(scored.corpus / "report")], "inside the corpus"),
        (["--out", str(tmp_path / "x"), "--limit", "0"], "positive number"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["report", str(scored.corpus), *args], env={"COLUMNS": "300"})
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert (foreign / "notes.txt").read_text() == "keep me" and not (tmp_path / "x").exists()
    with pytest.raises(CcrError, match="no corpus at"):
        build_report(tmp_path / "nothing", tmp_path / "y")


def test_column_files_decode_to_the_rows(scored_report):
    meta, pairs = _rows(scored_report.parent)
    text = (scored_report.parent / "data" / "cols" / "xl_sim.js").read_text()
    values = np.frombuffer(base64.b64decode(re.search(r'"b64":"([^"]*)"', text).group(1)), dtype="<f4")
    expected = np.array([np.nan if p["xl_sim"] is None else p["xl_sim"] for p in pairs], dtype="<f4")
    np.testing.assert_allclose(values, expected, atol=1e-4)
    lang = read_js(scored_report.parent / "data" / "cols" / "lang.js")
    assert lang["dtype"] == "u16" and sorted(lang["labels"]) == ["de", "en", "fr"]
