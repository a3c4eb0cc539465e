"""``ccr export --format hf`` and ``ccr push``.

Design: the report tests' scored corpus (a score side table on the MT rows, descriptions, slots, a
failure row, images and videos, train/val/test), with a named test set (``test_2016_flickr``) and
a feature set of ``[T, D]`` float16 arrays (T = 3 for videos) added, exported once. ``datasets``
reads the export offline; its rows per split must equal ``ccr info``'s counts and its tables the
corpus's tables, every column, sorted by id.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ccr.corpus.corpus import Corpus
from ccr.corpus.feature_store import write_meta
from ccr.corpus.info import caption_counts, media_counts
from ccr.corpus.schema import ID_COLUMN
from ccr.errors import CcrError
from ccr.formats.export import export
from ccr.formats.export_hf import MANIFEST_COPY, hf_split
from ccr.formats.hf_shards import write_splits
from ccr.formats.hub import push

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
from scored_corpus import commit_rows, write_scored_corpus

FEATURES = "toyfeat"
NAMED = "test_2016_flickr"


@pytest.fixture(scope="module")
def exported(build_once, tmp_path_factory) -> tuple[Path, Path]:
    """(corpus, export) of the scored corpus with a named test set and a feature set."""
    root = tmp_path_factory.mktemp("hf")
    corpus_dir = root / "corpus"
    shutil.copytree(build_once("report-scored", write_scored_corpus).corpus, corpus_dir)
    corpus = Corpus.open(corpus_dir)
    commit_rows(corpus, "media", "extra-media", [
        {"media_id": "flickr0", "split": NAMED, "modality": "image", "path": "images/flickr0.png"}])
    commit_rows(corpus, "captions", "extra-captions", [
        {"caption_id": "flickr0#en#0", "media_id": "flickr0", "split": NAMED, "lang": "en", "text": "a dog",
         "origin": "human"}])
    rng = np.random.default_rng(0)
    media = corpus.table("media")
    commit_rows(corpus, f"features/{FEATURES}", "extra-features", [
        {"media_id": m, "features": rng.standard_normal((3 if kind == "video" else 1, 4)).astype(np.float16)}
        for m, kind in zip(media["media_id"], media["modality"])])
    write_meta(corpus, FEATURES, {"model": "test", "revision": "r1", "dim": 4, "dtype": "float16", "variant": "frames"})
    export(corpus_dir, root / "hub", fmt="hf", features=[FEATURES])
    return corpus_dir, root / "hub"


def _load(out: Path, config: str, cache: Path, monkeypatch) -> dict:
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return datasets.load_dataset(str(out), config, cache_dir=str(cache))


def _frame(dataset_dict: dict) -> pl.DataFrame:
    return pl.concat([pl.from_arrow(split.data.table) for split in dataset_dict.values()])


def test_every_table_loads_with_the_corpus_splits_and_columns(exported, tmp_path, monkeypatch):
    corpus_dir, out = exported
    corpus = Corpus.open(corpus_dir)
    for table, counts in (("captions", caption_counts(corpus)), ("media", media_counts(corpus))):
        loaded = _load(out, table, tmp_path, monkeypatch)
        per_split = counts.group_by("split").agg(pl.col(table).sum())
        assert {hf_split(s): n for s, n in per_split.iter_rows()} == {k: v.num_rows for k, v in loaded.items()}
    assert list(_load(out, "captions", tmp_path, monkeypatch)) == ["train", "validation", "test", NAMED]
    split_of = dict(corpus.table("media").select("media_id", "split").iter_rows())
    for table in ("media", "captions", "descriptions", "slots", "failures"):
        got = _frame(_load(out, table, tmp_path, monkeypatch)).sort(ID_COLUMN[table])
        if table in ("descriptions", "slots"):
            assert got["split"].to_list() == [split_of[m] for m in got["media_id"]]
            got = got.drop("split")
        want = corpus.table(table).sort(ID_COLUMN[table])
        assert got.equals(want), table
    assert {"rt_sim", "xl_sim", "xm_sim", "dcot_conf", "keep", "weight", "noise_type"} <= set(
        _load(out, "captions", tmp_path, monkeypatch)["train"].column_names)
    assert list(_load(out, "failures", tmp_path, monkeypatch)) == ["train"]


def test_features_load_as_t_by_d_arrays_with_their_meta(exported, tmp_path, monkeypatch):
    corpus_dir, out = exported
    store = Corpus.open(corpus_dir).features(FEATURES)
    loaded = _load(out, f"features-{FEATURES}", tmp_path, monkeypatch)
    rows = [row for split in loaded.values() for row in split.with_format("numpy")]
    assert sorted(r["media_id"] for r in rows) == store.ids()
    for row in rows:
        np.testing.assert_array_equal(row["features"].astype(np.float16), store.get(row["media_id"]))
    assert json.loads((out / "features" / FEATURES / "meta.json").read_text()) == store.meta


def test_card_declares_configs_and_holds_provenance_and_statistics(exported):
    corpus_dir, out = exported
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "dataset_info:" in card and "default: true" in card
    assert f"path: captions/{NAMED}-*" in card and "path: captions/validation-*" in card
    assert "## Provenance" in card and "embedder: tiny/minilm@tiny-v1" in card and "## Captions" in card
    assert (out / MANIFEST_COPY).read_bytes() == (corpus_dir / "manifest.json").read_bytes()


def test_an_export_replaces_an_earlier_one_and_its_card_counts_what_it_holds(exported, tmp_path):
    """A redone export (a recipe step, an interrupted run) replaces the old one whole; a filtered
    export's card names only the languages and splits it holds; other non-empty folders are refused."""
    corpus_dir, out = exported
    again = tmp_path / "hub"
    shutil.copytree(out, again)
    (again / "captions" / "stale.parquet").write_bytes(b"left by an interrupted export")
    export(corpus_dir, again, fmt="hf", langs="de", splits="test")
    assert not (again / "captions" / "stale.parquet").exists() and not list(tmp_path.glob(".hub.*"))
    card = (again / "README.md").read_text()
    yaml = card.split("---")[1]
    assert "- de" in yaml and "- cs" not in yaml and "- fr" not in yaml
    captions = card.split("## Captions")[1].split("##")[0]
    assert "| test | de |" in captions and "| train |" not in captions and "| cs |" not in captions
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CcrError, match="not empty and holds no Hub export to replace"):
        export(corpus_dir, tmp_path / "mine", fmt="hf")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_shards_roll_over_by_size_and_keep_every_row(tmp_path):
    schema = pa.schema([("id", pa.string()), ("x", pa.float64())])
    parts = [("train", pa.table({"id": [f"{b}-{i}" for i in range(100)], "x": np.arange(100.0)}, schema=schema))
             for b in range(10)]
    written = write_splits(parts, tmp_path, schema, file_bytes=4_000, row_group_bytes=1_500)
    files = written.splits["train"].files
    assert len(files) > 1 and files[0].name == f"train-00000-of-{len(files):05d}.parquet"
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == written.splits["train"].rows == 1000
    assert pq.ParquetFile(files[0]).metadata.num_row_groups > 1


