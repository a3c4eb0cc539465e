"""``ccr noise inject``: a noisy copy, never in place, with the truth in ``noise_type``."""

from __future__ import annotations

import random

import polars as pl
import pytest
from planted_corpus import MT_KEY

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.filter.noise import NOISE_TYPES, corrupt, inject
from ccr.stages.runner import RunOptions
from ccr.stages.table import run

QUIET = RunOptions(progress=False)
NOISY_KEY = f"{MT_KEY}+noise"


def _mt(corpus, key: str) -> pl.DataFrame:
    return (Corpus.open(corpus).table("captions").filter((pl.col("origin") == "mt") & (pl.col("model") == key))
            .sort("caption_id"))


def test_noise_goes_into_new_rows_of_a_copy_and_the_source_stays_as_it_was(planted, noisy):
    corpus, key = noisy
    assert key == NOISY_KEY
    source_manifest = Corpus.open(planted).manifest()
    assert not [r for r in source_manifest["runs"] if r["stage"] == "noise"]
    assert _mt(planted, NOISY_KEY).height == 0
    clean = _mt(corpus, MT_KEY)
    rows = _mt(corpus, NOISY_KEY)
    assert rows.height == clean.height == 400
    assert rows["caption_id"].to_list() == [f"{p}|mt:cs:{NOISY_KEY}" for p in clean["parent_id"]]
    assert rows["parent_id"].to_list() == clean["parent_id"].to_list()
    assert rows["noise_type"].value_counts().sort("noise_type").rows() == [("none", 320), ("swap", 80)]
    by_parent = dict(zip(clean["parent_id"], clean["text"]))
    media_of = dict(zip(clean["text"], clean["media_id"]))
    for r in rows.iter_rows(named=True):
        if r["noise_type"] == "none":
            assert r["text"] == by_parent[r["parent_id"]]
        else:  # another item's MT caption
            assert r["text"] in media_of and media_of[r["text"]] != r["media_id"]
    manifest = Corpus.open(corpus).manifest()
    assert manifest["noise_source"] == str(planted.resolve())
    record = [r for r in manifest["runs"] if r["stage"] == "noise"][-1]
    assert record["config"]["rate"] == 0.2 and record["models"]["noisy_models"] == {"cs": NOISY_KEY}


def test_every_noise_type_does_what_it_says_and_the_same_seed_gives_the_same_corpus(planted, tmp_path):
    overrides = {"rate": 0.5, "types": ",".join(NOISE_TYPES), "seed": 7}
    first, _ = inject(planted, tmp_path / "a", overrides=overrides, options=QUIET)
    run("noise", planted, overrides=overrides, options=QUIET, arguments={"out": tmp_path / "b"})  # what inject wraps
    rows, again = _mt(tmp_path / "a", NOISY_KEY), _mt(tmp_path / "b", NOISY_KEY)
    assert rows.select("caption_id", "text", "noise_type").equals(again.select("caption_id", "text", "noise_type"))
    assert first.rows_out == {"captions": 400, "captions.noise": 400}
    assert dict(rows["noise_type"].value_counts().rows()) == {"none": 200, **{t: 40 for t in NOISE_TYPES}}
    clean = dict(zip(_mt(planted, MT_KEY)["parent_id"], _mt(planted, MT_KEY)["text"]))
    english = dict(Corpus.open(planted).table("captions").filter(pl.col("lang") == "en")
                   .select("caption_id", "text").iter_rows())
    other_mt = set(clean.values())
    for r in rows.iter_rows(named=True):
        text, original = r["text"].split(), clean[r["parent_id"]].split()
        kind = r["noise_type"]
        if kind == "copy":
            assert r["text"] == english[r["parent_id"]]
        elif kind == "swap":
            assert r["text"] in other_mt and r["text"] != clean[r["parent_id"]]
        elif kind == "truncate":
            assert text == original[:len(text)] and len(text) < len(original)
        elif kind == "drop":
            assert len(text) < len(original) and all(w in original for w in text)
        elif kind == "replace":
            assert len(text) == len(original) and text != original


def test_corrupt_works_on_text_without_spaces():
    rng = random.Random(0)
    assert corrupt("truncate", "一只黑狗跑过草地", partner=None, source=None, rng=rng, word_rate=0.5) == "一只黑狗"
    dropped = corrupt("drop", "一只黑狗跑过草地", partner=None, source=None, rng=rng, word_rate=0.5)
    assert len(dropped) == 4 and all(c in "一只黑狗跑过草地" for c in dropped)
    assert corrupt("drop", "狗", partner=None, source=None, rng=rng, word_rate=0.5) == "狗"  # nothing left to drop


def test_noise_is_never_injected_in_place_nor_twice_with_other_settings(planted, noisy, toy_corpus, tmp_path):
    corpus, _ = noisy
    with pytest.raises(CcrError, match="is not a noisy copy; .*ccr noise inject"):
        run("noise", planted, options=QUIET)
    with pytest.raises(CcrError, match="--out is the corpus itself"):
        inject(planted, planted, options=QUIET)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(CcrError, match="not a ccr corpus"):
        inject(planted, tmp_path / "full", options=QUIET)
    with pytest.raises(CcrError, match="is not empty; give the noisy corpus a new directory"):
        inject(toy_corpus, corpus, options=QUIET)  # a noisy copy of another corpus
    with pytest.raises(CcrError, match="already holds noise injected with .*'rate': 0.2"):
        inject(planted, corpus, overrides={"rate": 0.3}, options=QUIET)
    again, _ = inject(planted, corpus, overrides={"rate": 0.2, "types": "swap", "seed": 0}, options=QUIET)
    assert again.rows_in == 0 and again.rows_out == {}  # the same settings resume: nothing is owed


def test_bad_settings_name_the_fix(planted, tmp_path):
    with pytest.raises(CcrError, match="--type shuffle: use one or more of swap,drop,replace,copy,truncate"):
        inject(planted, tmp_path / "x", overrides={"types": "swap,shuffle"}, options=QUIET)
    with pytest.raises(CcrError, match="--rate 1.5: give a share in"):
        inject(planted, tmp_path / "y", overrides={"rate": 1.5}, options=QUIET)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # refused before anything is copied
