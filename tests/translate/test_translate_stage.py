import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import sentencepiece as spm
from typer.testing import CliRunner

from ccr import models
from ccr.cli import app
from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions
from ccr.testing.toy_corpus import write_toy_corpus
from ccr.translate import schedule
from ccr.translate.engine import MarianTranslator

sys.path.insert(0, str(Path(__file__).parent))
from translate_helpers import TINY, assert_same_tables, run  # noqa: E402

HUMAN_EN = (pl.col("origin") == "human") & (pl.col("lang") == "en")


def test_every_english_caption_gets_one_mt_row_with_its_signals(translated):
    corpus = Corpus.open(translated)
    captions = corpus.table("captions")
    english = captions.filter(HUMAN_EN)
    mt = captions.filter(pl.col("origin") == "mt")
    model = models.resolve("tiny/marian-en-de")
    assert model.key == "marian-en-de@tiny-v1"
    assert mt.height == english.height > 100
    assert (mt["caption_id"] == mt["parent_id"] + f"|mt:de:{model.key}").all()
    assert (mt["lang"] == "de").all() and (mt["model"] == model.key).all()
    both = mt.join(english, left_on="parent_id", right_on="caption_id", suffix="_en", how="inner")
    assert both.height == mt.height
    assert (both["media_id"] == both["media_id_en"]).all() and (both["split"] == both["split_en"]).all()
    assert (both["mt_logprob"] < 0).all() and both["mt_logprob"].n_unique() > 1
    # len_ratio = source pieces / target pieces; the tiny model always writes max_length pieces
    source = spm.SentencePieceProcessor(model_file=str(model.path / "source.spm"))
    expected = [len(p) / TINY["max_length"] for p in source.encode(both["text_en"].to_list(), out_type=str)]
    assert both["len_ratio"].to_list() == pytest.approx(expected)
    assert not both["is_copy"].any()
    record = corpus.runs()[-1]
    assert record["stage"] == "translate" and record["models"]["en-de"]["revision"] == "tiny-v1"
    assert record["models"]["en-de"]["key"] == model.key and record["models"]["en-de"]["id"] == "tiny/marian-en-de"
    assert run("translate", translated, lang="de").rows_in == 0, "a rerun owes nothing"


def test_several_languages_in_one_run_and_a_later_language_owes_only_its_rows(toy_corpus):
    n = Corpus.open(toy_corpus).table("captions").filter(HUMAN_EN).height
    first = run("translate", toy_corpus, lang="de,fr")
    assert first.rows_in == first.rows_out["captions"] == 2 * n
    val = run("translate", toy_corpus, lang="cs", split="val")
    assert 0 < val.rows_in < n
    later = run("translate", toy_corpus, lang="de,fr,cs")
    assert later.rows_in == n - val.rows_in, "languages and splits select rows; they are not in the fingerprint"
    mt = Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt")
    assert mt.group_by("lang").len().sort("lang").rows() == [("cs", n), ("de", n), ("fr", n)]
    assert mt["caption_id"].n_unique() == mt.height
    with pytest.raises(CcrError, match=rf"{n} rows this translate run would write already exist .* copy of the corpus"):
        run("translate", toy_corpus, lang="de", beam_size=2)


