"""``ccr caption`` end to end with the tiny LLaVA: rows, ids, video frames, failures, batching, resume, Ray."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from ccr import models
from ccr.caption.describe import Describer, Request
from ccr.caption.prompts import PROMPTS
from ccr.caption.stage import STAGE, CaptionConfig
from ccr.corpus.corpus import Corpus
from ccr.corpus.views import read_descriptions
from ccr.errors import CcrError
from ccr.stages.media import Sampling, load_visual
from ccr.stages.runner import RunOptions, run_stage

sys.path.insert(0, str(Path(__file__).parents[1] / "vision"))
pytest.register_assert_rewrite("media_corpus")
from media_corpus import BROKEN, kill_mid_run  # noqa: E402

pytest_plugins = ["media_corpus"]  # its corpus_dir fixture: a private copy of a corpus of real media

TINY = "tiny/llava"
KEY = "llava@tiny-v1"


def run(corpus_dir: Path, batch_size: int = 4, engine: str = "local", **cfg):
    config = CaptionConfig(**{"mllm": TINY, "max_new_tokens": 12, **cfg})
    return run_stage(Corpus.open(corpus_dir), STAGE, config,
                     RunOptions(batch_size=batch_size, engine=engine, ray_concurrency=2, progress=False))


def table(corpus_dir: Path) -> pl.DataFrame:
    return read_descriptions(Corpus.open(corpus_dir)).collect().sort("description_id")


def test_every_item_and_prompt_gets_a_description_and_broken_media_fail(corpus_dir):
    summary = run(corpus_dir, prompts=["detailed", "multiview"])
    corpus = Corpus.open(corpus_dir)
    media = corpus.table("media")
    good = sorted(set(media["media_id"]) - set(BROKEN))
    rows = table(corpus_dir)
    assert rows.height == summary.rows_out["descriptions"] == 5 * len(good)
    assert set(rows["media_id"]) == set(good) and set(rows["model"]) == {KEY}
    assert set(rows["prompt_id"]) == {"detailed", "objects", "actions", "scene", "attributes"}
    assert (rows["description_id"] == rows["media_id"] + "|" + rows["prompt_id"] + "|" + KEY).all()
    failures = corpus.failures()
    assert set(failures["row_id"]) == set(BROKEN) and set(failures["stage"]) == {"caption"}
    run_record = corpus.runs()[-1]
    assert run_record["models"]["mllm"]["key"] == KEY and run_record["config"]["prompts"] == ["detailed", "multiview"]

    # a video reaches the model as its 4 sampled frames with the video wording of the prompt
    describer = Describer(models.resolve(TINY))
    for media_id in ("v0001", "m0000"):
        row = media.filter(pl.col("media_id") == media_id).row(0, named=True)
        visual = load_visual(corpus.resolve_media(row["path"]), row["modality"], Sampling(frames=4))
        expected = describer.describe([Request(visual, PROMPTS["scene"].text(visual.is_video))], max_new_tokens=12)
        got = rows.filter(pl.col("description_id") == f"{media_id}|scene|{KEY}")["text"].item()
        assert got == expected[0]


def test_batched_and_unbatched_runs_write_the_same_descriptions(corpus_dir, tmp_path):
    single = tmp_path / "single"
    shutil.copytree(corpus_dir, single)
    run(corpus_dir, batch_size=8, prompts=["detailed", "objects"])
    run(single, batch_size=1, prompts=["detailed", "objects"])
    assert table(corpus_dir).equals(table(single))
    assert run(corpus_dir, prompts=["detailed", "objects"]).rows_in == 0, "a rerun owes nothing"


def test_a_later_run_with_other_settings_supersedes_the_same_ids(corpus_dir):
    run(corpus_dir, max_new_tokens=2, modality="image")
    short = table(corpus_dir)
    run(corpus_dir, max_new_tokens=12, modality="image")
    longer = table(corpus_dir)
    assert longer["description_id"].to_list() == short["description_id"].to_list(), "one row per id"
    assert Corpus.open(corpus_dir).count("descriptions") == 2 * short.height, "the table itself is append-only"
    assert (longer["text"].str.len_chars() >= short["text"].str.len_chars()).all()
    assert (longer["text"] != short["text"]).any()


@pytest.mark.parametrize("cfg, message", [
    ({"prompts": ["caption"]}, "unknown prompt 'caption'"),
    ({"max_new_tokens": 0}, "max_new_tokens, num_beams and frames must be at least 1"),
    ({"mllm": "tiny/minilm"}, "tiny/minilm is a bert model; ccr caption needs a LLaVA-family model"),
])
def test_bad_options_fail_before_any_work(corpus_dir, cfg, message):
    with pytest.raises(CcrError, match=message):
        run(corpus_dir, **cfg)
    assert not Corpus.open(corpus_dir).files("descriptions")


def test_sigkill_then_resume_equals_an_uninterrupted_run(corpus_dir, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(corpus_dir, clean)
    overrides = {"mllm": TINY, "max_new_tokens": 24}
    run(clean, **overrides)
    before = kill_mid_run("caption", corpus_dir, overrides)
    resumed = run(corpus_dir, **overrides)
    total = Corpus.open(clean).count("media")
    assert 0 < before < total and resumed.rows_in == total - before
    assert table(clean).equals(table(corpus_dir))
    assert Corpus.open(corpus_dir).count("descriptions") == table(clean).height, "nothing duplicated"
    assert set(Corpus.open(corpus_dir).failures()["row_id"]) == set(BROKEN)


def test_ray_engine_writes_what_the_local_engine_writes(corpus_dir, tmp_path, ray_local):
    local = tmp_path / "local"
    shutil.copytree(corpus_dir, local)
    run(local, batch_size=3)
    summary = run(corpus_dir, batch_size=3, engine="ray")
    assert summary.rows_failed == len(BROKEN)
    assert table(local).equals(table(corpus_dir))


def test_decoding_in_worker_processes_writes_the_same_descriptions(corpus_dir, tmp_path):
    inline = tmp_path / "inline"
    shutil.copytree(corpus_dir, inline)
    run(inline, batch_size=3, workers=0)
    summary = run(corpus_dir, batch_size=3, workers=2)  # the next batch decodes while the model generates
    assert summary.rows_failed == len(BROKEN)
    assert table(inline).equals(table(corpus_dir))
    failures = [Corpus.open(d).failures().sort("row_id").select("row_id", "reason") for d in (inline, corpus_dir)]
    assert failures[0].equals(failures[1])
