"""Grounding samples as a view over the corpus: queries, their moments, their videos' clip features.

Rows (DESIGN.md "Contracts"): an English human caption of a grounding corpus carries ``qid``,
``duration``, ``relevant_windows`` (seconds) and, for QVHighlights, ``relevant_clip_ids`` and
``saliency_scores``. A translated query (``ccr translate``: origin mt, parent the English row)
carries none of them and takes its parent's, so a run trains on MT queries of any language with
the English moments. A human query in another language uses its own moments when it has them,
else its parent's.

Bad rows never stop a run and are never dropped in silence. Training leaves out queries whose
video has no features or that have no usable window; windows of zero length, wholly outside the
video, past the ``max_frames`` cut or not two finite numbers (NaN, inf) are dropped, windows
reaching past the video are clipped, and one log line counts every case (``Skips``). Evaluation
scores the ground truth as stored, as the standard evaluation does, and leaves out only queries it
cannot score (no window, no features).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from ccr.corpus.views import choose_model
from ccr.errors import CcrError
from ccr.train.data.rows import captions
from ccr.train.data.tokens import TokenTable

if TYPE_CHECKING:
    import polars as pl

    from ccr.corpus.corpus import Corpus
    from ccr.train.data.media import MediaSource

GROUNDING = ("qid", "duration", "relevant_windows", "relevant_clip_ids", "saliency_scores")
QuerySource = Literal["auto", "human", "mt"]
DEFAULT_CLIP_LENGTH = 2.0  # seconds per feature step of QVHighlights and TACoS (Charades-STA: 1)
MAX_SALIENCY = 4.0  # QVHighlights annotators score clips 0..4
_CLIPS_VARIANT = re.compile(r"clips(\d+(?:\.\d+)?)s$")
INGEST_HINT = "ingest QVHighlights / Charades-STA / TACoS jsonl with ccr ingest CORPUS SRC --format qvhighlights|charades|tacos"


@dataclass
class Queries:
    """One row per query: its text, video and moments (the English row's, for translations)."""

    split: str
    lang: str
    caption_id: list[str]
    qid: list[str]
    media_id: list[str]
    text: list[str]
    duration: list[float | None]
    windows: list[list[list[float]] | None]
    clip_ids: list[list[int] | None]
    saliency: list[list[list[float]] | None]

    def __len__(self) -> int:
        return len(self.qid)

    def pick(self, keep: list[int]) -> Queries:
        def take(xs: list[Any]) -> list[Any]:
            return [xs[i] for i in keep]

        return Queries(self.split, self.lang, take(self.caption_id), take(self.qid), take(self.media_id),
                       take(self.text), take(self.duration), take(self.windows), take(self.clip_ids),
                       take(self.saliency))


def clip_length(cfg_value: float, source: MediaSource) -> float:
    """Seconds per feature step: the config's, else the feature set's ``clipsNs`` variant, else 2."""
    if cfg_value > 0:
        return cfg_value
    store = getattr(source, "store", None)
    match = _CLIPS_VARIANT.search(str(store.meta.get("variant", ""))) if store is not None else None
    return float(match.group(1)) if match else DEFAULT_CLIP_LENGTH


def _grounding_captions(corpus: Corpus) -> pl.DataFrame:
    caps = captions(corpus)
    if "relevant_windows" not in caps.columns:
        raise CcrError(f"{corpus.root} has no grounding queries (no relevant_windows column); {INGEST_HINT}")
    import polars as pl

    return caps.with_columns(pl.lit(None).alias(c) for c in GROUNDING if c not in caps.columns)


def _english(caps: pl.DataFrame, split: str) -> pl.DataFrame:
    import polars as pl

    rows = caps.filter((pl.col("split") == split) & (pl.col("lang") == "en") & (pl.col("origin") == "human")
                       & pl.col("qid").is_not_null())
    if rows.height == 0:
        raise CcrError(f"no English grounding queries (rows with a qid) in the {split} split; {INGEST_HINT}")
    return rows


def _with_parent_moments(rows: pl.DataFrame, parents: pl.DataFrame) -> pl.DataFrame:
    """Fill each row's missing grounding columns from its parent row (joined on ``parent_id``)."""
    import polars as pl

    moments = parents.select(pl.col("caption_id").alias("parent_id"),
                             *(pl.col(c).alias(f"_p_{c}") for c in GROUNDING))
    joined = rows.join(moments, on="parent_id", how="left")
    own = pl.col("relevant_windows").is_not_null()
    return joined.with_columns(
        [pl.when(own).then(pl.col(c)).otherwise(pl.col(f"_p_{c}")).alias(c) for c in GROUNDING if c != "qid"]
        + [pl.coalesce("qid", "_p_qid").alias("qid")]
    ).drop([f"_p_{c}" for c in GROUNDING])


def query_rows(corpus: Corpus, split: str, lang: str, *, queries: QuerySource = "auto",
               mt_model: str | None = None) -> Queries:
    """The ``lang`` queries of ``split``: English rows for ``en``; else human or MT rows (``auto``: human if any)."""
    import polars as pl

    caps = _grounding_captions(corpus)
    english = _english(caps, split)
    if lang == "en":
        rows = english
    else:
        in_lang = caps.filter((pl.col("split") == split) & (pl.col("lang") == lang))
        human = in_lang.filter(pl.col("origin") == "human")
        source = queries if queries != "auto" else ("human" if human.height else "mt")
        if source == "human":
            if human.height == 0:
                raise CcrError(f"no human {lang} queries in the {split} split; use --queries mt (translated ones)")
            rows = human
        else:
            mt = in_lang.filter((pl.col("origin") == "mt") & pl.col("parent_id").is_in(english["caption_id"].implode()))
            if mt.height == 0:
                raise CcrError(f"no {lang} translations of the {split} queries; run ccr translate --lang {lang}")
            rows = mt.filter(pl.col("model") == choose_model(mt, mt_model, f"{lang} translations of {split} queries"))
        rows = _with_parent_moments(rows, english).filter(pl.col("qid").is_not_null())
    rows = rows.filter(pl.col("keep")).sort("caption_id")
    if rows.height == 0:
        raise CcrError(f"no {lang} grounding queries left in the {split} split (all filtered out by keep)")
    return Queries(split, lang, rows["caption_id"].to_list(), rows["qid"].to_list(), rows["media_id"].to_list(),
                   rows["text"].to_list(), rows["duration"].to_list(), rows["relevant_windows"].to_list(),
                   rows["relevant_clip_ids"].to_list(), rows["saliency_scores"].to_list())


@dataclass
class Skips:
    """What a data build left out or changed, and why: one log line, never silence."""

    what: str
    queries: Counter[str] = field(default_factory=Counter)
    windows: Counter[str] = field(default_factory=Counter)
    example: dict[str, str] = field(default_factory=dict)

    def query(self, reason: str, qid: str) -> None:
        self.queries[reason] += 1
        self.example.setdefault(reason, qid)

    def window(self, reason: str, qid: str) -> None:
        self.windows[reason] += 1
        self.example.setdefault(reason, qid)

    def message(self) -> str | None:
        if not self.queries and not self.windows:
            return None
        parts = []
        if self.queries:
            parts.append(f"{sum(self.queries.values())} queries left out (" + self._list(self.queries) + ")")
        if self.windows:
            parts.append("windows: " + self._list(self.windows))
        return f"{self.what}: " + "; ".join(parts)

    def _list(self, counts: Counter[str]) -> str:
        return ", ".join(f"{reason} {n}, e.g. qid {self.example[reason]}" for reason, n in sorted(counts.items()))

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"queries": dict(self.queries), "windows": dict(self.windows)}


