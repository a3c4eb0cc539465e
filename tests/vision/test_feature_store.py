import numpy as np
import pytest

from ccr.errors import CcrError
from ccr.pipeline.corpus import Commit, Corpus
from ccr.vision.feature_store import write_meta


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
