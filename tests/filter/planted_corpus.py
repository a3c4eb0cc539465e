"""A corpus whose text and visual embeddings carry known signal under the tiny random models.

Design. Every media item is a set of three latent concepts drawn from 40 English nouns. Its
English captions name the concepts in English sentences; its "Czech" MT captions keep the same
concept words inside Czech glue words (as MT leaves terms untranslated), so the cross-lingual
view sees the pair only through the shared concept tokens: the tiny multilingual embedder is
random, but mean pooling makes texts that share tokens closer, and nothing else links them.
The visual features are the tiny multilingual CLIP text encoder's embedding of the concept
words alone, plus Gaussian noise: the cross-modal view sees the pair only through the concepts,
blurred by noise of its own. The two views thus carry the same truth with independent errors,
each view alone detects a swapped caption imperfectly, and a method that combines them, such
as DCOT, can do better than either. Features go in through ``ccr import-features`` (npy + ids)
and every model through the resolver, exactly as in a real run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions
from ccr.stages.table import run

MT_KEY = "planted@1"
FEATURES = "clip-planted"
CONCEPTS = ("man horse beach children ball park woman dress book dog grass cat chair people street girl bench river "
            "friends table bird branch boy shirt lake snow kitchen taxi building mountains fisherman boat cyclist "
            "road city cow field musician guitar station").split()
VISUAL_NOISE = 0.1  # std of the noise per unit vector, in units of the vector's length
# tiny models, on the CPU: runs that tests compare (shards, resumes, the session's scored corpus) then
# compare like with like on any machine, a GPU one included
SCORE = {"tiny": True, "device": "cpu"}


def build_planted_corpus(root: Path, *, media: int = 100, captions: int = 2, seed: int = 0) -> Path:
    """Ingest the captions, import the features; returns the corpus directory (``root/corpus``)."""
    from sentence_transformers import SentenceTransformer

    from ccr.models import resolve

    rng = random.Random(seed)
    concepts = {f"m{i:04d}": rng.sample(CONCEPTS, 3) for i in range(media)}
    lines = []
    for media_id, words in concepts.items():
        for k in range(captions):
            a, b, c = rng.sample(words, 3)
            en_id = f"{media_id}#en#{k}"
            common = {"media_id": media_id, "split": "train", "path": f"images/{media_id}.png", "modality": "image"}
            lines.append({**common, "caption_id": en_id, "lang": "en", "text": f"a {a} with a {b} near the {c}"})
            lines.append({**common, "caption_id": f"{en_id}|mt:cs:{MT_KEY}", "lang": "cs", "origin": "mt",
                          "parent_id": en_id, "model": MT_KEY, "text": f"{a} a {b} u {c}"})
    source = root / "source"
    source.mkdir(parents=True)
    (source / "captions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    corpus = root / "corpus"
    ingest("jsonl", source / "captions.jsonl", corpus, options=RunOptions(progress=False))

    encoder = SentenceTransformer(str(resolve("tiny/mclip-text").path), device="cpu")
    ids = sorted(concepts)
    clean = encoder.encode([" ".join(concepts[m]) for m in ids], normalize_embeddings=True, convert_to_numpy=True)
    noise = np.random.default_rng(seed).normal(0.0, VISUAL_NOISE / np.sqrt(clean.shape[1]), clean.shape)
    np.save(source / "features.npy", (clean + noise).astype(np.float32))
    (source / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    run("import-features", corpus, overrides={"format": "npy", "src": str(source / "features.npy"),
                                              "ids": str(source / "ids.txt"), "name": FEATURES, "model": "tiny/clip",
                                              "variant": "pooled"}, options=RunOptions(progress=False))
    return corpus
