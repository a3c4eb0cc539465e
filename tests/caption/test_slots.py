"""Semantic slots: sentence splitting, deterministic k-means and its few-segment rules, and ``ccr slots``.

The stage test uses the bundled all-MiniLM-L6-v2 (real weights, offline), so the clusters it
checks are semantic: sentences about a dog and sentences about the weather must land apart.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ccr.caption.slots import STAGE, SlotsConfig, cluster, make_slots, segments
from ccr.corpus.corpus import Commit, Corpus
from ccr.corpus.views import description_id
from ccr.errors import CcrError
from ccr.stages.runner import RunOptions, run_stage

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
STORE = "slots-k2-all-minilm-l6-v2"


def test_segments_split_sentences_lines_and_bullets_and_drop_noise():
    text = ("A brown dog runs on the beach. It chases a red ball!\n"
            "1. A lighthouse stands far away\n- The sky is grey; rain is coming. ok. "
            "a brown dog runs on the beach. 海边有一只狗。天空是灰色的。")
    assert segments([text, "", "   "]) == [
        "A brown dog runs on the beach.", "It chases a red ball!", "A lighthouse stands far away",
        "The sky is grey;", "rain is coming.", "海边有一只狗。", "天空是灰色的。"]
    assert segments(["Version 3.5 of the app.", "ok"], min_chars=3) == ["Version 3.5 of the app."]


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three tight groups of unit vectors around orthogonal directions, interleaved."""
    rng = np.random.default_rng(seed)
    truth = np.array([0, 1, 2, 0, 2, 1, 1, 0, 2, 0])
    x = np.eye(8)[truth * 2] + 0.05 * rng.standard_normal((len(truth), 8))
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


def pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Which points share a cluster: the partition, whatever the cluster numbers."""
    return {(i, j) for i in range(len(labels)) for j in range(len(labels)) if labels[i] == labels[j]}


def test_kmeans_recovers_planted_groups_numbered_by_first_appearance_every_time():
    x, truth = _planted(0)
    labels = cluster(x, 3)
    assert labels.tolist() == truth.tolist()
    assert all(cluster(x, 3).tolist() == labels.tolist() for _ in range(3)), "no randomness"
    order = np.random.default_rng(1).permutation(len(x))
    permuted = cluster(x[order], 3)
    assert pairs(permuted) == pairs(truth[order]), "the partition does not depend on input order"


def test_more_clusters_than_groups_still_gives_k_nonempty_slots():
    x, _ = _planted(2)
    labels = cluster(x, 5)
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]


def test_few_segments_follow_the_documented_rules():
    x, _ = _planted(3)
    texts = [f"s{i}" for i in range(len(x))]
    two = make_slots(texts[:2], x[:2], k=4)
    assert [s.size for s in two] == [1, 1, 0, 0] and [s.text for s in two] == ["s0", "s1", "", ""]
    np.testing.assert_allclose(two[0].vector, x[0])
    filler = x[:2].mean(axis=0) / np.linalg.norm(x[:2].mean(axis=0))
    np.testing.assert_allclose(two[2].vector, filler)
    np.testing.assert_allclose(two[3].vector, filler)
    repeated = make_slots(["a", "b", "c"], np.stack([x[0], x[0], x[1]]), k=3)
    assert [s.size for s in repeated] == [2, 1, 0], "identical vectors share a slot"
    tie = make_slots(["first", "second"], x[:2], k=1)
    assert tie[0].text == "first", "both are equally near the mean: the earlier wins"
    one = make_slots(texts, x, k=1)
    assert len(one) == 1 and one[0].size == len(x)
    full = make_slots(texts, x, k=3)
    assert [s.size for s in full] == [4, 3, 3] and all(abs(np.linalg.norm(s.vector) - 1) < 1e-9 for s in full)
    assert full[0].text in {"s0", "s3", "s7", "s9"}, "a slot's text is one of its own segments"
    with pytest.raises(ValueError):
        make_slots([], np.zeros((0, 8)), k=2)


DESCRIPTIONS = {
    "m0000": ("A brown dog runs along the beach. The dog is chasing a ball. "
              "Dark rain clouds fill the sky. It is starting to rain heavily."),
    "m0001": "A red car is parked on the street.",
    "m0002": "!! ..",
}


def add_descriptions(corpus_dir: Path, model: str, texts: dict[str, str], prompt: str = "detailed") -> None:
    """Description rows as a caption run would commit them."""
    corpus = Corpus.open(corpus_dir)
    rows = [{"description_id": description_id(m, prompt, model), "media_id": m, "model": model, "prompt_id": prompt,
             "text": t} for m, t in texts.items()]
    key = f"{model}-{prompt}".replace("@", "-")
    path = corpus.shard_path("descriptions", "caption", "handmade", key)
    corpus.write_shard("descriptions", rows, path)
    corpus.commit(Commit(stage="caption", fingerprint="handmade", key=key,
                         files={"descriptions": str(path.relative_to(corpus.root))}, done=list(texts)))


def run(corpus_dir: Path, batch_size: int = 8, **cfg):
    return run_stage(Corpus.open(corpus_dir), STAGE, SlotsConfig(**{"k": 2, "embedder": MINILM, **cfg}),
                     RunOptions(batch_size=batch_size, progress=False))


def test_slots_stage_groups_sentences_by_meaning(toy_corpus):
    add_descriptions(toy_corpus, "llava@x", DESCRIPTIONS)
    summary = run(toy_corpus)
    corpus = Corpus.open(toy_corpus)
    slots = corpus.table("slots").sort("slot_id")
    beach = slots.filter(pl.col("media_id") == "m0000").sort("slot")
    assert beach["size"].to_list() == [2, 2]
    assert "dog" in beach["text"][0].lower() and "rain" in beach["text"][1].lower()
    assert beach["slot_id"].to_list() == [f"m0000|{STORE}|0", f"m0000|{STORE}|1"]
    car = slots.filter(pl.col("media_id") == "m0001").sort("slot")
    assert car["size"].to_list() == [1, 0] and car["text"].to_list() == ["A red car is parked on the street.", ""]
    store = corpus.features(STORE)
    assert store.meta["dim"] == 384 and store.meta["k"] == 2 and store.meta["descriptions"] == "llava@x"
    vectors = store.get("m0000")
    assert vectors.shape == (2, 384) and vectors.dtype == np.float16
    assert float(vectors[0].astype(np.float32) @ vectors[1].astype(np.float32)) < 0.5, "two different topics"
    assert set(store.ids()) == {"m0000", "m0001"}
    failures = corpus.failures()
    assert failures["row_id"].to_list() == ["m0002"] and "no usable sentence" in failures["reason"][0]
    assert summary.rows_out == {f"features/{STORE}": 2, "slots": 4}


def test_slots_do_not_depend_on_batching(toy_corpus, tmp_path):
    more = {f"m00{i:02d}": DESCRIPTIONS["m0000"].replace("dog", animal)
            for i, animal in enumerate(["cat", "horse", "goat", "cow", "bird"], start=10)}
    add_descriptions(toy_corpus, "llava@x", {**DESCRIPTIONS, **more})
    other = tmp_path / "other"
    shutil.copytree(toy_corpus, other)
    run(toy_corpus, batch_size=1)
    run(other, batch_size=5, encode_batch=3)
    a, b = Corpus.open(toy_corpus), Corpus.open(other)
    assert a.table("slots").sort("slot_id").equals(b.table("slots").sort("slot_id"))
    for media_id in a.features(STORE).ids():
        np.testing.assert_allclose(a.features(STORE).get(media_id), b.features(STORE).get(media_id), atol=1e-3)


def test_which_descriptions_feed_the_slots(toy_corpus):
    with pytest.raises(CcrError, match="no descriptions; run ccr caption CORPUS first"):
        run(toy_corpus)
    add_descriptions(toy_corpus, "llava@x", DESCRIPTIONS)
    add_descriptions(toy_corpus, "other@y", {"m0000": "Just one sentence here."}, prompt="objects")
    with pytest.raises(CcrError, match="several models made descriptions: llava@x, other@y; pick one with --description-model KEY"):
        run(toy_corpus)
    with pytest.raises(CcrError, match="--description-model 'nope': no descriptions from it; available: llava@x, other@y"):
        run(toy_corpus, mllm="nope")
    with pytest.raises(CcrError, match="no other@y descriptions with prompt detailed; present: objects"):
        run(toy_corpus, mllm="other@y", prompts=["detailed"])
    summary = run(toy_corpus, mllm="other@y", prompts=["objects"])
    assert summary.rows_in == 1
    slots = Corpus.open(toy_corpus).table("slots")
    assert slots["text"].to_list()[0] == "Just one sentence here." and slots.height == 2
