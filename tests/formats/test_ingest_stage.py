"""Bad input at ingest: each case is a clear one-line error or a recorded failure row, never a crash."""

import json

import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions

QUIET = RunOptions(progress=False)


def row(media_id, text, lang="en", split="train", **kw):
    return {"media_id": media_id, "path": f"{media_id}.png", "split": split, "lang": lang, "text": text, **kw}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def failures_by_row(corpus_dir):
    df = Corpus.open(corpus_dir).failures()
    return dict(zip(df["row_id"].to_list(), df["reason"].to_list()))


def test_bad_captions_become_failure_rows_and_good_ones_land(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [
        row("a", "a dog", caption_id="ok"),
        row("a", "   ", caption_id="blank"),
        row("a", "", caption_id="empty"),
        row("a", "x" * 100_000, caption_id="huge"),
        row("a", "ein Hund", lang="xx", caption_id="badlang"),
        row("a", "a dog", caption_id="ok"),  # identical duplicate: already there, not an error
        row("a", "a cat", caption_id="ok"),  # same id, other text: an error
    ])
    summary = ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    fails = failures_by_row(tmp_path / "corpus")
    assert fails["blank"] == "empty caption" and fails["empty"] == "empty caption"
    assert fails["huge"].startswith("caption has 100000 characters, over max_chars=10000")
    assert fails["badlang"] == "unknown language code 'xx'"
    assert fails["ok"] == "duplicate caption_id 'ok' with a different text"
    captions = Corpus.open(tmp_path / "corpus").table("captions")
    assert captions["caption_id"].to_list() == ["ok"] and captions["text"].to_list() == ["a dog"]
    assert summary.rows_failed == 5


def test_invalid_utf8_and_malformed_json_lines_name_file_and_line(tmp_path):
    src = tmp_path / "c.jsonl"
    good = [json.dumps(row(m, f"caption {m}", caption_id=m)).encode() for m in "abcd"]
    src.write_bytes(b"\n".join([good[0], b'{"media_id": "x", "text": "caf\xff"}', good[1], b'{"media_id": "y", "te',
                                good[2], good[3]]) + b"\n")
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    assert sorted(corpus.table("captions")["caption_id"]) == ["a", "b", "c", "d"]
    fails = corpus.failures()
    assert sorted(fails["source"].to_list()) == [f"{src}:2", f"{src}:4"]
    assert (fails["table"] == "source").all()


def test_caption_pointing_at_missing_media(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "1.jpg"}],
            "annotations": [{"id": 10, "image_id": 1, "caption": "a dog"}, {"id": 11, "image_id": 2, "caption": "a cat"}]}
    src = tmp_path / "captions_train2014.json"
    src.write_text(json.dumps(coco))
    ingest("coco", src, tmp_path / "corpus", options=QUIET)
    fails = failures_by_row(tmp_path / "corpus")
    assert fails == {"11": "caption points at media '2', which is in neither the corpus nor this source"}


