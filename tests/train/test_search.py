"""``ccr search`` and ``load(RUN).search``: the same top K both ways, the ranking a brute force gives, a
gallery embedded once and kept until what it was made of changes, and one line for each mistake.

The run is the session's trained baseline on the synthetic corpus (``trained_run``), copied per test
because searches write their cache into it. The image queries use the synthetic corpus drawn as
pictures, with tiny CLIP features from ``ccr features`` (and a run on raw pixels): a gallery image
given as a file must land on itself, which tests that the query went through the same extractor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from ccr.cli import app
from ccr.corpus.corpus import Commit, Corpus
from ccr.errors import CcrError
from ccr.testing.synthetic import FEATURES
from ccr.train import load
from ccr.train.run import checkpoint as ckpt

QUIET = {"log": lambda _: None}


@pytest.fixture
def run(trained_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def _human(corpus: Path, split: str, lang: str) -> pl.DataFrame:
    caps = Corpus.open(corpus).table("captions")
    return caps.filter((pl.col("split") == split) & (pl.col("lang") == lang) & (pl.col("origin") == "human")
                       ).sort("caption_id")


def _entries(run: Path) -> list[Path]:
    return sorted((run / "search-cache").glob("*/embeddings.npy"))


def test_the_command_prints_what_python_returns(run):
    expected = load(run, **QUIET).search("Hund mit Katze", top=4, **QUIET).to_dict()
    result = CliRunner().invoke(app, ["search", str(run), "Hund mit Katze", "--top", "4", "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    scores = [hit.pop("score") for hit in got["hits"]]  # the command embeds the query on any device it finds
    assert scores == pytest.approx([hit.pop("score") for hit in expected["hits"]], abs=1e-4)
    assert got == expected | {"cached": True}
    media = load(run, **QUIET).search(media_id=expected["hits"][0]["media_id"], top=3, **QUIET).to_dict()
    result = CliRunner().invoke(app, ["search", str(run), "--media-id", media["query"], "--top", "3"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert all(hit["caption_id"] in result.stdout and hit["captions"][0] in result.stdout for hit in media["hits"])
    assert "search: media query against 40 test captions" in result.output


def test_results_agree_with_a_brute_force_ranking(run, synth_corpus):
    model = load(run, **QUIET)
    captioned = sorted(set(_human(synth_corpus, "test", "de")["media_id"]))
    scores = model.encode_media(captioned) @ model.encode_text(["Hund mit Katze"], lang="de")[0]
    best = np.argsort(-scores, kind="stable")[:5]
    got = model.search("Hund mit Katze", top=5, **QUIET)
    assert (got.size, got.gallery, got.lang) == (len(captioned), "captioned", "de")
    assert [h.media_id for h in got.hits] == [captioned[i] for i in best]
    np.testing.assert_allclose([h.score for h in got.hits], scores[best], atol=1e-5)

    every = Corpus.open(synth_corpus).table("media").filter(pl.col("split") == "val")["media_id"].sort().to_list()
    scores = model.encode_media(every) @ model.encode_text(["dog and cat"], lang="en")[0]
    got = model.search("dog and cat", lang="en", split="val", gallery="split", top=3, **QUIET)
    assert [h.media_id for h in got.hits] == [every[i] for i in np.argsort(-scores, kind="stable")[:3]]
    assert all(h.captions and all(" and " in c or " of " in c for c in h.captions) for h in got.hits)  # English

    captions = _human(synth_corpus, "test", "de")
    item = captioned[3]
    scores = model.encode_text(captions["text"].to_list(), lang="de") @ model.encode_media([item])[0]
    best = np.argsort(-scores, kind="stable")[:5]
    got = model.search(media_id=item, top=5, **QUIET)
    assert [h.caption_id for h in got.hits] == [captions["caption_id"][int(i)] for i in best]
    assert [h.captions for h in got.hits] == [[captions["text"][int(i)]] for i in best]
    np.testing.assert_allclose([h.score for h in got.hits], scores[best], atol=1e-5)


def _commit(corpus: Path, table: str, stage: str, rows: list[dict]) -> None:
    opened = Corpus.open(corpus)
    path = opened.shard_path(table, stage, "f0", "0")
    opened.write_shard(table, rows, path)
    opened.commit(Commit(stage=stage, fingerprint="f0", key="0", files={table: str(path.relative_to(corpus))},
                         rows={table: len(rows)}))


def test_the_gallery_is_embedded_once_and_kept_until_what_it_was_made_of_changes(run, synth_corpus, tmp_path):
    corpus = Path(shutil.copytree(synth_corpus, tmp_path / "corpus"))
    first = load(run, corpus=corpus, **QUIET).search("Hund", top=3, **QUIET)
    [entry] = _entries(run)
    made = entry.stat()
    assert not first.cached and np.load(entry, mmap_mode="r").shape == (40, 64)

    _commit(corpus, "descriptions", "unrelated", [{"description_id": "d0", "media_id": first.hits[0].media_id,
                                                   "model": "m", "prompt_id": "p", "text": "a description"}])
    again = load(run, corpus=corpus, **QUIET).search("Hund", top=3, **QUIET)
    assert again.cached and again.hits == first.hits
    assert _entries(run) == [entry] and (entry.stat().st_mtime_ns, entry.stat().st_ino) == (made.st_mtime_ns,
                                                                                           made.st_ino)

    _commit(corpus, f"features/{FEATURES}", "refeature", [{"media_id": first.hits[0].media_id,
                                                           "features": np.zeros((1, 32), np.float32)}])
    assert not load(run, corpus=corpus, **QUIET).search("Hund", top=3, **QUIET).cached
    assert len(_entries(run)) == 2

    state = ckpt.load(run / "checkpoints" / "best.pt")
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = state["model"][name] + 0.5
    ckpt.save(run / "checkpoints" / "best.pt", state)
    assert not load(run, corpus=corpus, **QUIET).search("Hund", top=3, **QUIET).cached
    assert len(_entries(run)) == 1 and entry not in _entries(run)  # the old checkpoint's entries are gone


def test_a_checkpoint_replaced_after_loading_is_refused(run):
    model = load(run, **QUIET)
    best = run / "checkpoints" / "best.pt"
    ckpt.save(best, ckpt.load(best))
    with pytest.raises(CcrError, match="replaced after this model read it"):
        model.search("Hund", **QUIET)


def test_bad_input_is_one_line_each(run, synth_corpus, tmp_path, cli_error):
    cli_error(["search", run, "Hund", "--lang", "fr"], "--lang fr", "en, de")
    cli_error(["search", run, "--media-id", "nope"], "no media item 'nope'")
    cli_error(["search", run, "--image", tmp_path / "missing.png"], "no image file at", "missing.png")
    cli_error(["search", run, "Hund", "--media-id", "s00000"], "give one query")
    cli_error(["search", run, "Hund", "--split", "dev"], "no dev split", "test, train, val")
    picture = tmp_path / "picture.png"
    Image.new("RGB", (16, 16), "red").save(picture)
    cli_error(["search", run, "--image", picture], f"features/{FEATURES} were not made by ccr features")

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "run.json", bare / "run.json")
    cli_error(["search", bare, "Hund"], "no checkpoint at", "best.pt")

    corpus = Path(shutil.copytree(synth_corpus, tmp_path / "corpus"))
    Corpus.open(corpus).drop_stage("synthetic")
    (corpus / "features" / FEATURES / "meta.json").unlink()
    cli_error(["search", run, "Hund", "--corpus", corpus], f"no features named '{FEATURES}'", "ccr features")


@pytest.fixture(scope="module")
def picture_runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A small picture corpus with tiny CLIP features, and one-epoch runs on those features and on raw pixels."""
    from train_helpers import sets

    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run as run_stage
    from ccr.testing.synthetic import write_synthetic_corpus
    from ccr.train.run.loop import train

    root = tmp_path_factory.mktemp("pictures")
    corpus = write_synthetic_corpus(root, images=True, n_train=60, n_val=10, n_test=20)
    run_stage("features", corpus, overrides={"model": "tiny/clip", "workers": 0}, options=RunOptions(progress=False))
    train(corpus, root / "clip", sets=sets(epochs=1), log=lambda _: None)
    train(corpus, root / "pixels", sets=sets(epochs=1, visual="pixels"), log=lambda _: None)
    return root, root / "clip", root / "pixels"


@pytest.mark.parametrize("kind", ["clip", "pixels"])
def test_an_image_file_is_embedded_as_its_gallery_item_is(picture_runs, kind):
    root, *runs = picture_runs
    model = load(runs[kind == "pixels"], **QUIET)
    item = "s00075"
    path = root / "images" / f"{item}.png"
    got = model.search(image=path, top=3, **QUIET)
    assert (got.kind, got.hits[0].media_id, got.hits[0].path) == ("image", item, str(path))
    assert got.hits[0].score == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(model.encode_media([model.source().read(path, "image")]), model.encode_media([item]),
                               atol=1e-4)
