"""``ccr search`` and ``TrainedModel.search``: the top K of a split for one query.

A text (in English or any target language the run was trained for) or a new image file ranks the
split's media; a media id ranks the split's captions in the language. The gallery is embedded once
and read from the cache after (``ccr.train.search.cache``); a search then costs one query
embedding, one matrix-vector product over the memory-mapped gallery and a partial sort.

Scores are the cosines of ``encode_text`` and ``encode_media`` (the methods' ``emb`` outputs, unit
length), so a result can be checked with those two functions by hand. A method whose ``score``
fuses more than ``emb`` (LECCR's slot fusion, RIVRL's concept spaces) ranks by that fusion under
``ccr evaluate``, and here by ``emb`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ccr.errors import CcrError
from ccr.train.data.media import FeatureSource, MediaSource
from ccr.train.search import cache
from ccr.train.search import gallery as galleries

if TYPE_CHECKING:
    from ccr.corpus.corpus import Corpus
    from ccr.train.config import TrainConfig
    from ccr.train.run.checkpoint import RunDir


class Searchable(Protocol):
    """What a search needs of a trained run: ``ccr.train.api.TrainedModel``."""

    run: RunDir
    train_cfg: TrainConfig
    checkpoint: Path
    checkpoint_stamp: list[int]

    def corpus(self) -> Corpus: ...

    def source(self) -> MediaSource: ...

    def slot_source(self) -> MediaSource | None: ...

    def gallery_keys(self) -> frozenset[str]: ...

    def encode_text(self, texts: Sequence[str], *, lang: str | None = None, batch_size: int = 256) -> np.ndarray: ...

    def encode_media(self, media: Any, *, batch_size: int = 256) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float  # cosine in the run's common space
    media_id: str  # the item found, or the item the caption found describes
    path: str | None  # the item's file, resolved against the corpus's media root
    captions: list[str]  # a media hit: its human captions in the language (else English); a caption hit: the caption
    caption_id: str | None = None  # caption hits only


@dataclass(frozen=True)
class Results:
    query: str  # the text, the image path or the media id
    kind: str  # text | image | media
    lang: str
    split: str
    gallery: str  # captioned | split (media ranked) or captions (a media query)
    size: int  # how many items or captions were ranked
    cached: bool  # the gallery's embeddings were read from the cache, not computed
    hits: list[Hit]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def languages(cfg: TrainConfig) -> list[str]:
    """What a run's text tower was trained on: English captions and the target languages' MT."""
    return ["en", *[lang for lang in cfg.lang if lang != "en"]]


def rank(embeddings: np.ndarray, query: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``top`` highest scores, best first (ties by row), and the scores: one product, a partial sort."""
    scores = embeddings @ np.asarray(query, dtype=np.float32)
    k = min(top, len(scores))
    picked = np.argpartition(-scores, k - 1)[:k]
    picked = picked[np.lexsort((picked, -scores[picked]))]
    return picked, scores[picked]


def search(model: Searchable, query: str | None = None, *, image: Path | str | None = None,
           media_id: str | None = None, lang: str | None = None, split: str = "test", gallery: str | None = None,
           top: int = 10, log: Callable[[str], None] = print) -> Results:
    """The ``top`` best matches in ``split`` for one query: a text, an ``image`` file, or a ``media_id``.

    ``lang`` (default: the run's first target language) is the text's language, the captions a
    ``captioned`` gallery and the hits are read in, and a media query's gallery. ``gallery``
    (default: the run's setting) is ``captioned`` or ``split``; a media query ranks captions.
    ``log`` hears when a gallery is embedded (the first search of it).
    """
    if sum(x is not None for x in (query, image, media_id)) != 1:
        raise CcrError("give one query: a text, --image PATH or --media-id ID")
    if top < 1:
        raise CcrError(f"--top {top}: ask for at least 1 result")
    cfg = model.train_cfg
    lang = lang or cfg.lang[0]
    if lang not in languages(cfg):
        raise CcrError(f"--lang {lang}: this run was trained for {', '.join(languages(cfg))}; search in one of them")
    corpus, root = model.corpus(), model.run.root / cache.DIR
    checkpoint = (model.checkpoint.name, cache.checkpoint_digest(model.checkpoint, model.checkpoint_stamp, root))
    if media_id is not None:
        if gallery is not None:
            raise CcrError("--gallery picks the media a text or image ranks; a --media-id query ranks the split's "
                           "captions: drop --gallery")
        vector = model.encode_media([_known(model, corpus, media_id)])[0]
        return _rank_captions(model, corpus, root, checkpoint, vector, media_id, lang, split, top, log)
    kind = gallery or cfg.gallery
    ids = galleries.media_ids(corpus, split, lang, kind)
    if image is not None:
        path = Path(image)
        if not path.is_file():
            raise CcrError(f"no image file at {path}; give the path of an image")
        vector = model.encode_media([model.source().read(path, "image")])[0]
    else:
        vector = model.encode_text([str(query)], lang=lang)[0]
    embedded = cache.embeddings(root, checkpoint, _inputs(model, corpus), ids,
                                lambda wanted: _embed_media(model, wanted, root, log))
    rows, scores = rank(embedded.embeddings, vector, top)
    found = [embedded.ids[r] for r in rows]
    media, texts = galleries.media_rows(corpus, found), galleries.captions_of(corpus, found, lang)
    hits = [Hit(n + 1, float(s), m, media.get(m, {}).get("path"), texts.get(m, []))
            for n, (m, s) in enumerate(zip(found, scores, strict=True))]
    return Results(str(image if image is not None else query), "image" if image is not None else "text", lang,
                   split, kind, len(embedded.ids), not embedded.built, hits)