@dataclass(frozen=True)
class Timeline:
    """How a video's clips map to seconds: ``clips`` used (after ``max_frames``) over ``seconds``."""

    clips: int
    seconds: float
    duration: float  # the video's (the row's duration, else clips x clip length before the cut)


def timeline(n_clips: int, duration: float | None, max_frames: int, clip_len: float) -> Timeline:
    """Normalised time 0..1 spans the kept clips: the whole video, or the part before the cut."""
    full = float(duration) if duration is not None and duration > 0 else n_clips * clip_len
    used = min(n_clips, max_frames)
    seconds = full if used == n_clips else min(full, used * clip_len)
    return Timeline(used, seconds, full)


def usable_windows(windows: list[list[float]], line: Timeline, qid: str, skips: Skips) -> list[list[float]]:
    """Windows in seconds -> (centre, width) in 0..1 of the timeline, bad ones dropped or clipped."""
    spans = []
    for window in windows:
        if not _finite_pair(window):  # ingest now refuses these; older corpora may still hold them
            skips.window("non-finite window dropped", qid)
            continue
        start, end = window
        if end <= start:
            skips.window("zero-length window dropped", qid)
        elif start >= line.duration or end <= 0:
            skips.window("window outside the video dropped", qid)
        elif start >= line.seconds:
            skips.window("window past max_frames dropped", qid)
        else:
            if start < 0 or end > line.duration:
                skips.window("window clipped to the video", qid)
            lo, hi = max(start, 0.0) / line.seconds, min(end, line.seconds) / line.seconds
            spans.append([(lo + hi) / 2, hi - lo])
    return spans


