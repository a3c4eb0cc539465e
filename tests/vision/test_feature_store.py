import numpy as np
import pytest

from ccr.corpus.corpus import Commit, Corpus
from ccr.corpus.feature_store import write_meta
from ccr.errors import CcrError


def _commit(corpus, name, key, rows):
    table = f"features/{name}"
    path = corpus.shard_path(table, "test", "fp", key)
    corpus.write_shard(table, rows, path)
    corpus.commit(Commit(stage="test", fingerprint="fp", key=key, files={table: str(path.relative_to(corpus.root))},
                         rows={table: len(rows)}))


def test_get_returns_t_by_d_arrays_across_shards(tmp_path):
    corpus = Corpus.open(tmp_path / "c", create=True)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 8)).astype(np.float16)
    b = rng.standard_normal(8).astype(np.float16)  # a pooled image: stored as T = 1
    _commit(corpus, "clip", "0", [{"media_id": "vid", "features": a}])
    _commit(corpus, "clip", "1", [{"media_id": "img", "features": b}])
    write_meta(corpus, "clip", {"model": "tiny/clip", "dim": 8, "dtype": "float16", "variant": "frames"})
    store = corpus.features("clip")
    assert store.ids() == ["img", "vid"] and len(store) == 2 and "vid" in store
    np.testing.assert_array_equal(store.get("vid"), a)
    assert store.get("img").shape == (1, 8) and store.get("img").dtype == np.float16
    assert [x.shape for x in store.get_many(["img", "vid"])] == [(1, 8), (5, 8)]
    assert store.meta["model"] == "tiny/clip"
    assert corpus.feature_names() == ["clip"]
    with pytest.raises(KeyError, match="no clip features for media 'nope'"):
        store.get("nope")


def test_uncommitted_shards_are_invisible(tmp_path):
    corpus = Corpus.open(tmp_path / "c", create=True)
    path = corpus.shard_path("features/clip", "test", "fp", "0")
    corpus.write_shard("features/clip", [{"media_id": "x", "features": np.zeros((1, 4), np.float32)}], path)
    write_meta(corpus, "clip", {"dim": 4})
    assert path.exists() and len(corpus.features("clip")) == 0
    assert corpus.remove_orphans("test") == 1 and not path.exists()


def test_missing_feature_set_is_a_clear_error(tmp_path):
    corpus = Corpus.open(tmp_path / "c", create=True)
    with pytest.raises(CcrError, match="no features named 'clip'.*run ccr features"):
        corpus.features("clip").meta


def test_bigfile_export_then_import_round_trips_and_unknown_ids_fail(tmp_path):
    from ccr.formats.bigfile import write_bigfile, write_video2frames
    from ccr.formats.export import export
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run

    src = tmp_path / "v.jsonl"
    src.write_text('{"media_id": "v1", "split": "test", "lang": "en", "text": "a clip", "modality": "video"}\n'
                   '{"media_id": "v2", "split": "test", "lang": "en", "text": "another", "modality": "video"}\n')
    quiet = RunOptions(progress=False)
    ingest("jsonl", src, tmp_path / "corpus", options=quiet)
    feat = tmp_path / "FeatureData" / "i3d"
    frames = np.arange(24, dtype=np.float32).reshape(6, 4)
    write_bigfile(feat, ["v1_0", "v1_1", "v1_2", "v2_0", "v2_1", "v9_0"], frames)
    write_video2frames(feat / "video2frames.txt", {"v1": ["v1_0", "v1_1", "v1_2"], "v2": ["v2_0", "v2_1"], "v9": ["v9_0"]})
    summary = run("import-features", tmp_path / "corpus", overrides={"format": "bigfile", "src": str(feat), "name": "i3d"},
                  options=quiet)
    assert summary.rows_out == {"features/i3d": 2} and summary.rows_failed == 1
    store = Corpus.open(tmp_path / "corpus").features("i3d")
    np.testing.assert_array_equal(store.get("v1"), frames[:3])
    assert store.meta["dim"] == 4 and store.meta["dtype"] == "float32"
    failures = Corpus.open(tmp_path / "corpus").failures()
    assert failures["row_id"].to_list() == ["v9"] and failures["reason"][0].startswith("no media row 'v9'")
    export(tmp_path / "corpus", tmp_path / "out", fmt="nrccr", features=["i3d"])
    back = tmp_path / "out" / "FeatureData" / "i3d"
    assert (back / "feature.bin").read_bytes() == frames[:5].tobytes()


def test_npy_and_npz_imports(tmp_path):
    from ccr.formats.bigfile import write_npy_features, write_npz
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions
    from ccr.stages.table import run

    src = tmp_path / "c.jsonl"
    src.write_text('{"media_id": "a", "split": "train", "lang": "en", "text": "x"}\n'
                   '{"media_id": "b", "split": "train", "lang": "en", "text": "y"}\n')
    quiet = RunOptions(progress=False)
    ingest("jsonl", src, tmp_path / "corpus", options=quiet)
    arr = np.eye(2, 3, dtype=np.float32)
    write_npy_features(tmp_path / "train.npy", tmp_path / "train_id.txt", ["a", "b"], arr)
    run("import-features", tmp_path / "corpus", options=quiet, overrides={
        "format": "npy", "src": str(tmp_path / "train.npy"), "ids": str(tmp_path / "train_id.txt"), "name": "r152",
        "dtype": "float16"})
    store = Corpus.open(tmp_path / "corpus").features("r152")
    assert store.get("b").dtype == np.float16 and store.get("b").tolist() == [[0.0, 1.0, 0.0]]
    write_npz(tmp_path / "clips", "a", np.ones((5, 3), np.float32))
    run("import-features", tmp_path / "corpus", options=quiet,
        overrides={"format": "npz", "src": str(tmp_path / "clips"), "name": "clip-clips2s"})
    assert Corpus.open(tmp_path / "corpus").features("clip-clips2s").get("a").shape == (5, 3)
    with pytest.raises(CcrError, match="--ids ID_FILE is needed"):
        run("import-features", tmp_path / "corpus", options=quiet,
            overrides={"format": "npy", "src": str(tmp_path / "train.npy"), "name": "x"})
