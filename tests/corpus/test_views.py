"""The corpus views every stage, the trainer and the report read through (``ccr.corpus.views``)."""

from __future__ import annotations

import polars as pl
import pytest

from ccr.corpus.corpus import Commit, Corpus
from ccr.corpus.views import (
    DerivedId,
    choose_models,
    choose_mt_models,
    chosen_descriptions,
    chosen_mt_rows,
    derived_id,
    description_id,
    parse_derived_id,
    run_languages,
    selection_columns,
    target_languages,
)
from ccr.errors import CcrError

MT = dict(what="machine-translated {group} captions", option="--mt-model", make="run ccr translate --lang {group}")


def _commit(corpus: Corpus, table: str, rows: list[dict]) -> None:
    key = str(len(corpus.commits()))
    path = corpus.shard_path(table, "test", "fp", key)
    corpus.write_shard(table, rows, path)
    corpus.commit(Commit(stage="test", fingerprint="fp", key=key, files={table: str(path.relative_to(corpus.root))},
                         rows={table: len(rows)}))


def _mt(parent: str, lang: str, key: str, **extra) -> dict:
    return {"caption_id": derived_id(parent, "mt", lang, key), "media_id": parent.split("#")[0], "split": "train",
            "lang": lang, "text": f"{lang} {parent}", "origin": "mt", "parent_id": parent, "model": key, **extra}


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    opened = Corpus.open(tmp_path / "c", create=True)
    english = [{"caption_id": f"m{i}#en#0", "media_id": f"m{i}", "split": "train", "lang": "en", "text": f"en {i}",
                "origin": "human"} for i in range(3)]
    mt = ([_mt(r["caption_id"], "de", "a") for r in english] + [_mt(r["caption_id"], "de", "b") for r in english]
          + [_mt(r["caption_id"], "fr", "c") for r in english])
    _commit(opened, "captions", english + mt)
    return opened


def test_a_derived_id_names_parent_origin_language_and_model_and_parses_back():
    mt = derived_id("m0#en#0", "mt", "de", "marian-en-de@v1")
    bt = derived_id(mt, "bt", "en", "marian-de-en@v1")
    assert mt == "m0#en#0|mt:de:marian-en-de@v1"
    assert parse_derived_id(bt) == DerivedId(mt, "bt", "en", "marian-de-en@v1")
    assert parse_derived_id(derived_id("7", "mt", "de", "k:with:colons")).model_key == "k:with:colons"
    assert parse_derived_id("m0#en#0") is None and parse_derived_id("a|b") is None
    assert description_id("m0", "detailed", "llava@x") == "m0|detailed|llava@x"


def test_the_only_model_the_asked_one_or_an_error_listing_the_choices():
    assert choose_models({"de": ["a"], "fr": ["c", None]}, [], **MT) == {"de": "a", "fr": "c"}
    assert choose_models({"de": ["a", "b"], "fr": ["c"]}, ["b"], **MT) == {"de": "b", "fr": "c"}
    assert choose_models({"de": ["a", "b"], "fr": ["c", "d"]}, ["b", "d", "b"], **MT) == {"de": "b", "fr": "d"}
    with pytest.raises(CcrError, match="^several models made machine-translated de captions: a, b; "
                                       "pick one with --mt-model KEY$"):
        choose_models({"de": ["b", "a"]}, [], **MT)
    with pytest.raises(CcrError, match="^--mt-model 'z': no machine-translated de or fr captions from it; "
                                       "available: a, c$"):
        choose_models({"de": ["a"], "fr": ["c"]}, ["z"], **MT)
    with pytest.raises(CcrError, match="^the corpus has no machine-translated fr captions; run ccr translate --lang fr$"):
        choose_models({"de": ["a"], "fr": []}, [], **MT)


def test_mt_rows_of_one_model_per_language(corpus):
    captions = corpus.scan("captions")
    assert choose_mt_models(captions, ["fr"]) == {"fr": "c"}
    with pytest.raises(CcrError, match="several models made machine-translated de captions: a, b"):
        choose_mt_models(captions, ["de", "fr"])
    rows, keys = chosen_mt_rows(corpus, ["de", "fr"], ["b"], side_tables=False)
    assert keys == {"de": "b", "fr": "c"}
    assert sorted(rows.collect()["model"].unique().to_list()) == ["b", "c"]
    rows, keys = chosen_mt_rows(corpus, ["de"], [], side_tables=False, ignore=["a"])
    assert keys == {"de": "b"} and rows.collect().height == 3


def test_languages_of_a_run():
    assert run_languages(["de", "fr", "de"]) == ["de", "fr"]
    with pytest.raises(CcrError, match="English is the pivot"):
        run_languages(["en", "de"])
    with pytest.raises(CcrError, match="no language given"):
        run_languages([])


def test_without_lang_every_language_with_mt_rows(corpus):
    assert target_languages(corpus.scan("captions"), []) == ["de", "fr"]
    assert target_languages(corpus.scan("captions"), ["fr"]) == ["fr"]
    empty = corpus.scan("captions").filter(pl.col("origin") == "human")
    with pytest.raises(CcrError, match="no machine-translated captions; make them first"):
        target_languages(empty, [])


def test_a_missing_keep_or_weight_means_kept_at_weight_one():
    frame = pl.DataFrame({"keep": [False, None], "weight": [0.5, None]})
    assert frame.select(selection_columns(frame.columns)).rows() == [(False, 0.5), (True, 1.0)]
    bare = pl.DataFrame({"caption_id": ["x"]})
    assert bare.select(selection_columns(bare.columns)).rows() == [(True, 1.0)]


def test_descriptions_of_one_model_and_the_prompts_asked_for(tmp_path):
    corpus = Corpus.open(tmp_path / "d", create=True)

    def row(media: str, prompt: str, model: str, text: str) -> dict:
        return {"description_id": description_id(media, prompt, model), "media_id": media, "model": model,
                "prompt_id": prompt, "text": text}

    _commit(corpus, "descriptions", [row("m0", "detailed", "x", "old"), row("m0", "objects", "x", "o")])
    _commit(corpus, "descriptions", [row("m0", "detailed", "x", "new")])
    rows, key = chosen_descriptions(corpus, None, ["detailed"])
    assert key == "x" and rows.collect()["text"].to_list() == ["new"]  # a later run supersedes
    with pytest.raises(CcrError, match="no x descriptions with prompt summary; present: detailed, objects"):
        chosen_descriptions(corpus, None, ["summary"])
    _commit(corpus, "descriptions", [row("m0", "detailed", "y", "y's")])
    with pytest.raises(CcrError, match="several models made descriptions: x, y; pick one with --description-model KEY"):
        chosen_descriptions(corpus, None, [])
    assert chosen_descriptions(corpus, "y", [])[0].collect()["text"].to_list() == ["y's"]
