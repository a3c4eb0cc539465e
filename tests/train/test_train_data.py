"""The wide training record as a view of the long captions table, tokens, sampling, visual input."""

import numpy as np
import pytest

from ccr.corpus.corpus import Commit, Corpus
from ccr.errors import CcrError
from ccr.testing.synthetic import write_synthetic_corpus
from ccr.train.data.batching import EpochCollate, EpochSampler
from ccr.train.data.media import PIXEL_GRID, open_source
from ccr.train.data.rows import eval_records, train_records, translated_languages
from ccr.train.data.tokens import TokenTable
from ccr.train.run.feed import build_loader

KEYS = frozenset({"en", "mt", "bt"})


def _side_table(corpus: Corpus, rows: list[dict]) -> None:
    """What a select stage writes: keep/weight for some caption ids, joined on read."""
    path = corpus.shard_path("captions.select", "select", "fp", "0")
    corpus.write_shard("captions.select", rows, path)
    corpus.commit(Commit("select", "fp", "0", {"captions.select": str(path.relative_to(corpus.root))}))


def test_wide_view_follows_parent_ids_keep_and_weight(tmp_path):
    corpus = Corpus.open(write_synthetic_corpus(tmp_path, n_train=10, n_val=3, n_test=3))
    dropped, light = "s00001#en#0|mt:de:synth-mt", "s00002#en#1|mt:de:synth-mt"
    _side_table(corpus, [{"caption_id": dropped, "keep": False}, {"caption_id": light, "weight": 0.25}])
    records = train_records(corpus, ["de"], KEYS)
    assert len(records.media_id) == 10 * 2 - 1 and set(records.lang) == {"de"}
    caps = {r["caption_id"]: r for r in corpus.table("captions").iter_rows(named=True)}
    for i, media in enumerate(records.media_id):
        en = next(c for c in caps.values() if c["origin"] == "human" and c["text"] == records.texts["en"][i])
        mt = caps[f"{en['caption_id']}|mt:de:synth-mt"]
        assert en["media_id"] == media and mt["text"] == records.texts["mt"][i]
        assert caps[f"{mt['caption_id']}|bt:en:synth-mt"]["text"] == records.texts["bt"][i]
        assert records.weight[i] == (0.25 if mt["caption_id"] == light else 1.0)
    assert caps["s00001#en#0"]["text"] not in records.texts["en"]  # its MT row is not kept


def test_several_mt_models_need_a_choice(tmp_path):
    corpus = Corpus.open(write_synthetic_corpus(tmp_path, n_train=4, n_val=2, n_test=2, mt_models=("m1", "m2")))
    with pytest.raises(CcrError, match="several models made de MT captions.*m1, m2.*--mt-model"):
        train_records(corpus, ["de"], KEYS)
    assert len(train_records(corpus, ["de"], KEYS, mt_model="m2").media_id) == 8
    with pytest.raises(CcrError, match="--mt-model 'zz'.*available: m1, m2"):
        train_records(corpus, ["de"], KEYS, mt_model="zz")


