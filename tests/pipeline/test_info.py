from typer.testing import CliRunner

from ccr.cli import app
from ccr.pipeline.corpus import Corpus
from ccr.pipeline.info import caption_counts


def test_info_counts_equal_the_tables(toy_corpus):
    counts = caption_counts(Corpus.open(toy_corpus))
    assert counts["captions"].sum() == Corpus.open(toy_corpus).count("captions")
    row = counts.filter((counts["split"] == "test") & (counts["lang"] == "de")).row(0, named=True)
    assert row["origin"] == "human" and row["captions"] == 12
    result = CliRunner().invoke(app, ["info", str(toy_corpus), "--failures"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "stage history" in result.output and "ingest" in result.output and "failures: 0" in result.output
