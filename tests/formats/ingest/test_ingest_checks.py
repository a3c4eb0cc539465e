"""The checks every ingested record goes through: media conflicts in every format that can state one,
named splits and refused media with their captions, failure rows that name their file and line,
and grounding windows the trainer could not use."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions

QUIET = RunOptions(progress=False)
ONE_BY_ONE = RunOptions(progress=False, chunk_rows=1, batch_size=1)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def failures(corpus_dir: Path) -> list[dict]:
    return Corpus.open(corpus_dir).failures().to_dicts()


# One media id described twice, differently: the later description's caption must not land on the
# first one's media. Each case writes its files (ingested in order) and names the failure rows
# (table, row id) it expects and the captions that stay.

GENERIC_ROWS = [
    {"media_id": "m", "path": "m.png", "split": "train", "modality": "image", "text": "a dog", "caption_id": "c1"},
    {"media_id": "m", "path": "m.png", "split": "test", "modality": "image", "text": "a cat", "caption_id": "c2"},
    {"media_id": "m", "path": "other.png", "split": "train", "modality": "image", "text": "a cow", "caption_id": "c3"},
    {"media_id": "m", "path": "m.png", "split": "train", "modality": "video", "text": "a hen", "caption_id": "c4"},
    {"media_id": "m", "split": "train", "text": "ein Hund", "lang": "de", "caption_id": "c5"},  # says less: agrees
]
GENERIC = ({("captions", "c2"), ("captions", "c3"), ("captions", "c4")}, {"c1": "a dog", "c5": "ein Hund"})


def _csv(tmp: Path) -> list[Path]:
    path = tmp / "c.csv"
    columns = ["media_id", "path", "split", "modality", "text", "caption_id", "lang"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in GENERIC_ROWS)
    return [path]


def _parquet(tmp: Path) -> list[Path]:
    import polars as pl

    path = tmp / "c.parquet"
    pl.DataFrame(GENERIC_ROWS).write_parquet(path)
    return [path]


def _karpathy(tmp: Path) -> list[Path]:
    images = [{"filename": "1.jpg", "cocoid": 1, "split": "train", "sentences": [{"raw": "a dog", "sentid": 10}]},
              {"filename": "1.jpg", "cocoid": 1, "split": "test", "sentences": [{"raw": "a cat", "sentid": 11}]}]
    return [write(tmp / "dataset_flickr30k.json", json.dumps({"images": images}))]


def _multi30k(tmp: Path) -> list[Path]:
    task = tmp / "data" / "task1"
    write(task / "image_splits" / "train.txt", "1.jpg\n2.jpg\n")
    write(task / "raw" / "train.en", "a dog\na cow\n")
    write(task / "image_splits" / "test_2016_flickr.txt", "1.jpg\n")
    write(task / "raw" / "test_2016_flickr.en", "a cat\n")
    return [tmp]


def _vatex(tmp: Path) -> list[Path]:
    return [write(tmp / "vatex_training.json", json.dumps([{"videoID": "v", "enCap": ["a dog"]}])),
            write(tmp / "vatex_validation.json", json.dumps([{"videoID": "v", "enCap": ["a cat"]}]))]


def _nrccr(tmp: Path) -> list[Path]:
    write(tmp / "TextData" / "vatextrain.caption.txt", "v#enc#0 a dog\n")
    write(tmp / "TextData" / "vatexval.caption.txt", "v#enc#1 a cat\n")
    return [tmp]


def _qvhighlights(tmp: Path) -> list[Path]:
    return [jsonl(tmp / "highlight_train.jsonl", [{"qid": 1, "vid": "v", "duration": 10, "query": "a dog"},
                                                  {"qid": 2, "vid": "v", "duration": 20, "query": "a cat"}])]


def _charades(tmp: Path) -> list[Path]:
    return [write(tmp / "charades_sta_train.txt", "v 0 1##a dog\n"),
            write(tmp / "charades_sta_test.txt", "v 0 1##a cat\n")]


def _coco(tmp: Path) -> list[Path]:
    doc = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}],
           "annotations": [{"id": 10, "image_id": 1, "caption": "a dog"}]}
    return [write(tmp / "captions_train2014.json", json.dumps(doc))]


CONFLICTS: dict[str, tuple[Callable[[Path], list[Path]], set[tuple[str, str]], dict[str, str]]] = {
    "jsonl": (lambda tmp: [jsonl(tmp / "c.jsonl", GENERIC_ROWS)], *GENERIC),
    "csv": (_csv, *GENERIC),
    "parquet": (_parquet, *GENERIC),
    "karpathy": (_karpathy, {("media", "1"), ("captions", "11")}, {"10": "a dog"}),
    # splits are read in name order: test_2016_flickr (as "test") describes image 1 first
    "multi30k": (_multi30k, {("media", "1"), ("captions", "1#en#0")}, {"1#en#0": "a cat", "2#en#0": "a cow"}),
    "vatex": (_vatex, {("media", "v"), ("captions", "v#en#0")}, {"v#en#0": "a dog"}),
    "nrccr": (_nrccr, {("captions", "v#enc#1")}, {"v#enc#0": "a dog"}),
    "qvhighlights": (_qvhighlights, {("captions", "2")}, {"1": "a dog"}),
    "charades": (_charades, {("media", "v"), ("captions", "v#1")}, {"v#1": "a dog"}),
    "coco": (_coco, {("media", "1")}, {"10": "a dog"}),  # COCO captions name their image by id only
}


@pytest.mark.parametrize("fmt", sorted(CONFLICTS))
def test_a_media_id_described_twice_differently_is_a_failure_in_every_format(fmt, tmp_path):
    make, expected, kept = CONFLICTS[fmt]
    (tmp_path / "src").mkdir()
    for src in make(tmp_path / "src"):
        ingest(fmt, src, tmp_path / "corpus", options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    conflicts = {(f["table"], f["row_id"]): f for f in failures(tmp_path / "corpus")
                 if f["reason"].startswith("media conflict: ")}
    assert set(conflicts) == expected
    assert all(f["source"] and str(tmp_path / "src") in f["source"] for f in conflicts.values())
    captions = corpus.table("captions")
    assert dict(zip(captions["caption_id"], captions["text"], strict=True)) == kept
    media = corpus.table("media")
    split_of = dict(zip(media["media_id"], media["split"], strict=True))
    assert all(split_of[m] == s for m, s in zip(captions["media_id"], captions["split"], strict=True))


def test_a_conflict_names_what_differs_and_where_the_first_description_stands(tmp_path):
    src = jsonl(tmp_path / "c.jsonl", GENERIC_ROWS[:2])
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    (failure,) = failures(tmp_path / "corpus")
    assert failure["reason"] == f"media conflict: media_id 'm' has split 'test' here but 'train' at {src}:1"
    assert failure["source"] == f"{src}:2"


# named splits, and media refused with every caption they have


def test_multi30k_named_test_sets_are_splits_that_evaluation_can_score(tmp_path):
    from ccr.train.config import TrainConfig, validate
    from ccr.train.data.rows import eval_records

    task = tmp_path / "data" / "task1"
    for split, images in (("train", "1.jpg\n"), ("test_2016_flickr", "2.jpg\n"), ("test_2017_flickr", "3.jpg\n"),
                          ("test_2017_mscoco", "COCO_1.jpg#7\n"), ("test_2018_flickr", "4.jpg\n")):
        write(task / "image_splits" / f"{split}.txt", images)
        write(task / "raw" / f"{split}.en", f"an image of {split}\n")
        write(task / "raw" / f"{split}.de", f"ein Bild von {split}\n")
    summary = ingest("multi30k", tmp_path, tmp_path / "corpus", options=QUIET)
    assert summary.rows_failed == 0 and summary.rows_out == {"media": 5, "captions": 10}
    corpus = Corpus.open(tmp_path / "corpus")
    assert sorted(corpus.table("media")["split"]) == ["test", "test_2017_flickr", "test_2017_mscoco",
                                                     "test_2018_flickr", "train"]
    records = eval_records(corpus, "test_2017_flickr", "de")
    assert records.gallery == ["3"] and records.queries == ["ein Bild von test_2017_flickr"]
    validate(TrainConfig(val_split="val_2017"))  # a named validation set can select models, a test set cannot
    with pytest.raises(CcrError, match="val_split=test_2017_flickr: model selection on the test split"):
        validate(TrainConfig(val_split="test_2017_flickr"))


@pytest.mark.parametrize("limit", [None, 1])
def test_an_invalid_split_fails_its_media_and_every_caption_of_it(tmp_path, limit):
    """Media lines come first in Multi30K: with --limit 1 the captions are judged in a later run."""
    task = tmp_path / "data" / "task1"
    write(task / "image_splits" / "test2017.txt", "1.jpg\n")
    write(task / "raw" / "test2017.en", "a dog\n")
    write(task / "raw" / "test2017.de", "ein Hund\n")
    ingest("multi30k", tmp_path, tmp_path / "corpus", options=RunOptions(progress=False, limit=limit))
    ingest("multi30k", tmp_path, tmp_path / "corpus", options=ONE_BY_ONE)
    corpus = Corpus.open(tmp_path / "corpus")
    assert corpus.count("captions") == 0 and corpus.count("media") == 0
    reasons = {(f["table"], f["row_id"]): f["reason"] for f in failures(tmp_path / "corpus")}
    rule = "split 'test2017' is not one of train, val, test or a named test_*/val_* split"
    assert reasons[("media", "1")].startswith(rule) and reasons[("media", "1")].endswith(
        "; the split comes from the source: rename it there")
    assert reasons[("captions", "1#en#0")].startswith(f"its media '1' failed: {rule}")
    assert reasons[("captions", "1#de#0")].startswith(f"its media '1' failed: {rule}")
    assert len(reasons) == 3


# every failure row names its file and line (or entry)


def test_every_failure_row_names_its_file_and_line(tmp_path):
    rows = [
        {"media_id": "a", "path": "a.png", "text": "a dog", "caption_id": "ok"},
        {"media_id": "a", "path": "a.png", "text": "  ", "caption_id": "blank"},
        {"media_id": "a", "path": "a.png", "text": "x" * 20, "caption_id": "long"},
        {"media_id": "a", "path": "a.png", "text": "a dog", "lang": "xx", "caption_id": "lang"},
        {"media_id": "a", "path": "a.png", "text": "a cat", "caption_id": "ok"},
        {"media_id": "b", "path": "b.png", "split": "tset", "text": "a cow", "caption_id": "split"},
    ]
    src = jsonl(tmp_path / "c.jsonl", rows)
    ingest("jsonl", src, tmp_path / "corpus", sets=["max_chars=10"], options=QUIET)
    coco = write(tmp_path / "captions_val2014.json", json.dumps({
        "images": [{"id": 1, "file_name": "1.jpg"}],
        "annotations": [{"id": 5, "image_id": 2, "caption": "nowhere"}, {"id": 6, "image_id": 1, "caption": ""}]}))
    ingest("coco", coco, tmp_path / "corpus", options=QUIET)
    got = {(f["table"], f["row_id"]): f["source"] for f in failures(tmp_path / "corpus")}
    assert got == {
        ("captions", "blank"): f"{src}:2", ("captions", "long"): f"{src}:3", ("captions", "lang"): f"{src}:4",
        ("captions", "ok"): f"{src}:5", ("media", "b"): f"{src}:6", ("captions", "split"): f"{src}:6",
        ("captions", "5"): f"{coco}:annotations[0]", ("captions", "6"): f"{coco}:annotations[1]",
    }


# grounding windows


@pytest.mark.parametrize("windows", [[[float("nan"), 3.0]], [[1.0, float("inf")]], [[-1.0, 3.0]], [[5.0, 2.0]],
                                     [[1.0, 2.0, 3.0]], [[1.0, 2.0], "x"]])
def test_a_window_the_matcher_cannot_take_is_a_failure_row(tmp_path, windows):
    good = {"qid": 1, "vid": "v", "duration": 10, "query": "a dog", "relevant_windows": [[0.0, 2.0], [4.0, 4.0]]}
    bad = {"qid": 2, "vid": "v", "duration": 10, "query": "a cat", "relevant_windows": windows}
    src = jsonl(tmp_path / "highlight_train.jsonl", [good, bad])  # json writes NaN and Infinity as Python does
    ingest("qvhighlights", src, tmp_path / "corpus", options=QUIET)
    assert Corpus.open(tmp_path / "corpus").table("captions")["caption_id"].to_list() == ["1"]
    (failure,) = failures(tmp_path / "corpus")
    assert failure["source"] == f"{src}:2" and "'relevant_windows'" in failure["reason"]


def test_windows_and_durations_from_generic_tables_and_charades_text_are_checked_too(tmp_path):
    src = jsonl(tmp_path / "q.jsonl", [
        {"media_id": "v", "modality": "video", "text": "a dog", "relevant_windows": [[1, 2]], "caption_id": "ok"},
        {"media_id": "v", "modality": "video", "text": "a cat", "relevant_windows": "[[NaN, 2]]", "caption_id": "w"},
        {"media_id": "u", "modality": "video", "duration": -3, "text": "a cow", "caption_id": "d"},
    ])
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    charades = write(tmp_path / "charades_sta_train.txt", "x 5.0 2.0##reversed\nx nan 2.0##not a number\n")
    ingest("charades", charades, tmp_path / "corpus", options=QUIET)
    assert Corpus.open(tmp_path / "corpus").table("captions")["caption_id"].to_list() == ["ok"]
    got = {f["source"]: f["reason"] for f in failures(tmp_path / "corpus")}
    assert set(got) == {f"{src}:2", f"{src}:3", f"{charades}:1", f"{charades}:2"}
    assert got[f"{src}:3"] == "'duration' -3 is not a finite number of seconds >= 0"
    assert all("'relevant_windows' holds" in got[k] for k in (f"{src}:2", f"{charades}:1", f"{charades}:2"))


def test_gzip_multi30k_sources_carry_their_line(tmp_path):
    task = tmp_path / "data" / "task1"
    write(task / "image_splits" / "val.txt", "1.jpg\n2.jpg\n")
    (task / "raw").mkdir()
    with gzip.open(task / "raw" / "val.en.gz", "wb") as fh:
        fh.write(b"a dog\n\n")
    ingest("multi30k", tmp_path, tmp_path / "corpus", options=QUIET)
    (failure,) = failures(tmp_path / "corpus")
    assert (failure["row_id"], failure["reason"], failure["source"]) == (
        "2#en#0", "empty caption", f"{task / 'raw' / 'val.en.gz'}:2")


def test_what_an_entry_leaves_out_or_a_reader_makes_up_never_conflicts(tmp_path):
    """A caption row without modality joins a video; a grounding line joins a video already listed
    with its real path (the reader's ``{vid}.mp4`` is a convention, not the source's word)."""
    videos = jsonl(tmp_path / "videos.jsonl", [
        {"media_id": "v", "path": "clips/v.webm", "modality": "video", "duration": 10, "text": "a dog", "caption_id": "a"},
        {"media_id": "v", "lang": "de", "text": "ein Hund", "caption_id": "b"},
    ])
    ingest("jsonl", videos, tmp_path / "corpus", options=QUIET)
    queries = jsonl(tmp_path / "highlight_train.jsonl", [{"qid": 1, "vid": "v", "duration": 10, "query": "a cat"}])
    ingest("qvhighlights", queries, tmp_path / "corpus", options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    assert sorted(corpus.table("captions")["caption_id"]) == ["1", "a", "b"]
    assert corpus.table("media").select("path", "modality").row(0) == ("clips/v.webm", "video")
    assert failures(tmp_path / "corpus") == []


def test_an_unstated_split_never_conflicts_and_only_a_new_media_item_gets_the_default(tmp_path):
    """Neither the row, its file's name nor --split names a split: its caption joins the media item
    that the corpus holds as test, and only a media item seen for the first time becomes train."""
    corpus = tmp_path / "corpus"
    first = jsonl(tmp_path / "first.jsonl", [{"media_id": "m", "path": "m.png", "split": "test", "text": "a dog",
                                              "caption_id": "a"}])
    ingest("jsonl", first, corpus, options=QUIET)
    more = jsonl(tmp_path / "more.jsonl", [{"media_id": "m", "lang": "de", "text": "ein Hund", "caption_id": "b"},
                                           {"media_id": "n", "path": "n.png", "text": "a cat", "caption_id": "c"}])
    ingest("jsonl", more, corpus, options=QUIET)
    stair = write(tmp_path / "stair.json", json.dumps({"images": [{"id": "m", "file_name": "m.png"}],
                                                       "annotations": [{"id": "d", "image_id": "m", "caption": "犬"}]}))
    ingest("coco", stair, corpus, lang="ja", options=QUIET)
    assert failures(corpus) == []
    opened = Corpus.open(corpus)
    assert dict(opened.table("media").select("media_id", "split").rows()) == {"m": "test", "n": "train"}
    assert dict(opened.table("captions").select("caption_id", "split").rows()) == {
        "a": "test", "b": "test", "c": "train", "d": "test"}
