"""``ccr export``: a corpus as plain Parquet/JSONL, as a Hub dataset, or in the NRCCR/LECCR layout.

Parquet and JSONL stream from the shards (polars sinks), so exporting a large corpus does not
load it; so does the Hub dataset (``export_hf``: a config per table, its splits, a card). The NRCCR
layout writes caption files plus features as BigFile (videos: frame rows and ``video2frames.txt``)
or ``.npy`` + id files (images), so existing research code trains on our corpora unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ccr import languages, paths
from ccr.corpus import atomic
from ccr.corpus.corpus import Corpus
from ccr.corpus.schema import SPLIT_RULE, is_split
from ccr.errors import CcrError

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("parquet", "jsonl", "hf", "nrccr")


def _filtered(corpus: Corpus, table: str, langs: list[str] | None, splits: list[str] | None) -> pl.LazyFrame:
    import polars as pl

    lf = corpus.scan(table)
    if splits:
        lf = lf.filter(pl.col("split").is_in(splits))
    if langs and table == "captions":
        lf = lf.filter(pl.col("lang").is_in(langs))
    return lf


def _split_list(spec: str | None, *, check_lang: bool) -> list[str] | None:
    if not spec:
        return None
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if check_lang:
        return [languages.check(x) for x in items]
    bad = [s for s in items if not is_split(s)]
    if bad:
        raise CcrError(f"unknown split {bad[0]!r}; use one of {SPLIT_RULE}")
    return items


def export(corpus_dir: Path | str, dest: Path | str, *, fmt: str = "parquet", collection: str | None = None,
           features: list[str] | None = None, langs: str | None = None, splits: str | None = None) -> list[Path]:
    """Write the corpus to ``dest``; returns the files written."""
    if fmt not in FORMATS:
        raise CcrError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    corpus = Corpus.open(corpus_dir)
    dest = Path(dest)
    lang_list = _split_list(langs, check_lang=True)
    split_list = _split_list(splits, check_lang=False)
    for name in features or []:
        corpus.features(name).meta  # noqa: B018 - a missing or damaged feature set is refused before any file is written
    made = paths.output_dir(dest, "export destination")
    try:
        with atomic.os_errors(dest, "export"):
            return _write(corpus, dest, fmt, collection, features or [], lang_list, split_list)
    except BaseException:
        paths.discard(made)  # a failed export leaves no empty directory behind
        raise


def _write(corpus: Corpus, dest: Path, fmt: str, collection: str | None, features: list[str],
           lang_list: list[str] | None, split_list: list[str] | None) -> list[Path]:
    if fmt in ("parquet", "jsonl"):
        written = []
        for table in ("media", "captions", "descriptions", "slots", "failures"):
            if not corpus.files(table):
                continue
            lf = _filtered(corpus, table, lang_list, split_list) if table in ("media", "captions") else corpus.scan(table)
            path = dest / f"{table}.{fmt}"
            if fmt == "parquet":
                lf.sink_parquet(path)
            else:
                lf.sink_ndjson(path)
            written.append(path)
        return written
    if fmt == "hf":
        from ccr.formats.export_hf import write_hf

        return write_hf(corpus, dest, features, lambda table: _filtered(corpus, table, lang_list, split_list))
    from ccr.formats.export_nrccr import write_nrccr

    name = collection or corpus.root.name
    captions = _filtered(corpus, "captions", lang_list, split_list).collect()
    written = list(write_nrccr(captions, dest, name))
    media = _filtered(corpus, "media", None, split_list).collect()
    for feature in features:
        written += export_features(corpus, feature, dest / "FeatureData" / feature, media)
    return written


def export_features(corpus: Corpus, name: str, out: Path, media: pl.DataFrame) -> list[Path]:
    """Videos (T > 1) -> one BigFile of frame rows plus video2frames; images -> npy per split."""
    from ccr.formats.bigfile import (
        write_bigfile,
        write_npy_features,
        write_video2frames,
    )

    store = corpus.features(name)
    ids = [m for m in media["media_id"].to_list() if m in store]
    if not ids:
        raise CcrError(f"no {name} features for the exported media; run ccr features first")
    out.mkdir(parents=True, exist_ok=True)
    if media.filter(media["modality"] == "video").height:
        frame_ids, rows, v2f = [], [], {}
        for media_id in ids:
            arr = store.get(media_id).astype(np.float32)
            names = [f"{media_id}_{t}" for t in range(arr.shape[0])]
            frame_ids += names
            rows.append(arr)
            v2f[media_id] = names
        write_bigfile(out, frame_ids, np.concatenate(rows))
        write_video2frames(out / "video2frames.txt", v2f)
        return [out / "feature.bin", out / "id.txt", out / "shape.txt", out / "video2frames.txt"]
    written = []
    split_of = dict(zip(media["media_id"].to_list(), media["split"].to_list()))
    for split in sorted({split_of[m] for m in ids}):  # named test sets (test_2017_flickr) get their own files
        split_ids = [m for m in ids if split_of[m] == split]
        arr = np.stack([store.get(m).astype(np.float32).mean(axis=0) for m in split_ids])
        npy, idf = out / f"{split}-{name}.npy", out.parent / f"{split}_id.txt"
        write_npy_features(npy, idf, split_ids, arr)
        written += [npy, idf]
    return written
