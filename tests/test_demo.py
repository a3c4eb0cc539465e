import json

import polars as pl
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus


def test_demo_runs_its_recipe_on_the_toy_corpus(toy_demo):
    dest, output = toy_demo
    assert "learned on the toy domain" in output
    corpus = Corpus.open(dest / "corpus")
    captions = corpus.table("captions")
    assert set(captions["lang"]) == {"en", "de", "fr", "cs"}
    human = captions.filter((pl.col("lang") != "en") & (pl.col("origin") == "human"))
    assert human["split"].unique().sort().to_list() == ["test", "val"]
    assert corpus.failures().height == 0
    assert (dest / "export" / "nrccr" / "TextData" / "toytest_de.caption.txt").exists()
    assert (dest / "export" / "parquet").is_dir() and (dest / "report" / "index.html").exists()
    assert (dest / "export" / "hf" / "README.md").exists() and (dest / "recipe.toml").exists()
    card = (dest / "corpus" / "README.md").read_text()
    assert card.startswith("---\nlanguage:") and "config_name: captions" in card
    assert json.loads((dest / "runs" / "baseline" / "eval" / "test.de.json").read_text())["n_queries"] > 0
    planted = json.loads((dest / "noise-eval" / "noise_eval.json").read_text())["languages"]["de"]
    assert planted["noisy"] > 0 and planted["scores"]  # the noisy copy's noisy rows were rescored
    assert Corpus.open(dest / "noisy").manifest()["noise_source"] == str((dest / "corpus").resolve())
    text = " ".join(output.split())
    for shown in ("stage history", "xl_sim", "| de |", "check-noise: languages.de.rows =", "index.html",
                  "what this demo proved"):
        assert shown in text, shown  # info table, score summary, eval and noise-eval tables, checks, report, proof
    again = CliRunner().invoke(app, ["demo", str(dest)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_the_demo_proves_each_stage_carries_signal(toy_demo):
    """Issue 18's figures, from the demo's own output (proof.json) against the toy ground truth."""
    proof = json.loads((toy_demo[0] / "proof.json").read_text())
    for pair, mt in proof["mt"].items():
        assert mt["distinct"] >= 0.9 and mt["exact_match"] >= 0.9, pair
    assert set(proof["mt"]) == {f"{a}-{b}" for x in ("de", "fr", "cs") for a, b in (("en", x), (x, "en"))}
    assert proof["noise_auroc"]["dcot_conf"] >= 0.9 and proof["noise_auroc"]["xl_sim"] >= 0.9
    for run in ("baseline", "dcot"):
        assert proof["retrieval"][run]["times_chance"] >= 3, run
    assert proof["descriptions"]["names_objects"] >= 0.8 and proof["descriptions"]["slot_purity"] >= 0.8


def test_the_random_stand_ins_still_run_the_whole_recipe(tmp_path):
    dest = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", str(dest), "--models", "random"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "tiny random stand-ins" in result.output and "meaningless" in result.output
    assert (dest / "proof.json").exists() and (dest / "report" / "index.html").exists()


def test_demo_models_are_toy_random_or_real_and_the_old_flag_says_the_new_one(tmp_path):
    old = CliRunner().invoke(app, ["demo", str(tmp_path / "a"), "--real-models"])
    assert old.exit_code == 2 and "--real-models is now --models real" in old.output
    huge = CliRunner().invoke(app, ["demo", str(tmp_path / "b"), "--models", "huge"])
    assert huge.exit_code == 2 and "--models huge: use toy or random or real" in huge.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_demo_corpus_exports_for_the_hub_and_its_run_finds_a_german_query(toy_demo, tmp_path):
    """The demo's outputs used the way a researcher goes on: a Hub dataset, and a search with the run."""
    import shutil

    import datasets

    from ccr.corpus.info import caption_counts
    from ccr.formats.export import export
    from ccr.train import load

    dest = toy_demo[0]
    export(dest / "corpus", tmp_path / "hub", fmt="hf")
    captions = datasets.load_dataset(str(tmp_path / "hub"), "captions")
    counts = caption_counts(Corpus.open(dest / "corpus")).group_by("split").agg(pl.col("captions").sum())
    assert {("validation" if s == "val" else s): n for s, n in counts.iter_rows()} == captions.num_rows
    assert {"xl_sim", "dcot_conf", "keep", "weight"} <= set(captions["train"].column_names)
    queries = Corpus.open(dest / "corpus").table("captions").filter(
        (pl.col("split") == "test") & (pl.col("lang") == "de") & (pl.col("origin") == "human")).sort("caption_id")
    run = shutil.copytree(dest / "runs" / "dcot", tmp_path / "dcot")  # search caches beside the run
    model = load(run, corpus=dest / "corpus", log=lambda _: None)
    found = [row["media_id"] in [h.media_id for h in model.search(row["text"], lang="de", top=5, log=lambda _: None).hits]
             for row in queries.head(10).iter_rows(named=True)]
    assert sum(found) >= 9, found  # the demo's test R@5 is 100%
