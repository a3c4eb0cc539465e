"""Export: plain tables, and NRCCR files -> ccr -> NRCCR files without loss."""

import numpy as np
import polars as pl
import pytest

from ccr.corpus.corpus import Commit, Corpus
from ccr.corpus.feature_store import write_meta
from ccr.errors import CcrError
from ccr.formats.bigfile import read_bigfile, read_npy_features, read_video2frames
from ccr.formats.export import export
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions

QUIET = RunOptions(progress=False)

NRCCR_FILES = {
    "m30ktrain_enc.caption.txt": ["1000092795.jpg#enc#0 Two young guys with shaggy hair.",
                                  "1000092795.jpg#enc#1 Two friends enjoy time spent together.",
                                  "10002456.jpg#enc#0 Several men in hard hats."],
    "m30ktrain_google_enc2de.caption.txt": ["1000092795.jpg#enc2de#0 Zwei junge Männer mit zotteligem Haar.",
                                            "1000092795.jpg#enc2de#1 Zwei Freunde verbringen Zeit miteinander.",
                                            "10002456.jpg#enc2de#0 Mehrere Männer mit Schutzhelmen."],
    "m30ktrain_google_enc2de2enc.caption.txt": ["1000092795.jpg#enc2de2enc#0 Two young men with shaggy hair.",
                                                "1000092795.jpg#enc2de2enc#1 Two friends spend time together.",
                                                "10002456.jpg#enc2de2enc#0 Several men with hard hats."],
    "m30ktest_de.caption.txt": ["2000.jpg#de#0 Ein Hund läuft über die Wiese – schnell!"],
    "m30ktest_google_de2enc.caption.txt": ["2000.jpg#de2enc#0 A dog runs across the meadow - fast!"],
}