@pytest.mark.parametrize("sort_window", [20_000, 5], ids=["one-window", "six-windows"])
def test_duplicate_captions_are_translated_once(tmp_path, monkeypatch, sort_window):
    monkeypatch.setattr(schedule, "SORT_WINDOW", sort_window)
    texts = ["A red circle.", "A blue square on the left.", "Two green stars.", "A black dog runs."]
    lines = [{"media_id": f"m{i}", "split": "train", "lang": "en", "text": texts[i % 4], "caption_id": f"m{i}#en#0",
              "modality": "image", "path": f"m{i}.png"} for i in range(30)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    ingest("jsonl", tmp_path / "c.jsonl", tmp_path / "corpus", options=RunOptions(progress=False))
    seen: list[str] = []
    real = MarianTranslator.translate
    monkeypatch.setattr(MarianTranslator, "translate",
                        lambda self, batch, decoding: seen.extend(batch) or real(self, batch, decoding))
    run("translate", tmp_path / "corpus", lang="de", options=RunOptions(batch_size=4, chunk_rows=8, progress=False))
    assert sorted(seen) == sorted(texts), "each distinct text once, although runs of duplicates cross batches " \
                                          "and the schedule sorts in windows (identical texts share one)"
    mt = Corpus.open(tmp_path / "corpus").table("captions").filter(pl.col("origin") == "mt")
    assert mt.height == 30
    source_text = {line["caption_id"]: line["text"] for line in lines}
    per_source = mt.with_columns(source=pl.col("parent_id").replace_strict(source_text)).group_by("source")
    assert per_source.agg(pl.col("text").n_unique())["text"].to_list() == [1] * 4


def test_limit_counts_rows_across_sort_windows(toy_corpus, monkeypatch):
    monkeypatch.setattr(schedule, "SORT_WINDOW", 10)
    n = Corpus.open(toy_corpus).table("captions").filter(HUMAN_EN).height
    first = run("translate", toy_corpus, lang="de", options=RunOptions(limit=25, progress=False))
    assert first.rows_in == first.rows_out["captions"] == 25
    assert run("translate", toy_corpus, lang="de").rows_in == n - 25


def test_overlong_captions_are_failure_rows_and_retry_after_raising_the_limit(toy_corpus):
    english = Corpus.open(toy_corpus).table("captions").filter(HUMAN_EN)
    source = spm.SentencePieceProcessor(model_file=str(models.resolve("tiny/marian-en-de").path / "source.spm"))
    lengths = [len(p) for p in source.encode(english["text"].to_list(), out_type=str)]
    limit = sorted(lengths)[len(lengths) // 2]
    too_long = sum(n > limit for n in lengths)
    first = run("translate", toy_corpus, lang="de", max_input_tokens=limit)
    assert first.rows_failed == too_long > 0 and first.rows_out["captions"] == english.height - too_long
    [(kind, n)] = first.failure_reasons.items()  # one line in the run summary, with the fix
    assert n == too_long and kind.startswith("caption too long: N tokens") and "--retry-failed" in kind
    failures = Corpus.open(toy_corpus).failures()
    assert failures.height == too_long and (failures["stage"] == "translate").all()
    assert failures["row_id"].str.ends_with("|mt:de:marian-en-de@tiny-v1").all()
    assert failures["reason"].str.contains(f"over max_input_tokens={limit} .*--retry-failed").all()
    assert run("translate", toy_corpus, lang="de").rows_in == 0, "failed rows wait for --retry-failed"
    retried = run("translate", toy_corpus, lang="de", options=RunOptions(retry_failed=True, progress=False))
    assert retried.rows_in == too_long and retried.rows_failed == 0
    assert Corpus.open(toy_corpus).failures().height == 0
    assert Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt").height == english.height


def test_batch_size_chunks_threads_and_sort_windows_change_neither_outputs_nor_fingerprint(toy_corpus, tmp_path,
                                                                                          monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(toy_corpus, other)
    run("translate", toy_corpus, lang="de")
    monkeypatch.setattr(schedule, "SORT_WINDOW", 10)
    run("translate", other, lang="de", inter_threads=1, intra_threads=1, max_batch_tokens=64,
        options=RunOptions(batch_size=3, chunk_rows=7, progress=False))
    assert_same_tables(toy_corpus, other)
    assert Corpus.open(toy_corpus).runs()[-1]["fingerprint"] == Corpus.open(other).runs()[-1]["fingerprint"]


_CHILD = """
import sys
from ccr.stages import table as stages
from ccr.stages.runner import RunOptions
stages.run("translate", sys.argv[1], overrides={"tiny": True, "max_length": 16, "beam_size": 4, "lang": "de,fr"},
           options=RunOptions(batch_size=4, chunk_rows=8, progress=False))
"""


def test_sigkill_three_times_then_resume_equals_an_uninterrupted_run(tmp_path):
    source = write_toy_corpus(tmp_path / "source", n_train=100, n_val=0, n_test=0)
    killed = tmp_path / "killed"
    ingest("jsonl", source / "captions.jsonl", killed, options=RunOptions(progress=False))
    clean = tmp_path / "clean"
    shutil.copytree(killed, clean)
    run("translate", clean, lang="de,fr", max_length=16, beam_size=4)
    markers = killed / ".state" / "commits" / "translate"
    rng = random.Random(3)
    for _ in range(3):
        before = len(list(markers.rglob("*.json")))
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(killed)], stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline and len(list(markers.rglob("*.json"))) <= before:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # mid-batch, mid-write or mid-commit
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = sum(len(c.done) for c in Corpus.open(killed).commits("translate", with_ids=True))
    final = run("translate", killed, lang="de,fr", max_length=16, beam_size=4,
                options=RunOptions(batch_size=4, chunk_rows=8, progress=False))
    assert done >= 3 * 8 and final.rows_in > 0, "every kill landed after some progress and before the end"
    assert_same_tables(clean, killed)
    assert not list(killed.rglob(".tmp-*"))


def test_ray_engine_gives_the_same_rows_as_the_local_one(toy_corpus, tmp_path, ray_local):
    local = tmp_path / "local"
    shutil.copytree(toy_corpus, local)
    run("translate", local, lang="de")
    summary = run("translate", toy_corpus, lang="de", options=RunOptions(
        engine="ray", ray_concurrency=2, ray_window_rows=64, batch_size=32, chunk_rows=32, progress=False))
    assert summary.rows_out["captions"] == summary.rows_in > 0
    assert_same_tables(local, toy_corpus)


def test_cli_translates_and_user_errors_are_one_line(toy_corpus):
    result = CliRunner().invoke(app, ["translate", str(toy_corpus), "--lang", "fr", "--models", "random", "--beam-size", "1",
                                      "--max-length", "6"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "translate: 144 rows in, 144 captions, 0 failed" in result.output
    mt = Corpus.open(toy_corpus).table("captions").filter(pl.col("origin") == "mt")
    assert mt.height == 144 and (mt["lang"] == "fr").all()
    for args, message in [(["--lang", "xh"], "supported pairs: en-de"), (["--lang", "cz"], "did you mean 'cs'"),
                          (["--lang", "de", "--compute-type", "float16"], "use auto or one of"),
                          (["--lang", "de", "--model", str(toy_corpus / "nowhere")], "does not exist")]:
        result = CliRunner().invoke(app, ["translate", str(toy_corpus), "--models", "random", *args], env={"COLUMNS": "300"})
        assert result.exit_code == 2 and "Traceback" not in result.output and message in result.output, result.output