def test_unreadable_and_truncated_images_fail_with_their_captions(tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "good.png")
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "full.png")
    (tmp_path / "trunc.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    (tmp_path / "zero.png").write_bytes(b"")
    src = write_jsonl(tmp_path / "c.jsonl", [row(m, f"caption of {m}", caption_id=f"c-{m}")
                                             for m in ("good", "trunc", "zero", "absent")])
    ingest("jsonl", src, tmp_path / "corpus", verify_media=True, options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    assert corpus.table("media")["media_id"].to_list() == ["good"]
    assert corpus.table("captions")["caption_id"].to_list() == ["c-good"]
    fails = failures_by_row(tmp_path / "corpus")
    assert fails["trunc"].startswith("unreadable image") and fails["zero"].startswith("file is empty")
    assert fails["absent"].startswith("file not found")
    assert fails["c-trunc"].startswith("its media 'trunc' failed: unreadable image")


def test_unknown_format_unknown_lang_option_and_missing_source_are_errors(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [row("a", "a dog")])
    with pytest.raises(CcrError, match="unknown ingest format 'flickr'"):
        ingest("flickr", src, tmp_path / "corpus", options=QUIET)
    with pytest.raises(CcrError, match=r"unknown language code 'cz' \(did you mean 'cs'\?\)"):
        ingest("jsonl", src, tmp_path / "corpus", lang="cz", options=QUIET)
    with pytest.raises(CcrError, match="does not exist"):
        ingest("jsonl", tmp_path / "nope.jsonl", tmp_path / "corpus", options=QUIET)


def test_corpus_from_a_newer_schema_is_refused(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [row("a", "a dog")])
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    manifest = tmp_path / "corpus" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 99
    manifest.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["info", str(tmp_path / "corpus")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "schema version 99" in result.output and "upgrade ccr" in result.output


def test_a_second_writer_is_refused_with_a_lock_message(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [row("a", "a dog")])
    corpus = Corpus.open(tmp_path / "corpus", create=True)
    with corpus.stage_lock("ingest", 0, 1):
        with pytest.raises(CcrError, match="ccr ingest is already running on this corpus"):
            ingest("jsonl", src, tmp_path / "corpus", options=QUIET)


def test_reingesting_the_same_source_adds_nothing_and_a_second_language_adds_rows(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [row("a", "a dog", caption_id="a#en#0")])
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    again = ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    assert again.rows_in == 0 and again.skipped_chunks == 1
    de = write_jsonl(tmp_path / "de.jsonl", [row("a", "ein Hund", lang="de", caption_id="a#de#0")])
    ingest("jsonl", de, tmp_path / "corpus", options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    assert corpus.table("media").height == 1
    assert corpus.table("captions").sort("caption_id")["lang"].to_list() == ["de", "en"]
    assert len(corpus.runs()) == 3


def test_grounding_rows_keep_windows_and_saliency(tmp_path):
    src = tmp_path / "highlight_val_release.jsonl"
    src.write_text(json.dumps({"qid": 7, "query": "a man talks", "vid": "v1_0_150", "duration": 150,
                               "relevant_windows": [[10, 20], [30, 36]], "relevant_clip_ids": [5, 6, 15, 16, 17],
                               "saliency_scores": [[1, 2, 3]] * 5}) + "\n")
    ingest("qvhighlights", src, tmp_path / "corpus", split="val", options=QUIET)
    cap = Corpus.open(tmp_path / "corpus").table("captions").row(0, named=True)
    assert cap["qid"] == "7" and cap["relevant_windows"] == [[10.0, 20.0], [30.0, 36.0]]
    assert cap["saliency_scores"][0] == [1, 2, 3] and cap["relevant_clip_ids"] == [5, 6, 15, 16, 17]
    media = Corpus.open(tmp_path / "corpus").table("media").row(0, named=True)
    assert media["modality"] == "video" and media["duration"] == 150.0


def test_hf_dataset_view(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [row("a", "a dog"), row("b", "a cat", split="val")])
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    ds = Corpus.open(tmp_path / "corpus").dataset("captions")
    assert sorted(ds["text"]) == ["a cat", "a dog"]
    assert isinstance(Corpus.open(tmp_path / "corpus").table("media"), pl.DataFrame)


def test_ingest_goes_through_the_stage_table_and_creates_its_corpus_only_once_checks_pass(tmp_path):
    from ccr.stages.table import run

    src = write_jsonl(tmp_path / "c.jsonl", [row("a", "a dog")])
    with pytest.raises(CcrError, match="unknown language code 'xx'"):
        run("ingest", tmp_path / "corpus", overrides={"format": "jsonl", "src": str(src), "lang": "xx"}, options=QUIET)
    assert not (tmp_path / "corpus").exists()
    pictures = tmp_path / "pictures"
    run("ingest", tmp_path / "corpus", overrides={"format": "jsonl", "src": str(src)}, options=QUIET,
        arguments={"media_root": pictures})
    assert Corpus.open(tmp_path / "corpus").media_root == pictures.resolve()
    run("ingest", tmp_path / "corpus", overrides={"format": "jsonl", "src": str(src)}, options=QUIET)
    assert Corpus.open(tmp_path / "corpus").media_root == pictures.resolve()  # kept: only a given root replaces it


def test_an_empty_source_ingests_nothing_and_succeeds(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "corpus"), str(tmp_path / "empty.jsonl"),
                                      "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert "0 rows in" in result.output