def _finite_pair(window: Any) -> bool:
    return (isinstance(window, list | tuple) and len(window) == 2
            and all(isinstance(x, int | float) and math.isfinite(x) for x in window))


def saliency_labels(q: Queries, i: int, spans: list[list[float]], n_clips: int) -> np.ndarray:
    """Per-clip targets: annotator means scaled to 0..1 where the row has them, else inside-a-window = 1."""
    labels = np.zeros(n_clips, np.float32)
    ids, scores = q.clip_ids[i], q.saliency[i]
    if ids and scores and len(ids) == len(scores):
        for clip, s in zip(ids, scores, strict=True):
            if 0 <= clip < n_clips:
                labels[clip] = float(np.mean(s)) / MAX_SALIENCY
        return labels
    centres = (np.arange(n_clips) + 0.5) / n_clips
    for c, w in spans:
        labels[(centres >= c - w / 2) & (centres <= c + w / 2)] = 1.0
    return labels


def video_batch(source: MediaSource, media_ids: list[str], max_frames: int,
                normalize: bool) -> dict[str, torch.Tensor]:
    """``video`` ``[B, T, D]`` clip features (L2-normalised per clip if asked) and ``video_mask``."""
    items = [source.get(m)[:max_frames] for m in media_ids]
    t = max(len(x) for x in items)
    feats = np.zeros((len(items), t, source.dim), np.float32)
    mask = np.zeros((len(items), t), bool)
    for k, x in enumerate(items):
        if normalize:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        feats[k, :len(x)], mask[k, :len(x)] = x, True
    return {"video": torch.from_numpy(feats), "video_mask": torch.from_numpy(mask)}


@dataclass
class GroundingTrainData:
    """Training samples for the loop: ``__len__`` and ``collate(indices)`` (see ``collate``)."""

    queries: Queries
    spans: list[np.ndarray]  # (G, 2) centre/width per query, 0..1
    saliency: list[np.ndarray]  # (T,) per query
    texts: TokenTable
    text_rows: np.ndarray
    source: MediaSource
    max_frames: int
    normalize: bool
    langs: list[str]
    media_ids: list[str]  # distinct videos

    def __len__(self) -> int:
        return len(self.spans)

    def all_spans(self) -> np.ndarray:
        """Every training moment as (centre, width): what the anchors are clustered from."""
        return np.concatenate(self.spans)

    def collate(self, indices: list[int]) -> dict[str, Any]:
        """``video``/``video_mask``, ``text`` tokens, ``spans`` [B, G, 2] + ``span_mask``, ``saliency`` [B, T]."""
        idx = list(indices)
        batch: dict[str, Any] = video_batch(self.source, [self.queries.media_id[i] for i in idx], self.max_frames,
                                            self.normalize)
        batch["text"] = self.texts.batch(self.text_rows[idx])
        g = max(len(self.spans[i]) for i in idx)
        spans = np.zeros((len(idx), g, 2), np.float32)
        span_mask = np.zeros((len(idx), g), bool)
        saliency = np.zeros(batch["video_mask"].shape, np.float32)
        for k, i in enumerate(idx):
            spans[k, :len(self.spans[i])], span_mask[k, :len(self.spans[i])] = self.spans[i], True
            saliency[k, :len(self.saliency[i])] = self.saliency[i]
        batch |= {"spans": torch.from_numpy(spans), "span_mask": torch.from_numpy(span_mask),
                  "saliency": torch.from_numpy(saliency)}
        return batch


