"""``ccr select``: policies into ``keep``/``weight``, and the trainer reading them."""

from __future__ import annotations

import polars as pl
import pytest

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.filter.select import parse_thresholds
from ccr.stages.runner import RunOptions
from ccr.stages.table import run

QUIET = RunOptions(progress=False)


def _rows(corpus, key: str) -> pl.DataFrame:
    return Corpus.open(corpus).table("captions").filter(pl.col("model") == key).sort("caption_id")


def test_top_percent_keeps_the_best_rows_and_the_trainer_drops_the_rest(scored):
    from ccr.train.data.rows import train_records

    corpus, key = scored
    run("select", corpus, overrides={"top": 80, "mt_model": key}, options=QUIET)
    rows = _rows(corpus, key)
    kept = rows.filter(pl.col("keep"))
    assert kept.height == 320  # ceil(0.8 * 400), no ties among float confidences
    assert kept["dcot_conf"].min() >= rows.filter(~pl.col("keep"))["dcot_conf"].max()
    assert (kept["noise_type"] == "none").mean() >= 0.9  # most of what is kept is clean
    assert rows["weight"].unique().to_list() == [1.0]
    records = train_records(Corpus.open(corpus), ["cs"], frozenset({"en", "mt", "weight"}), mt_model=key,
                            log=lambda line: None)
    assert sorted(records.texts["mt"]) == sorted(kept["text"].to_list())  # the noisy texts, minus the dropped rows


def test_thresholds_and_soft_weights(scored):
    corpus, key = scored
    cut = float(_rows(corpus, key)["xl_sim"].median())
    run("select", corpus, overrides={"threshold": f"xl_sim={cut}", "weighting": "normalized", "mt_model": key},
        options=QUIET)
    rows = _rows(corpus, key)
    assert rows["keep"].to_list() == (rows["xl_sim"] >= cut).to_list()
    assert rows.filter(pl.col("keep"))["weight"].mean() == pytest.approx(1.0)
    assert rows["weight"].to_list() == pytest.approx((rows["dcot_conf"] / rows.filter(pl.col("keep"))["dcot_conf"]
                                                      .mean()).to_list())
    run("select", corpus, overrides={"weighting": "rank", "mt_model": key}, options=QUIET)  # a new policy replaces it
    rows = _rows(corpus, key)
    assert rows["keep"].all() and rows["weight"].max() == 1.0 and rows["weight"].min() == pytest.approx(1 / 400)
    again = run("select", corpus, overrides={"weighting": "rank", "mt_model": key}, options=QUIET)
    assert again.rows_in == 0  # same decisions: nothing owed


def test_rows_without_the_score_fail_and_bad_policies_are_refused(scored):
    corpus, key = scored
    opened = Corpus.open(corpus)
    with pytest.raises(CcrError, match="nothing to select by"):
        run("select", corpus, overrides={"mt_model": key}, options=QUIET)
    with pytest.raises(CcrError, match="no column 'rt_sim' on the MT rows; scores present: .*dcot_conf"):
        run("select", corpus, overrides={"threshold": "rt_sim=0.5", "mt_model": key}, options=QUIET)
    with pytest.raises(CcrError, match="--top 0.0: give a percentage"):
        run("select", corpus, overrides={"top": 0, "mt_model": key}, options=QUIET)
    with pytest.raises(CcrError, match="write COLUMN=MIN"):
        parse_thresholds(["xl_sim"])
    assert parse_thresholds(["xl_sim>=0.5", "rt_sim=1"]) == {"xl_sim": 0.5, "rt_sim": 1.0}
    summary = run("select", corpus, overrides={"top": 50, "mt_model": "planted@1"}, options=QUIET)
    assert summary.rows_failed == 400  # the clean model's rows were never scored
    reasons = opened.failures()["reason"].unique().to_list()
    assert len(reasons) == 1 and "no dcot_conf" in reasons[0] and "ccr score" in reasons[0]