def test_english_only_view_and_a_missing_translation_stage(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    assert translated_languages(corpus) == set()
    records = train_records(corpus, ["de"], frozenset({"en"}))
    assert set(records.lang) == {"en"} and len(records.media_id) == 96 and "mt" not in records.texts
    with pytest.raises(CcrError, match="no de MT captions.*run ccr translate"):
        train_records(corpus, ["de"], KEYS)


def test_eval_queries_are_human_captions_with_their_english_translations(synth_corpus):
    corpus = Corpus.open(synth_corpus)
    records = eval_records(corpus, "test", "de", translated=True)
    assert len(records.queries) == 40 and len(records.gallery) == 40
    assert records.queries[0].split()[1] in ("mit", "sieht") and records.translated[0].split()[1] in ("with", "sees")
    assert [records.gallery[c] for c in records.text_to_media] == [c.split("#")[0] for c in records.caption_ids]
    with pytest.raises(CcrError, match=r"no human fr captions in the test split \(it has: de, en\)"):
        eval_records(corpus, "test", "fr")
    with pytest.raises(CcrError, match="backtranslate --test-queries"):
        eval_records(corpus, "test", "en", translated=True)


def test_the_gallery_is_the_items_captioned_in_the_language_unless_the_whole_split_is_asked(tmp_path):
    """MSCOCO's protocol in small: English captions for four test images, Japanese for two of them."""
    import json

    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions

    rows = [{"media_id": f"m{i}", "split": "test", "lang": "en", "text": f"image {i}", "caption_id": f"m{i}#en#0",
             "modality": "image", "path": f"m{i}.jpg"} for i in range(4)]
    rows += [{"media_id": f"m{i}", "split": "test", "lang": "ja", "text": f"画像 {i}", "caption_id": f"m{i}#ja#0"}
             for i in (1, 3)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    ingest("jsonl", tmp_path / "c.jsonl", tmp_path / "corpus", options=RunOptions(progress=False))
    corpus = Corpus.open(tmp_path / "corpus")
    captioned = eval_records(corpus, "test", "ja")
    assert captioned.gallery == ["m1", "m3"] and captioned.text_to_media.tolist() == [0, 1]
    whole = eval_records(corpus, "test", "ja", gallery="split")
    assert whole.gallery == ["m0", "m1", "m2", "m3"] and whole.text_to_media.tolist() == [1, 3]
    with pytest.raises(CcrError, match="gallery 'all': use captioned"):
        eval_records(corpus, "test", "ja", gallery="all")


def test_tokens_are_computed_once_and_batches_padded(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from ccr.models import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("tiny/bert").path)
    calls, tokenize = [], type(tokenizer).__call__
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, *a, **k: calls.append(a) or tokenize(self, *a, **k))
    texts = ["red and dog", "ein Bild von Vogel mit Schnee", "red and dog"]
    table = TokenTable.build(texts, tokenizer, 64, tmp_path)
    assert len(list(tmp_path.glob("tokens-*.npz"))) == 1 and calls == [(sorted(set(texts)),)]
    again = TokenTable.build(texts, tokenizer, 64, tmp_path)
    assert len(calls) == 1  # the cache answered
    batch = again.batch(again.rows(texts))
    expected = tokenizer(texts, padding=True, return_tensors="np")
    np.testing.assert_array_equal(batch["input_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"].numpy(), expected["attention_mask"])
    assert TokenTable.build(texts, tokenizer, 3).batch([0])["input_ids"].shape == (1, 3)  # truncation
    assert table.rows(texts)[0] == table.rows(texts)[2]


def test_sampler_gives_each_process_a_slice_of_the_same_global_batches():
    one = EpochSampler(10, 4, seed=3)
    ranks = [EpochSampler(10, 4, rank=r, world=2, seed=3) for r in range(2)]
    for s in (one, *ranks):
        s.set_epoch(5)
    global_batches = list(one)
    assert len(global_batches) == 2 and all(len(b) == 4 for b in global_batches)  # the last 2 tuples wait
    assert [a + b for a, b in zip(*ranks, strict=True)] == global_batches
    one.set_epoch(5, skip=1)
    assert list(one) == global_batches[1:] and len(one) == 1
    one.set_epoch(6)
    assert list(one) != global_batches
    with pytest.raises(CcrError, match="divisible"):
        EpochSampler(10, 5, world=2)
    with pytest.raises(CcrError, match="fewer than batch_size"):
        EpochSampler(3, 4)


def _augmented_epoch(epoch: int, *, skip: int = 0, workers: int = 0) -> list:
    """A loader as the trainer builds it, over a collate that draws from torch's generator (as crops do)."""
    import torch

    sampler = EpochSampler(40, 8, seed=3)
    sampler.set_epoch(epoch, skip=skip)
    collate = EpochCollate(lambda indices: (indices, torch.rand(2)), seed=3)
    collate.epoch = epoch
    loader = build_loader(40, sampler, collate, workers=workers, prefetch=2, device=torch.device("cpu"))
    return [(indices, draws.tolist()) for indices, draws in loader]


def test_the_data_paths_draws_are_the_batchs_own_wherever_it_is_built():
    """A resumed epoch (skipping batches) and loader workers build the batches of an uninterrupted epoch,
    and building them leaves the training step's stream (global torch generator) where it was."""
    import torch

    before = torch.get_rng_state()
    epoch = _augmented_epoch(2)
    assert torch.equal(torch.get_rng_state(), before)
    assert _augmented_epoch(2, skip=3) == epoch[3:]
    assert _augmented_epoch(2, workers=2) == epoch
    assert len({tuple(d) for _, d in epoch}) == len(epoch)  # every batch draws afresh
    assert [d for _, d in _augmented_epoch(3)] != [d for _, d in epoch]


def test_pixel_fallback_and_feature_set_choice(toy_corpus, synth_corpus):
    corpus = Corpus.open(toy_corpus)
    with pytest.raises(CcrError, match="no visual features; run ccr features.*--visual pixels"):
        open_source(corpus, "auto")
    pixels = open_source(corpus, "pixels")
    grid = pixels.get("m0000")
    assert grid.shape == (1, PIXEL_GRID * PIXEL_GRID * 3) and grid.dtype == np.float32
    assert -0.5 <= grid.min() < grid.max() <= 0.5 and pixels.has("m0000") and not pixels.has("nope")
    source = open_source(Corpus.open(synth_corpus), "auto")
    assert source.name == "synthetic-concepts" and source.get("s00000").shape == (1, 32)
    with pytest.raises(CcrError, match="no features named 'clip'"):
        open_source(Corpus.open(synth_corpus), "clip")


def test_descriptions_reach_training_and_gallery_batches_when_asked(tmp_path):
    from transformers import AutoTokenizer

    from ccr.models import resolve
    from ccr.train.data.batching import build_eval_data, build_train_data

    corpus = Corpus.open(write_synthetic_corpus(tmp_path, n_train=4, n_val=2, n_test=2))
    media = sorted(corpus.table("media")["media_id"].to_list())
    rows = [{"description_id": f"{m}#d", "media_id": m, "model": "tiny", "prompt_id": "detailed",
             "text": f"a long description of {m}"} for m in media]
    path = corpus.shard_path("descriptions", "caption", "fp", "0")
    corpus.write_shard("descriptions", rows, path)
    corpus.commit(Commit("caption", "fp", "0", {"descriptions": str(path.relative_to(corpus.root))}))
    tokenizer = AutoTokenizer.from_pretrained(resolve("tiny/bert").path)
    common = {"tokenizer": tokenizer, "source": open_source(corpus, "auto"), "max_tokens": 32, "max_frames": 4,
              "cache": None, "log": print}
    keys = frozenset({"en", "descriptions"})
    data = build_train_data(corpus, train_records(corpus, ["de"], keys), keys, use_weights=True, **common)
    batch = data.collate([0, 3, 5])
    assert set(batch) >= {"media", "media_mask", "media_index", "en", "descriptions", "weight"} and "mt" not in batch
    owners = [data.media_ids[i] for i in batch["media_index"]]
    expected = tokenizer([f"a long description of {m}" for m in owners], padding=True, return_tensors="pt")
    assert batch["descriptions"]["input_ids"].tolist() == expected["input_ids"].tolist()
    gallery = build_eval_data(corpus, eval_records(corpus, "test", "de"), frozenset({"descriptions"}), **common)
    first = next(gallery.gallery_batches(8))
    assert first["media_ids"] == gallery.records.gallery and first["descriptions"]["input_ids"].shape[0] == 2
