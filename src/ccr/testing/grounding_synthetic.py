"""A grounding corpus whose moments are learnable by design, for tests, smoke runs and the demo.

Design: ``concepts`` latent concepts, each a fixed random clip-feature direction and a word in
English and German (``ccr.testing.synthetic.WORDS``). A video is ``clips`` 2-s clips of Gaussian
noise; ``moments`` non-overlapping segments of it each show one concept (its vector is added to
those clips' features), and each segment has one query naming its concept ("we see the dog"). So
the features alone say *where* something happens but not *which* moment a query means: only a
model that reads the query picks the right segment; an untrained one scores near chance.
Annotation is QVHighlights-shaped (qid, vid, duration, relevant_windows, relevant_clip_ids,
three annotators' saliency_scores) and goes through the real ``qvhighlights`` reader. German MT
queries (``origin=mt``, ``parent_id`` = the English row, word-by-word, as ``ccr translate`` lays
them out) exist for every split, and human German queries in another wording (with ``parent_id``,
no moments of their own) for val and test, for cross-lingual runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ccr.corpus.views import derived_id
from ccr.testing.synthetic import WORDS

FEATURES = "synthetic-clips2s"
MT_MODEL = "synth-mt"
CLIP = 2.0  # seconds per clip
EN_TEMPLATE, DE_TEMPLATE = "we see the {}", "wir sehen das {}"
DE_HUMAN_TEMPLATE = "das {} ist zu sehen"  # human German val/test queries: another wording than the MT


def _video(rng: np.random.Generator, n_clips: int, n_moments: int, min_len: int, max_len: int) -> list[tuple[int, int]]:
    """``n_moments`` non-overlapping [start, end) clip ranges, in random order."""
    while True:
        lengths = rng.integers(min_len, max_len + 1, size=n_moments)
        free = n_clips - int(lengths.sum())
        if free >= 0:
            break
    gaps = np.diff(np.sort(rng.integers(0, free + 1, size=n_moments)), prepend=0)
    segments, pos = [], 0
    for gap, length in zip(gaps, lengths, strict=True):
        pos += int(gap)
        segments.append((pos, pos + int(length)))
        pos += int(length)
    return [segments[i] for i in rng.permutation(n_moments)]


def write_grounding_corpus(out_dir: Path | str, *, n_train: int = 80, n_val: int = 16, n_test: int = 16,
                           concepts: int = 12, moments: int = 2, clips: tuple[int, int] = (16, 24),
                           moment_clips: tuple[int, int] = (2, 7), dim: int = 16, noise: float = 0.5,
                           seed: int = 0) -> Path:
    """Write ``out_dir/synth_{split}.jsonl`` (+ MT rows), ingest them into ``out_dir/corpus``; returns it."""
    from ccr.corpus.corpus import Commit, Corpus
    from ccr.corpus.feature_store import write_meta
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions

    if not moments <= concepts <= len(WORDS):
        raise ValueError(f"concepts must be in {moments}..{len(WORDS)}")
    rng = np.random.default_rng(seed)
    vectors = 2.0 * rng.standard_normal((concepts, dim)).astype(np.float32) / np.sqrt(dim)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    features, mt_rows, qid = [], [], 0
    sources = []
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        lines = []
        for v in range(n):
            vid = f"{split}{v:04d}"
            n_clips = int(rng.integers(clips[0], clips[1] + 1))
            feats = noise * rng.standard_normal((n_clips, dim)).astype(np.float32) / np.sqrt(dim)
            shown = rng.choice(concepts, size=moments, replace=False)
            for concept, (s, e) in zip(shown, _video(rng, n_clips, moments, *moment_clips), strict=True):
                feats[s:e] += vectors[concept]
                en, de = WORDS[int(concept)]
                qid += 1
                lines.append({"qid": qid, "query": EN_TEMPLATE.format(en), "vid": vid, "duration": n_clips * CLIP,
                              "relevant_windows": [[s * CLIP, e * CLIP]], "relevant_clip_ids": list(range(s, e)),
                              "saliency_scores": rng.integers(2, 5, size=(e - s, 3)).tolist()})
                mt_rows.append({"caption_id": derived_id(str(qid), "mt", "de", MT_MODEL), "media_id": vid, "split": split,
                                "lang": "de", "text": DE_TEMPLATE.format(de), "origin": "mt", "parent_id": str(qid),
                                "model": MT_MODEL, "modality": "video", "path": f"{vid}.mp4",
                                "duration": n_clips * CLIP})
                if split != "train":
                    mt_rows.append(mt_rows[-1] | {"caption_id": f"{qid}#de", "text": DE_HUMAN_TEMPLATE.format(de),
                                                  "origin": "human", "model": None})
            features.append({"media_id": vid, "features": feats})
        path = out_dir / f"synth_{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        sources.append(path)
    root = out_dir / "corpus"
    for path in sources:
        ingest("qvhighlights", path, root, options=RunOptions(progress=False))
    mt_path = out_dir / "synth_de.jsonl"
    mt_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mt_rows), encoding="utf-8")
    ingest("jsonl", mt_path, root, options=RunOptions(progress=False))
    corpus = Corpus.open(root)
    table = f"features/{FEATURES}"
    shard = corpus.shard_path(table, "synthetic", f"g{seed}", "0")
    corpus.write_shard(table, features, shard)
    corpus.commit(Commit(stage="synthetic", fingerprint=f"g{seed}", key="0",
                         files={table: str(shard.relative_to(root))}, rows={table: len(features)}))
    write_meta(corpus, FEATURES, {"model": "synthetic", "dim": dim, "dtype": "float32", "variant": "clips2s"})
    return root
