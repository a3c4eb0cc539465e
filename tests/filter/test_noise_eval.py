"""``ccr noise eval``: planted swaps against the scores (corpus design in planted_corpus.py)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccr.corpus.corpus import Commit, Corpus
from ccr.errors import CcrError
from ccr.filter.noise_eval import auroc, evaluate, precision_at
from ccr.stages.runner import RunOptions
from ccr.stages.table import run


def test_dcot_finds_planted_swaps_at_least_as_well_as_either_view(scored, tmp_path):
    corpus, _ = scored
    result = evaluate(corpus, out=tmp_path / "eval")
    cs = result.results["cs"]
    assert cs["rows"] == 400 and cs["noisy"] == 80 and cs["noise_types"] == {"none": 320, "swap": 80}
    s = {name: metrics["auroc"] for name, metrics in cs["scores"].items()}
    assert set(s) == {"xl_sim", "xm_sim", "dcot_conf"}
    assert min(s["xl_sim"], s["xm_sim"]) > 0.75  # each view sees the planted signal on its own
    assert s["dcot_conf"] >= 0.9
    assert s["dcot_conf"] >= max(s["xl_sim"], s["xm_sim"])
    assert cs["scores"]["dcot_conf"]["precision_at_kept"] >= 0.9 and cs["kept_fraction"] == pytest.approx(0.8)
    assert json.loads(result.json_path.read_text())["languages"]["cs"]["noisy"] == 80
    assert "| cs | dcot_conf | 400 | 80 |" in result.table_path.read_text()
    with Image.open(result.plot_path) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 200


def test_sparse_swaps_are_found_at_a_realistic_noise_rate(scored_sparse, tmp_path):
    """5% swapped captions (20 of 400 MT rows), about three per DCOT group of 64.

    This is the rate at which ``ccr score`` version 1 (a balanced plan) went blind to isolated
    swaps. Thresholds: each view alone ranks a swapped caption below about 93% of the clean ones
    here, with errors of its own (planted_corpus.py); the relaxed dual-view plan, which sees both
    views and the rest of the group, must rank it below 97% (with 20 noisy rows AUROC moves by
    about 0.01 from one draw of the swaps to another, and this corpus gives 0.998), beat each view
    by 0.03, and keep at most three swapped captions among the 380 best-scored rows.
    """
    cs = evaluate(scored_sparse, out=tmp_path / "eval").results["cs"]
    assert cs["rows"] == 400 and cs["noise_types"] == {"none": 380, "swap": 20}
    s = {name: metrics["auroc"] for name, metrics in cs["scores"].items()}
    assert min(s["xl_sim"], s["xm_sim"]) > 0.85
    assert s["dcot_conf"] >= 0.97 and s["dcot_conf"] >= max(s["xl_sim"], s["xm_sim"]) + 0.03
    assert cs["scores"]["dcot_conf"]["precision_at_kept"] >= 1 - 3 / 380


def test_auroc_and_precision_match_their_definitions():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=60), 1)  # rounded: ties happen
    noisy = rng.random(60) < 0.3
    pairs = list(itertools.product(scores[~noisy], scores[noisy]))
    brute = sum(1.0 if c > n else 0.5 if c == n else 0.0 for c, n in pairs) / len(pairs)
    assert auroc(scores, noisy) == pytest.approx(brute)
    assert auroc(scores, np.zeros(60, bool)) is None
    perfect = np.where(noisy, -1.0, 1.0)
    assert auroc(perfect, noisy) == 1.0
    assert precision_at(perfect, noisy, 1 - noisy.mean()) == 1.0
    assert precision_at(-perfect, noisy, noisy.mean()) == 0.0


def test_eval_reads_select_and_backtranslate_columns_when_present(scored, tmp_path):
    corpus, key = scored
    opened = Corpus.open(corpus)
    ids = opened.table("captions.score")["caption_id"].to_list()
    noise = dict(opened.table("captions").select("caption_id", "noise_type").drop_nulls().iter_rows())
    # what backtranslate would leave: a round-trip similarity, higher for the clean rows
    rows = [{"caption_id": i, "rt_sim": 0.9 if noise[i] == "none" else 0.2} for i in ids]
    path = opened.shard_path("captions.backtranslate", "backtranslate", "fixture", "0")
    opened.commit(Commit(stage="backtranslate", fingerprint="fixture", key="0",
                         files={"captions.backtranslate": str(path.relative_to(corpus))},
                         rows={"captions.backtranslate": opened.write_shard("captions.backtranslate", rows, path)}))
    run("select", corpus, overrides={"top": 70, "mt_model": key}, options=RunOptions(progress=False))
    cs = evaluate(corpus, out=tmp_path / "eval").results["cs"]
    assert cs["scores"]["rt_sim"]["auroc"] == 1.0
    assert cs["kept_fraction_from"] == "keep" and cs["kept_fraction"] == pytest.approx(0.7, abs=0.01)
    assert cs["keep"]["precision"] >= 0.9 and cs["keep"]["noise_dropped"] >= 0.8


def test_eval_explains_what_is_missing(planted, noisy, tmp_path):
    with pytest.raises(CcrError, match="no injected noise in .*ccr noise inject"):
        evaluate(planted, out=tmp_path / "a")
    corpus, key = noisy
    with pytest.raises(CcrError, match=f"have no scores yet; score them first: ccr score .* --lang cs --mt-model "
                                       f"{re.escape(key)}$"):
        evaluate(corpus, out=tmp_path / "b")


def test_an_out_that_cannot_be_written_is_one_line_naming_it(scored, tmp_path):
    corpus, _ = scored
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for out, says in [(afile, "it is a file"), (afile / "eval", f"{afile} is a file"),
                      (Path("/sys/ccr-test"), "cannot be written")]:
        with pytest.raises(CcrError) as e:
            evaluate(corpus, out=out)
        assert "\n" not in str(e.value) and f"--out {out}" in str(e.value) and says in str(e.value), e.value
    assert afile.read_text() == "keep me"