def test_push_offline_fails_at_once_in_one_line(exported, cli_error, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cli_error(["push", exported[1], "--repo", "alice/toy"], "Hub cannot be reached", "HF_HUB_OFFLINE")


def test_push_refuses_what_is_no_export(exported, cli_error, tmp_path):
    corpus_dir, out = exported
    cli_error(["push", tmp_path / "nope", "--repo", "alice/toy"], "no export at", "ccr export CORPUS")
    cli_error(["push", corpus_dir, "--repo", "alice/toy"], "is a corpus, not a Hub export")
    (tmp_path / "empty").mkdir()
    cli_error(["push", tmp_path / "empty", "--repo", "alice/toy"], "is not a Hub export")
    cli_error(["push", out, "--repo", "toy"], "not a valid OWNER/NAME")
    cli_error(["push", out, "--repo", "alice/a..b"], "not a valid OWNER/NAME")  # the pattern passes, the Hub refuses


def test_push_unreachable_hub_fails_in_one_line(exported, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    with socket.socket() as s:  # a port nobody listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(hub, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with pytest.raises(CcrError, match="cannot be reached at"):
        push(exported[1], "alice/toy")


def test_push_makes_a_dataset_repo_and_uploads_the_folder(exported, monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants as hub

    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo, **kw: calls.append(("create", repo, kw)))
    upload = "upload_large_folder" if hasattr(huggingface_hub.HfApi, "upload_large_folder") else "upload_folder"
    monkeypatch.setattr(huggingface_hub.HfApi, upload, lambda self, **kw: calls.append(("upload", kw)))
    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setattr(hub, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        url = push(exported[1], "alice/toy", private=True, token="t")
    assert url.endswith("/datasets/alice/toy")
    assert calls[0] == ("create", "alice/toy", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls[1][0] == "upload" and calls[1][1]["repo_id"] == "alice/toy" and calls[1][1]["repo_type"] == "dataset"
    assert Path(calls[1][1]["folder_path"]) == exported[1]


def test_a_connection_lost_during_the_upload_is_one_line(exported, monkeypatch):
    """The HTTP client's own errors (not the hub's HTTP errors) end as one line too."""
    import huggingface_hub
    import huggingface_hub.constants as hub

    class Dropped(Exception):  # stands for the client's transport error (httpx or requests by version)
        pass

    def drop(self, repo, **kw):
        raise Dropped("Server disconnected without sending a response")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", drop)
    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setattr(hub, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        with pytest.raises(CcrError, match="refused the upload to alice/toy: Server disconnected"):
            push(exported[1], "alice/toy")
