import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from ccr.cli import app
from ccr.commands.common import console, print_summary
from ccr.corpus.corpus import Commit, Corpus
from ccr.corpus.info import caption_counts, failure_groups, reason_kind
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions, RunSummary, run_stage

sys.path.insert(0, str(Path(__file__).parents[1] / "stages"))
from upper_stage import STAGE, UpperConfig  # noqa: E402

OPTS = dict(batch_size=4, chunk_rows=8, progress=False)


def info(corpus: Path, *args: str):
    result = CliRunner().invoke(app, ["info", str(corpus), *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_info_counts_equal_the_tables(toy_corpus):
    counts = caption_counts(Corpus.open(toy_corpus))
    assert counts["captions"].sum() == Corpus.open(toy_corpus).count("captions")
    row = counts.filter((counts["split"] == "test") & (counts["lang"] == "de")).row(0, named=True)
    assert row["origin"] == "human" and row["captions"] == 12
    output = info(toy_corpus, "--failures")
    assert "stage history" in output and "ingest" in output and "failures: 0" in output


def test_failures_are_grouped_by_reason_with_counts_and_examples(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    stars = sorted(corpus.failures()["row_id"].to_list())
    assert len(stars) > 3
    groups = failure_groups(corpus)
    assert groups.height == 1, "one reason, whatever the ids in its text"
    row = groups.row(0, named=True)
    assert row["reason"] == "ValueError: stars are not allowed" and row["failures"] == len(stars)
    assert row["examples"] == ", ".join(stars[:3])
    output = info(toy_corpus, "--failures")
    assert f"failures: {len(stars)}" in output and stars[0] in output and stars[-1] not in output


def test_reason_kinds_drop_the_values_that_differ_row_by_row():
    assert reason_kind("its media 'a1' failed: file not found: /x/a1.jpg") == "its media '…' failed: file not found: …"
    assert reason_kind("media conflict: media_id 'm' has split 'test' here but 'train' at data/x.jsonl:1") == (
        "media conflict: media_id '…' has split '…' here but '…' at …")
    assert reason_kind('ValueError: no row "x": gone') == "ValueError: no row '…'"
    assert reason_kind("OSError: [Errno 2] No such file or directory: 'a.jpg'") == (
        "OSError: [Errno N] No such file or directory")


def test_reason_kinds_keep_words_and_the_advice_whole():
    """UTF-8 is a word, not a number; the fix at the end of a long reason is what the user needs."""
    assert reason_kind("invalid UTF-8 at byte 17") == "invalid UTF-8 at byte N"
    advice = "caption has {} characters, over max_chars=10000 (raise it with --set max_chars=N)"
    assert reason_kind(advice.format(12001)) == advice.format("N") and len(advice) > 80
    window = "'relevant_windows' holds {}: each window must be [start, end] seconds, 0 <= start <= end"
    kinds = {reason_kind(window.format(w)) for w in ("[5.0, 2.0]", "[nan, 3.0]", "[-1.0, 3.0]")}
    assert kinds == {window.format("[…]")}
    assert reason_kind("its media 'v' failed: 'duration' -3 is not a finite number of seconds >= 0") == (
        "its media '…' failed: 'duration' N is not a finite number of seconds >= 0")


def test_a_failure_whose_id_is_its_place_shows_the_place_once(tmp_path):
    src = tmp_path / "mk.jsonl"
    src.write_text('{"media_id": "a", "path": "a.png", "text": "a dog"}\n{"media_id": \n', encoding="utf-8")
    ingest("jsonl", src, tmp_path / "corpus", options=RunOptions(progress=False))
    (group,) = failure_groups(Corpus.open(tmp_path / "corpus")).to_dicts()
    assert group["examples"] == f"{src}:2"


def test_failures_a_later_run_with_other_settings_did_are_not_outstanding(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    run_stage(corpus, STAGE, UpperConfig(), RunOptions(**OPTS))
    assert corpus.failures().height > 0
    run_stage(corpus, STAGE, UpperConfig(allow_stars=True), RunOptions(**OPTS))
    assert Corpus.open(toy_corpus).failures().height == 0
    assert "failures: 0" in info(toy_corpus)
    assert corpus.failures(outstanding=False).height > 0, "the failure rows themselves stay"


def test_a_failure_after_a_success_is_outstanding_again(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    run_stage(corpus, STAGE, UpperConfig(allow_stars=True), RunOptions(**OPTS))
    run_stage(corpus, STAGE, UpperConfig(suffix="?"), RunOptions(**OPTS))
    assert corpus.failures().height > 0


def test_markup_in_data_prints_as_itself(toy_corpus):
    """A `[/x]` in an id, a language or a reason must not crash rich or vanish."""
    corpus = Corpus.open(toy_corpus)
    path = corpus.shard_path("failures", "odd", "fp", "k")
    row = {"failure_id": "odd:fp:captions:[/x]", "table": "captions", "row_id": "[/x]", "stage": "odd",
           "fingerprint": "fp", "reason": "[bold]lang [/x] unknown", "source": "a[/b].jsonl:3"}
    corpus.write_shard("failures", [row], path)
    corpus.commit(Commit(stage="odd", fingerprint="fp", key="k", files={"failures": str(path.relative_to(corpus.root))}))
    output = info(toy_corpus, "--failures")
    assert "[bold]lang [/x] unknown" in output and "[/x] (a[/b].jsonl:3)" in output
    summary = RunSummary(stage="odd", fingerprint="fp", rows_failed=1, failure_reasons={"[/x] unknown": 1})
    with console.capture() as captured:
        print_summary(summary)
    assert "1 x [/x] unknown" in captured.get()


def test_a_run_record_and_its_markers_agree(toy_corpus):
    corpus = Corpus.open(toy_corpus)
    run_stage(corpus, STAGE, UpperConfig(), RunOptions(limit=8, **OPTS))
    record = corpus.runs()[-1]
    assert record["status"] == "complete" and record["limit"] == 8 and record["rows_in"] == 8
    committed = [c for c in corpus.commits("upper") if c.run == record["id"]]
    assert sum(c.inputs for c in committed) == 8 and {c.table for c in committed} == {"captions"}
    assert pl.DataFrame(Corpus.open(toy_corpus).runs()).height == 2
