import polars as pl
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Corpus


def test_demo_runs_the_pipeline_on_the_toy_corpus(tmp_path):
    result = CliRunner().invoke(app, ["demo", str(tmp_path / "demo")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "tiny random stand-ins" in result.output and "meaningless" in result.output
    corpus = Corpus.open(tmp_path / "demo" / "corpus")
    captions = corpus.table("captions")
    assert set(captions["lang"]) == {"en", "de", "fr", "cs"}
    human = captions.filter((pl.col("lang") != "en") & (pl.col("origin") == "human"))
    assert human["split"].unique().sort().to_list() == ["test", "val"]
    assert corpus.failures().height == 0
    assert (tmp_path / "demo" / "export" / "nrccr" / "TextData" / "toytest_de.caption.txt").exists()
    card = (tmp_path / "demo" / "corpus" / "README.md").read_text()
    assert card.startswith("---\nlanguage:") and "config_name: captions" in card
    again = CliRunner().invoke(app, ["demo", str(tmp_path / "demo")])
    assert again.exit_code == 2 and "not empty" in again.output
