"""ARCHITECTURE.md's promise: a new stage is one module plus one table entry.

The stage below lives in this test file and nowhere else. One line puts it in the stage table;
from there it has a command (every config field an option with its help and default, runner
options, resume, the manifest record) and a recipe step kind, with nothing else written for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from ccr.commands.stages import add_stage_commands
from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.stages import table
from ccr.stages.runner import BatchResult, Plan, Stage, table_chunks


@dataclass
class WordsConfig:
    minimum: int = option(1, "count only words at least this long")


def plan(corpus: Corpus, cfg: WordsConfig) -> Plan:
    def english() -> pl.LazyFrame:
        return corpus.scan("captions", with_side_tables=False).filter(pl.col("lang") == "en")

    return Plan(input_table="captions", chunks=table_chunks(english, "caption_id"),
                total=lambda: english().select(pl.len()).collect().item(), id_of=lambda r: r["caption_id"])


def process(batch, state, cfg: WordsConfig) -> BatchResult:
    counts = [{"caption_id": r["caption_id"], "words": sum(len(w) >= cfg.minimum for w in r["text"].split())}
              for r in batch]
    return BatchResult(rows={"captions.words": counts})


STAGE = Stage(name="words", version="1", config=WordsConfig, plan=plan, setup=lambda corpus, cfg, plan: None,
              process=process, help="count the words of every English caption", batch_size=16,
              needs=frozenset({"captions"}), provides={"words": "word counts"})


@pytest.fixture
def words_stage(monkeypatch):
    monkeypatch.setitem(table.STAGES, "words", f"{__name__}:STAGE")  # the one table entry


def test_a_stage_from_one_module_and_one_table_entry_gets_a_command(words_stage, toy_corpus):
    app = typer.Typer()
    app.command("info")(lambda: None)  # a second command keeps typer from treating `words` as the app
    add_stage_commands(app, {}, ["words"])
    runner = CliRunner()
    shown = runner.invoke(app, ["words", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "count only words at least this long" in shown.output and "--minimum" in shown.output
    assert "--num-shards" in shown.output and "--batch-size" in shown.output

    result = runner.invoke(app, ["words", str(toy_corpus), "--minimum", "4"])
    assert result.exit_code == 0, result.output
    corpus = Corpus.open(toy_corpus)
    english = corpus.table("captions").filter(pl.col("lang") == "en")
    counted = corpus.table("captions.words")
    assert counted.height == english.height > 0
    expected = {r["caption_id"]: sum(len(w) >= 4 for w in r["text"].split()) for r in english.iter_rows(named=True)}
    assert dict(zip(counted["caption_id"], counted["words"], strict=True)) == expected
    assert [r["stage"] for r in corpus.runs()][-1] == "words"

    again = runner.invoke(app, ["words", str(toy_corpus), "--minimum", "4"])
    assert again.exit_code == 0 and "0 rows in" in again.output  # resumed: nothing owed


def test_a_stage_from_one_table_entry_is_a_recipe_step(words_stage, toy_source, tmp_path):
    from ccr.pipeline.orchestrate import run_pipeline
    from ccr.pipeline.recipe import load_recipe

    recipe = tmp_path / "words.toml"
    recipe.write_text(f'[pipeline]\ndata_root = "{toy_source}"\nwork_dir = "{tmp_path / "work"}"\nprogress = false\n\n'
                      '[[step]]\nstage = "ingest"\nformat = "jsonl"\nsrc = "captions.jsonl"\n\n'
                      '[[step]]\nstage = "words"\nminimum = 3\n')
    ended = run_pipeline(load_recipe(recipe), log=lambda _: None)
    assert [s.state for s in ended] == ["ran", "ran"]
    assert Corpus.open(tmp_path / "work" / "corpus").table("captions.words").height > 0

    backwards = tmp_path / "backwards.toml"
    backwards.write_text(recipe.read_text().replace(str(tmp_path / "work"), str(tmp_path / "fresh")).replace('stage = "ingest"\nformat = "jsonl"\nsrc = "captions.jsonl"',
                                                    'stage = "words"').replace('stage = "words"\nminimum = 3',
                                                                               'stage = "ingest"\nformat = "jsonl"\n'
                                                                               'src = "captions.jsonl"'))
    with pytest.raises(CcrError, match="needs captions"):  # the order check reads the entry's needs
        load_recipe(backwards)