def _rank_captions(model: Searchable, corpus: Corpus, root: Path, checkpoint: tuple[str, str], vector: np.ndarray,
                   media_id: str, lang: str, split: str, top: int, log: Callable[[str], None]) -> Results:
    frame = galleries.captions(corpus, split, lang)
    ids, texts = frame["caption_id"].to_list(), frame["text"].to_list()
    text_of, owner = dict(zip(ids, texts, strict=True)), dict(zip(ids, frame["media_id"].to_list(), strict=True))

    def embed(wanted: list[str]) -> tuple[list[str], np.ndarray]:
        log(f"embedding {len(wanted)} {split} {lang} captions once; later searches read them from {root}")
        return wanted, _threads(model, lambda: model.encode_text([text_of[c] for c in wanted], lang=lang,
                                                                 batch_size=model.train_cfg.eval_batch_size))

    embedded = cache.embeddings(root, checkpoint, {"captions": lang, "texts": cache.digest(texts)}, ids, embed)
    rows, scores = rank(embedded.embeddings, vector, top)
    found = [embedded.ids[r] for r in rows]
    media = galleries.media_rows(corpus, [owner[c] for c in found])
    hits = [Hit(n + 1, float(s), owner[c], media.get(owner[c], {}).get("path"), [text_of[c]], c)
            for n, (c, s) in enumerate(zip(found, scores, strict=True))]
    return Results(media_id, "media", lang, split, "captions", len(embedded.ids), not embedded.built, hits)


def _known(model: Searchable, corpus: Corpus, media_id: str) -> str:
    """A media id of the corpus whose visual input the run can read."""
    if media_id not in galleries.media_rows(corpus, [media_id]):
        raise CcrError(f"no media item {media_id!r} in {corpus.root}; give a media_id of its media table")
    source = model.source()
    if not source.has(media_id):
        raise CcrError(f"media item {media_id!r} has no {source.name} input, which this run reads "
                       f"(run ccr features on {corpus.root})")
    return media_id


def _inputs(model: Searchable, corpus: Corpus) -> dict[str, Any]:
    """What a media gallery's embeddings read besides the weights: each feature store as it is (meta.json
    and the chunks committed to it), the media table for a run that reads the files, descriptions."""
    inputs: dict[str, Any] = {}
    for source in (model.source(), model.slot_source()):
        if isinstance(source, FeatureSource):
            inputs[source.name] = {"meta": source.store.meta, "chunks": corpus.chunk_keys(f"features/{source.name}")}
        elif source is not None:
            inputs[source.name] = {"media": corpus.chunk_keys("media"), "media_root": str(corpus.media_root)}
    if "descriptions" in model.gallery_keys():
        inputs["descriptions"] = corpus.chunk_keys("descriptions")
    return inputs


def _embed_media(model: Searchable, ids: list[str], root: Path, log: Callable[[str], None]) -> tuple[list[str], np.ndarray]:
    """The gallery items the run has input for, embedded; the others are left out, and said so."""
    source = model.source()
    have = [m for m in ids if source.has(m)]
    if not have:
        raise CcrError(f"none of the {len(ids)} gallery items has {source.name} input, which this run reads; "
                       f"run ccr features on {model.corpus().root}")
    if len(have) < len(ids):
        log(f"{len(ids) - len(have)} of {len(ids)} gallery items have no {source.name} input and are left out")
    log(f"embedding {len(have)} gallery items once; later searches read them from {root}")
    return have, _threads(model, lambda: model.encode_media(have, batch_size=model.train_cfg.eval_batch_size))


def _threads(model: Searchable, work: Callable[[], np.ndarray]) -> np.ndarray:
    """``work()`` on the run's CPU thread setting, as evaluation runs it."""
    from ccr.train.run.distributed import cpu_threads

    with cpu_threads(model.train_cfg.threads):
        return work()
