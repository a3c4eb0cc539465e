"""The counts ``ccr info`` shows come from commit markers (``ccr.corpus.counts``); after every
commit of a multi-stage run, a compaction and a ``--force``, they equal a recount of the tables,
and on corpora whose markers predate stored counts too."""

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus import counts
from ccr.corpus.corpus import Corpus
from ccr.corpus.info import caption_counts, media_counts

FIXTURES = Path(__file__).parents[1] / "fixtures"
TRANSLATE = ["--models", "random", "--max-length", "16", "--device", "cpu", "--compute-type", "int8"]


def assert_counts_recounted(root: Path) -> None:
    corpus = Corpus.open(root)
    for table, shown in (("captions", caption_counts(corpus)), ("media", media_counts(corpus))):
        keys = list(counts.GROUPS[table])
        rows = corpus.table(table, with_side_tables=False)
        recount = (rows.select([pl.col(k) if k in rows.columns else pl.lit(None, pl.String).alias(k) for k in keys])
                   .group_by(keys).agg(pl.len().cast(pl.Int64).alias(table)).sort(keys, nulls_last=False))
        assert shown.equals(recount), (table, shown, recount)


def ccr(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def shown_counts(root: Path) -> str:
    """The media and caption tables ``ccr info`` prints."""
    return ccr("info", str(root)).split("stage history")[0]


def test_counts_equal_a_recount_after_every_commit(toy_source, tmp_path, monkeypatch):
    commit = Corpus.commit
    checked = []

    def checking(self: Corpus, record, **kw) -> None:
        commit(self, record, **kw)
        assert_counts_recounted(self.root)
        checked.append(record.stage)

    monkeypatch.setattr(Corpus, "commit", checking)
    corpus, noisy = tmp_path / "c", tmp_path / "noisy"
    ccr("ingest", str(corpus), str(toy_source / "captions.jsonl"), "--format", "jsonl")
    ccr("translate", str(corpus), "--lang", "de", "--limit", "10", *TRANSLATE)
    ccr("translate", str(corpus), "--lang", "de", *TRANSLATE)  # a second commit of one fingerprint
    ccr("select", str(corpus), "--by", "mt_logprob", "--top", "50")
    ccr("noise", "inject", str(corpus), "--out", str(noisy))
    assert {"ingest", "translate", "select", "noise"} <= set(checked)
    before = shown_counts(corpus)
    assert "compact translate: 2 commits merged into 1" in ccr("compact", str(corpus))
    assert_counts_recounted(corpus)
    assert shown_counts(corpus) == before
    ccr("translate", str(corpus), "--lang", "de", "--force", *TRANSLATE)
    assert shown_counts(corpus) == before
    assert_counts_recounted(noisy)


@pytest.mark.parametrize("fixture", ["legacy", "pre-reorg"])
def test_markers_without_counts_are_recounted(fixture, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURES / fixture / "corpus", root)
    assert not any(c.counts for c in Corpus.open(root).commits())
    assert_counts_recounted(root)
