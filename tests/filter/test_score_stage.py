"""``ccr score``: the two views and the DCOT confidence on the planted corpus (design in planted_corpus.py)."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest
from planted_corpus import FEATURES, MT_KEY, SCORE

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.filter.dcot_conf import make_groups
from ccr.filter.score import (
    ScoreConfig,
    choose_features,
    family_mismatch,
    format_summary,
    summarize,
)
from ccr.filter.score import plan as score_plan
from ccr.stages.runner import RunOptions
from ccr.stages.table import run

MT_ROWS = 400  # 200 media x 2 captions


def _scores(corpus) -> pl.DataFrame:
    return Corpus.open(corpus).table("captions.score").sort("caption_id")


def _import(corpus, source, name: str, *, model: str = "tiny/clip", ids: list[str] | None = None,
            dim: int | None = None) -> None:
    """Another pooled feature set from the planted features (a subset of media, or cut to ``dim``)."""
    all_ids = (source / "ids.txt").read_text().split()
    array = np.load(source / "features.npy")
    keep = [all_ids.index(i) for i in ids] if ids else list(range(len(all_ids)))
    np.save(source / f"{name}.npy", array[keep][:, :dim] if dim else array[keep])
    (source / f"{name}.txt").write_text("\n".join(all_ids[k] for k in keep) + "\n")
    run("import-features", corpus, overrides={"format": "npy", "src": str(source / f"{name}.npy"),
                                              "ids": str(source / f"{name}.txt"), "name": name, "model": model,
                                              "variant": "pooled"}, options=RunOptions(progress=False))


def test_every_noisy_mt_row_gets_both_views_and_a_confidence(scored, tmp_path):
    corpus, key = scored
    scores = _scores(corpus)
    assert scores.height == MT_ROWS
    assert all(i.endswith(f"|mt:cs:{key}") for i in scores["caption_id"])  # only the chosen model's rows
    for column in ("xl_sim", "xm_sim"):
        assert scores[column].null_count() == 0 and scores[column].abs().max() <= 1.0 + 1e-6
    assert scores["dcot_conf"].null_count() == 0
    assert 0.0 <= scores["dcot_conf"].min() and scores["dcot_conf"].max() <= 1.0
    run_record = [r for r in Corpus.open(corpus).runs() if r["stage"] == "score"][-1]
    assert run_record["models"]["features"] == FEATURES
    assert run_record["models"]["mclip_text"]["id"] == "tiny/mclip-text"
    assert run_record["models"]["embedder"]["id"] == "tiny/multilingual-minilm"
    summary = summarize(corpus, ["cs"], [key], plot=tmp_path / "scores.png")
    assert set(summary["cs"]) == {"xl_sim", "xm_sim", "dcot_conf"}
    assert summary["cs"]["dcot_conf"]["count"] == MT_ROWS and summary["cs"]["xl_sim"]["missing"] == 0
    stats = summary["cs"]["xm_sim"]
    assert stats["p05"] <= stats["p25"] <= stats["p50"] <= stats["p75"] <= stats["p95"]
    table = format_summary(summary)
    assert table.splitlines()[0].split()[:4] == ["lang", "view", "count", "missing"] and "dcot_conf" in table
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_groups_are_a_pure_function_of_the_ids_and_the_seed():
    ids = [f"c{i:04d}" for i in range(203)]
    groups = make_groups(ids, 64, seed=3)
    assert groups == make_groups(list(reversed(ids)), 64, seed=3)
    assert sorted(i for g in groups for i in g) == ids
    assert len(groups) == 3 and {len(g) for g in groups} <= {67, 68}
    assert groups != make_groups(ids, 64, seed=4)
    assert make_groups([], 64, seed=0) == [] and len(make_groups(ids[:5], 64, seed=0)) == 1


def test_shards_and_an_interrupted_run_give_the_scores_of_one_run(noisy, scored, tmp_path):
    reference = _scores(scored[0])
    corpus, key = noisy
    sharded = tmp_path / "sharded"
    shutil.copytree(corpus, sharded)
    for index in (0, 1):
        run("score", sharded, overrides={"lang": "cs", "mt_model": key, **SCORE},
            options=RunOptions(progress=False, num_shards=2, shard_index=index, batch_size=1))
    resumed = tmp_path / "resumed"
    shutil.copytree(corpus, resumed)
    first = run("score", resumed, overrides={"lang": "cs", "mt_model": key, **SCORE},
                options=RunOptions(progress=False, limit=100, chunk_rows=50))
    partial = set(_scores(resumed)["caption_id"])
    groups = [set(g) for g in make_groups(reference["caption_id"].to_list(), 64, 0)]
    assert len(partial) > 100 and first.rows_out["captions.score"] == len(partial)
    assert all(g <= partial or not g & partial for g in groups)  # whole groups only, never split by --limit or chunks
    run("score", resumed, overrides={"lang": "cs", "mt_model": key, **SCORE}, options=RunOptions(progress=False))
    for other in (sharded, resumed):
        got = _scores(other)
        assert got["caption_id"].to_list() == reference["caption_id"].to_list()
        for column in ("xl_sim", "xm_sim", "dcot_conf"):
            np.testing.assert_allclose(got[column].to_numpy(), reference[column].to_numpy(), atol=1e-5)


def test_rows_without_features_fail_with_the_fix_and_the_rest_is_scored(noisy, planted):
    corpus, key = noisy
    media = sorted(Corpus.open(corpus).ids("media"))
    _import(corpus, planted.parent / "source", "clip-partial", ids=media[:150])
    summary = run("score", corpus, overrides={"lang": "cs", "mt_model": key, "tiny": True, "features": "clip-partial"},
                  options=RunOptions(progress=False))
    assert summary.rows_failed == 100  # 50 media without features x 2 MT captions
    failures = Corpus.open(corpus).failures()
    assert failures.height == 100 and failures["reason"].str.contains("run ccr features").all()
    assert _scores(corpus).height == 300


def test_feature_set_choice_and_the_clip_family_check(noisy, planted):
    corpus, key = noisy
    source = planted.parent / "source"
    opened = Corpus.open(corpus)
    assert choose_features(opened, None)[0] == FEATURES
    with pytest.raises(CcrError, match="no feature set 'resnet'.*have: clip-planted"):
        choose_features(opened, "resnet")
    _import(corpus, source, "clip-large", model="openai/clip-vit-large-patch14")
    with pytest.raises(CcrError, match="several pooled feature sets: clip-large, clip-planted; .*--features NAME"):
        choose_features(Corpus.open(corpus), None)
    assert family_mismatch("openai/clip-vit-base-patch32", "sentence-transformers/clip-ViT-B-32-multilingual-v1") is None
    assert family_mismatch("imported", "sentence-transformers/clip-ViT-B-32-multilingual-v1") is None
    assert "(ViT-L/14) but MT captions embedded by sentence-transformers/clip-ViT-B-32-multilingual-v1 (ViT-B/32)" in \
        family_mismatch("openai/clip-vit-large-patch14", "sentence-transformers/clip-ViT-B-32-multilingual-v1")
    cfg = ScoreConfig(lang=("cs",), mt_model=(key,), tiny=True, features="clip-large")
    with pytest.warns(UserWarning, match=r"ViT-L/14.*tiny/mclip-text \(tiny\)"):
        score_plan(Corpus.open(corpus), cfg)
    _import(corpus, source, "clip-narrow", dim=8)
    with pytest.raises(CcrError, match="8-d but tiny/mclip-text embeds text in 16-d"):
        run("score", corpus, overrides={"lang": "cs", "mt_model": key, "tiny": True, "features": "clip-narrow"},
            options=RunOptions(progress=False))


def test_a_corpus_without_features_or_with_two_mt_models_is_refused_with_the_fix(noisy, toy_corpus):
    corpus, key = noisy
    with pytest.raises(CcrError, match=f"several models made machine-translated cs captions: {MT_KEY}, {MT_KEY}\\+noise"):
        run("score", corpus, overrides={"lang": "cs", "tiny": True}, options=RunOptions(progress=False))
    with pytest.raises(CcrError, match="no pooled CLIP feature set .*ccr features CORPUS"):
        choose_features(Corpus.open(toy_corpus), None)
    with pytest.raises(CcrError, match="group_size must be at least 2"):
        run("score", corpus, overrides={"lang": "cs", "mt_model": key, "tiny": True, "group_size": 1},
            options=RunOptions(progress=False))
