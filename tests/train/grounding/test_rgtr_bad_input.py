"""Bad grounding input: never a crash half-way, never a silent drop.

``ccr ingest --format qvhighlights`` keeps such rows as they are (the annotation is the user's); training
leaves out what it cannot use and says so in one line (and in run.json), and asks for the fix
with a one-line error where nothing can go on.
"""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from rgtr_helpers import rgtr_sets

from ccr.corpus.corpus import Commit, Corpus
from ccr.errors import CcrError
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions
from ccr.train.run.loop import train


def _row(qid: int, vid: str, duration: float, windows: list[list[float]] | None) -> dict:
    row = {"qid": qid, "query": "we see the dog", "vid": vid, "duration": duration}
    return row | ({"relevant_windows": windows} if windows is not None else {})


def test_bad_windows_and_missing_features_are_left_out_and_counted(grounding_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(grounding_corpus, corpus)
    first = json.loads((grounding_corpus.parent / "synth_train.jsonl").read_text().splitlines()[0])
    vid, duration = first["vid"], first["duration"]
    bad = [
        _row(9001, vid, duration, [[duration + 10, duration + 20]]),  # wholly outside the video
        _row(9002, vid, duration, [[10.0, 10.0]]),  # zero length
        _row(9003, "nofeatures", 30.0, [[2.0, 6.0]]),  # a video without features
        _row(9004, vid, duration, None),  # no window at all
        # one clipped (past the end: ingest refuses a negative start), one zero-length: kept
        _row(9005, vid, duration, [[duration - 4.0, duration + 6.0], [2.0, 2.0]]),
    ]
    source = tmp_path / "bad_train.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in bad), encoding="utf-8")
    ingest("qvhighlights", source, corpus, options=RunOptions(progress=False))

    lines: list[str] = []
    train(corpus, tmp_path / "run", method="rgtr", sets=rgtr_sets(epochs=1, lang="en"), log=lines.append)

    skipped = [line for line in lines if line.startswith("training queries:")]
    assert len(skipped) == 1
    for reason, qid in (("no window", 9004), ("no features for the video", 9003), ("no usable window", 9001),
                        ("zero-length window dropped", 9002), ("window outside the video dropped", 9001),
                        ("window clipped to the video", 9005)):
        assert f"{reason} " in skipped[0] and f"e.g. qid {qid}" in skipped[0]
    env = json.loads((tmp_path / "run" / "run.json").read_text())["env"]
    assert env["skipped"] == {
        "queries": {"no window": 1, "no features for the video": 1, "no usable window": 2},
        "windows": {"zero-length window dropped": 2, "window outside the video dropped": 1,
                    "window clipped to the video": 1},
    }
    assert env["n_train"] == 160 + 1  # the synthetic queries plus 9005


def test_non_finite_windows_of_an_older_corpus_are_left_out_not_a_crash(grounding_corpus, tmp_path):
    """Ingest refuses NaN/inf windows now; a corpus ingested before may hold them, so they are written
    here as a shard of their own, beside the rows ingest made. The matcher never sees them."""
    corpus = tmp_path / "corpus"
    shutil.copytree(grounding_corpus, corpus)
    opened = Corpus.open(corpus)
    first = opened.table("captions").filter(pl.col("split") == "train").sort("caption_id").row(0, named=True)
    rows = [first | {"caption_id": str(qid), "qid": str(qid), "relevant_windows": windows,
                     "relevant_clip_ids": None, "saliency_scores": None}
            for qid, windows in ((9101, [[float("nan"), 6.0]]), (9102, [[2.0, float("inf")], [2.0, 6.0]]))]
    shard = opened.shard_path("captions", "older", "nan", "0")
    opened.write_shard("captions", rows, shard)
    opened.commit(Commit(stage="older", fingerprint="nan", key="0", files={"captions": str(shard.relative_to(corpus))},
                         rows={"captions": len(rows)}))

    lines: list[str] = []
    train(corpus, tmp_path / "run", method="rgtr", sets=rgtr_sets(epochs=1, lang="en"), log=lines.append)
    (skipped,) = [line for line in lines if line.startswith("training queries:")]
    assert "no usable window 1, e.g. qid 9101" in skipped and "non-finite window dropped 2, e.g. qid 9101" in skipped
    env = json.loads((tmp_path / "run" / "run.json").read_text())["env"]
    assert env["n_train"] == 160 + 1  # the synthetic queries plus 9102's finite window


def test_corpus_without_grounding_rows_is_a_one_line_error(synth_corpus, tmp_path):
    with pytest.raises(CcrError, match="no grounding queries .*ccr ingest CORPUS SRC --format qvhighlights"):
        train(synth_corpus, tmp_path / "run", method="rgtr", sets=rgtr_sets(lang="en"), log=lambda _: None)


@pytest.mark.parametrize(("sets", "message"), [
    ({"lang": "fr"}, "no fr translations of the train queries; run ccr translate --lang fr"),
    ({"lang": "de", "queries": "human"}, "no human de queries in the train split; use --queries mt"),
    ({"lang": "en", "select_metric": "sumr"}, "select_metric 'sumr': use one of MR-full-mAP"),
    ({"lang": "en", "visual": "pixels", "epochs": 1}, "no usable training query"),
])
def test_unusable_settings_fail_with_the_fix(grounding_corpus, tmp_path, sets, message):
    with pytest.raises(CcrError, match=message.replace("(", r"\(")):
        train(grounding_corpus, tmp_path / "run", method="rgtr", sets=rgtr_sets(**sets), log=lambda _: None)