@pytest.fixture
def nrccr_dir(tmp_path):
    text = tmp_path / "src" / "TextData"
    text.mkdir(parents=True)
    for name, lines in NRCCR_FILES.items():
        (text / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return text


def test_nrccr_round_trip_is_lossless(nrccr_dir, tmp_path):
    ingest("nrccr", nrccr_dir, tmp_path / "corpus", options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    assert corpus.failures().height == 0
    captions = corpus.table("captions")
    assert captions.group_by("origin").len().sort("origin").rows() == [("bt", 3), ("human", 4), ("mt", 4)]
    written = export(tmp_path / "corpus", tmp_path / "out", fmt="nrccr", collection="m30k")
    out_dir = tmp_path / "out" / "TextData"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(NRCCR_FILES)
    for name in NRCCR_FILES:
        assert (out_dir / name).read_bytes() == (nrccr_dir / name).read_bytes(), name
    assert len(written) == len(NRCCR_FILES)
    # and the exported files ingest into the same tables
    ingest("nrccr", out_dir, tmp_path / "again", options=QUIET)
    again = Corpus.open(tmp_path / "again")
    for table, key in (("captions", "caption_id"), ("media", "media_id")):
        assert again.table(table).sort(key).equals(corpus.table(table).sort(key)), table


def test_parquet_and_jsonl_exports_filter_by_language_and_split(toy_corpus, tmp_path):
    export(toy_corpus, tmp_path / "pq", fmt="parquet", langs="de,fr", splits="test")
    captions = pl.read_parquet(tmp_path / "pq" / "captions.parquet")
    assert set(captions["lang"]) == {"de", "fr"} and set(captions["split"]) == {"test"}
    export(toy_corpus, tmp_path / "js", fmt="jsonl")
    lines = (tmp_path / "js" / "captions.jsonl").read_text().splitlines()
    assert len(lines) == Corpus.open(toy_corpus).count("captions")
    with pytest.raises(CcrError, match="unknown export format"):
        export(toy_corpus, tmp_path / "x", fmt="xml")
    with pytest.raises(CcrError, match="unknown split"):
        export(toy_corpus, tmp_path / "x", splits="dev")


def _add_features(corpus: Corpus, name: str, arrays: dict[str, np.ndarray]) -> None:
    path = corpus.shard_path(f"features/{name}", "test", "fp", "0")
    rows = [{"media_id": k, "features": v} for k, v in arrays.items()]
    corpus.write_shard(f"features/{name}", rows, path)
    corpus.commit(Commit(stage="test", fingerprint="fp", key="0", files={f"features/{name}": str(path.relative_to(corpus.root))},
                         rows={f"features/{name}": len(rows)}))
    write_meta(corpus, name, {"model": "test", "dim": 4, "dtype": "float32", "variant": "pooled"})


def test_image_features_export_as_npy_per_split(toy_corpus, tmp_path):
    corpus = Corpus.open(toy_corpus)
    media = corpus.table("media")
    rng = np.random.default_rng(0)
    arrays = {m: rng.standard_normal((1, 4)).astype(np.float32) for m in media["media_id"]}
    _add_features(corpus, "toyfeat", arrays)
    export(toy_corpus, tmp_path / "out", fmt="nrccr", features=["toyfeat"])
    ids, arr = read_npy_features(tmp_path / "out" / "FeatureData" / "toyfeat" / "test-toyfeat.npy",
                                 tmp_path / "out" / "FeatureData" / "test_id.txt")
    assert len(ids) == media.filter(pl.col("split") == "test").height
    np.testing.assert_array_equal(arr, np.concatenate([arrays[i] for i in ids]))
    with pytest.raises(CcrError, match="no features named 'nope'"):
        export(toy_corpus, tmp_path / "out2", fmt="nrccr", features=["nope"])


def test_video_features_export_as_bigfile_with_video2frames(tmp_path):
    src = tmp_path / "v.jsonl"
    src.write_text('{"media_id": "v1", "split": "test", "lang": "en", "text": "a clip", "modality": "video"}\n'
                   '{"media_id": "v2", "split": "test", "lang": "en", "text": "another", "modality": "video"}\n')
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    corpus = Corpus.open(tmp_path / "corpus")
    arrays = {"v1": np.arange(12, dtype=np.float32).reshape(3, 4), "v2": np.ones((2, 4), np.float32)}
    _add_features(corpus, "frames", arrays)
    export(tmp_path / "corpus", tmp_path / "out", fmt="nrccr", features=["frames"])
    feat = tmp_path / "out" / "FeatureData" / "frames"
    ids, arr = read_bigfile(feat)
    assert ids == ["v1_0", "v1_1", "v1_2", "v2_0", "v2_1"]
    np.testing.assert_array_equal(arr, np.concatenate([arrays["v1"], arrays["v2"]]))
    assert read_video2frames(feat / "video2frames.txt") == {"v1": ["v1_0", "v1_1", "v1_2"], "v2": ["v2_0", "v2_1"]}


def test_named_test_sets_export_by_name(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text('{"media_id": "a", "split": "train", "text": "a dog", "path": "a.jpg"}\n'
                   '{"media_id": "b", "split": "test_2017_flickr", "text": "a cat", "path": "b.jpg"}\n')
    ingest("jsonl", src, tmp_path / "corpus", options=QUIET)
    arrays = {"a": np.zeros((1, 4), np.float32), "b": np.ones((1, 4), np.float32)}
    _add_features(Corpus.open(tmp_path / "corpus"), "feat", arrays)
    export(tmp_path / "corpus", tmp_path / "pq", splits="test_2017_flickr")
    assert pl.read_parquet(tmp_path / "pq" / "captions.parquet")["text"].to_list() == ["a cat"]
    export(tmp_path / "corpus", tmp_path / "out", fmt="nrccr", features=["feat"])
    ids, arr = read_npy_features(tmp_path / "out" / "FeatureData" / "feat" / "test_2017_flickr-feat.npy",
                                 tmp_path / "out" / "FeatureData" / "test_2017_flickr_id.txt")
    assert ids == ["b"] and arr.tolist() == [[1.0] * 4]