def build_train_data(parts: list[Queries], *, source: MediaSource, tokenizer: Any, max_tokens: int,
                     max_frames: int, max_windows: int, clip_len: float, normalize: bool, cache: Any,
                     log: Callable[[str], None]) -> tuple[GroundingTrainData, Skips]:
    skips = Skips("training queries")
    keep: list[tuple[int, int]] = []
    spans, saliency = [], []
    for p, q in enumerate(parts):
        for i in range(len(q)):
            qid = q.qid[i]
            if not q.windows[i]:
                skips.query("no window", qid)
                continue
            if not source.has(q.media_id[i]):
                skips.query("no features for the video", qid)
                continue
            n_clips = len(source.get(q.media_id[i]))
            line = timeline(n_clips, q.duration[i], max_frames, clip_len)
            usable = usable_windows(q.windows[i], line, qid, skips)[:max_windows]
            if not usable:
                skips.query("no usable window", qid)
                continue
            keep.append((p, i))
            spans.append(np.asarray(usable, np.float32))
            saliency.append(saliency_labels(q, i, usable, line.clips))
    if (message := skips.message()) is not None:
        log(message)
    if not keep:
        raise CcrError("no usable training query: every one lacks features or a valid window (see the line above)")
    merged = _merge([parts[p].pick([i]) for p, i in keep])
    texts = TokenTable.build(merged.text, tokenizer, max_tokens, cache)
    data = GroundingTrainData(merged, spans, saliency, texts, texts.rows(merged.text), source, max_frames,
                              normalize, sorted({q.lang for q in parts}), sorted(set(merged.media_id)))
    return data, skips


def _merge(items: list[Queries]) -> Queries:
    first = items[0]
    cat = lambda name: [x for q in items for x in getattr(q, name)]  # noqa: E731
    return Queries(first.split, "+".join(sorted({q.lang for q in items})), cat("caption_id"), cat("qid"),
                   cat("media_id"), cat("text"), cat("duration"), cat("windows"), cat("clip_ids"), cat("saliency"))


def qid_value(qid: str) -> int | str:
    """Integer qids (QVHighlights) go back to integers, so our files match the original annotations."""
    return int(qid) if qid.isdigit() else qid


@dataclass
class GroundingEvalData:
    """One split and language: the queries to predict and their ground truth in the standard's form."""

    queries: Queries
    lines: list[Timeline]
    texts: TokenTable
    text_rows: np.ndarray
    source: MediaSource
    max_frames: int
    normalize: bool
    clip_len: float
    skips: Skips

    @property
    def name(self) -> str:
        return self.queries.lang

    def ground_truth(self) -> list[dict[str, Any]]:
        """Annotation rows as the QVHighlights evaluation reads them (moments as stored)."""
        q, rows = self.queries, []
        for i in range(len(q)):
            row: dict[str, Any] = {"qid": qid_value(q.qid[i]), "duration": self.lines[i].duration,
                                   "relevant_windows": q.windows[i]}
            if q.clip_ids[i] is not None and q.saliency[i] is not None:
                row |= {"relevant_clip_ids": q.clip_ids[i], "saliency_scores": q.saliency[i]}
            rows.append(row)
        return rows

    def batches(self, batch_size: int) -> Iterator[tuple[list[int], dict[str, Any]]]:
        for start in range(0, len(self.queries), batch_size):
            idx = list(range(start, min(start + batch_size, len(self.queries))))
            batch = video_batch(self.source, [self.queries.media_id[i] for i in idx], self.max_frames, self.normalize)
            batch["text"] = self.texts.batch(self.text_rows[idx])
            yield idx, batch


def build_eval_data(q: Queries, *, source: MediaSource, tokenizer: Any, max_tokens: int, max_frames: int,
                    clip_len: float, normalize: bool, cache: Any, log: Callable[[str], None]) -> GroundingEvalData:
    skips = Skips(f"{q.split}/{q.lang} queries")
    keep = []
    for i in range(len(q)):
        if not q.windows[i]:
            skips.query("no window", q.qid[i])
        elif not source.has(q.media_id[i]):
            skips.query("no features for the video", q.qid[i])
        else:
            keep.append(i)
    if (message := skips.message()) is not None:
        log(message)
    if not keep:
        raise CcrError(f"no {q.split}/{q.lang} query can be scored: none has both a window and video features")
    q = q.pick(keep)
    lines = [timeline(len(source.get(m)), d, max_frames, clip_len) for m, d in zip(q.media_id, q.duration, strict=True)]
    texts = TokenTable.build(q.text, tokenizer, max_tokens, cache)
    return GroundingEvalData(q, lines, texts, texts.rows(q.text), source, max_frames, normalize, clip_len, skips)
