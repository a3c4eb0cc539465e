"""The ingest stage: one set of checks for every source format.

Readers only parse. Here every record is checked the same way (empty or huge text, unknown
language, duplicate ids, captions whose media is nowhere, unreadable media files), and whatever
fails becomes a failure row naming the file, line and reason; nothing is dropped in silence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccr import languages
from ccr.errors import CcrError
from ccr.pipeline.corpus import Corpus
from ccr.pipeline.ingest.records import BadRecord, Caption, Media, Record
from ccr.pipeline.runner import BatchResult, Chunk, DoneState, Failure, Plan, RunOptions, Stage
from ccr.pipeline.schema import MODALITIES, ORIGINS, SPLITS

GROUNDING_KEYS = ("qid", "duration", "relevant_windows", "relevant_clip_ids", "saliency_scores")


@dataclass
class IngestConfig:
    format: str = ""  # source format, one of `ccr ingest --help`'s list (coco, karpathy, multi30k, ...)
    src: str = ""  # source file or directory
    split: str | None = None  # split for formats that do not say (overrides guesses from file names)
    lang: str | None = None  # caption language where the format does not say (default en)
    modality: str | None = None  # image | video, where the format does not say
    columns: dict[str, str] = field(default_factory=dict)  # generic formats: our column -> source column
    mt_model: str = "google"  # model key of derived rows in NRCCR files
    max_chars: int = 10_000  # longer captions are failures (a broken line, not a caption)
    verify_media: bool = False  # open every media file; missing or unreadable ones become failures


def _source_fingerprint(src: Path) -> str:
    """Content hash of the source text files, so re-ingesting an unchanged source is a no-op."""
    h = hashlib.sha256()
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    for p in files:
        if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".mp4", ".avi", ".webm", ".mkv", ".npy", ".bin", ".npz"}:
            continue
        h.update(str(p.relative_to(src) if src.is_dir() else p.name).encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _read(cfg: IngestConfig) -> Iterator[Record]:
    from ccr.pipeline.ingest import READERS, IngestOptions

    reader = READERS[cfg.format]
    opts = IngestOptions(split=cfg.split, lang=cfg.lang, modality=cfg.modality, columns=dict(cfg.columns),
                         mt_model=cfg.mt_model)
    return reader(Path(cfg.src), opts)


def plan(corpus: Corpus, cfg: IngestConfig) -> Plan:
    from ccr.pipeline.ingest import formats

    if cfg.format not in formats():
        raise CcrError(f"unknown ingest format {cfg.format!r}; choose one of: {', '.join(formats())}")
    src = Path(cfg.src)
    if not src.exists():
        raise CcrError(f"source {src} does not exist; check the path")
    for code in (cfg.lang,):
        if code:
            languages.check(code)
    if cfg.split and cfg.split not in SPLITS:
        raise CcrError(f"--split {cfg.split!r}: use one of {', '.join(SPLITS)}")
    if cfg.modality and cfg.modality not in MODALITIES:
        raise CcrError(f"--modality {cfg.modality!r}: use image or video")

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        n = 0
        batch: list[Record] = []
        index = 0
        for record in _read(cfg):
            if options.limit is not None and n >= options.limit:
                break
            batch.append(record)
            n += 1
            if len(batch) == options.chunk_rows:
                yield Chunk(key=f"{index:06d}", items=batch, ids=[])
                batch, index = [], index + 1
        if batch:
            yield Chunk(key=f"{index:06d}", items=batch, ids=[])

    return Plan(
        input_table="source",
        chunks=chunks,
        fingerprint_parts={"source": _source_fingerprint(src)},
        models={},
        id_of=_record_id,
    )


def _record_id(record: Record) -> str:
    if isinstance(record, Media):
        return record.media_id
    if isinstance(record, Caption):
        return record.caption_id
    return record.source


@dataclass
class _State:
    """What the checks need to know across batches: everything already in the corpus or seen."""

    media: dict[str, tuple[Any, ...]]
    media_failed: dict[str, str]
    captions: dict[str, str]
    source_media: set[str]
    root: Path | None


def _media_key(m: Media) -> tuple[Any, ...]:
    return (m.split, m.modality, m.path, m.duration)


def _names_less(m: Media, known: tuple[Any, ...]) -> bool:
    """A caption file (NRCCR's) names media by id only: the same item as a known row of its split."""
    return m.path is None and m.duration is None and (m.split, m.modality) == known[:2]


def _caption_hash(media_id: str, lang: str, text: str, origin: str, parent_id: str | None) -> str:
    return hashlib.sha1("\0".join([media_id, lang, text, origin, parent_id or ""]).encode("utf-8", "replace")).hexdigest()


def setup(corpus: Corpus, cfg: IngestConfig, plan_: Plan) -> _State:
    media: dict[str, tuple[Any, ...]] = {}
    if corpus.files("media"):
        for r in corpus.table("media", with_side_tables=False).iter_rows(named=True):
            media[r["media_id"]] = (r["split"], r["modality"], r["path"], r["duration"])
    captions: dict[str, str] = {}
    if corpus.files("captions"):
        df = corpus.table("captions", with_side_tables=False)
        for r in df.select("caption_id", "media_id", "lang", "text", "origin", "parent_id").iter_rows():
            captions[r[0]] = _caption_hash(r[1], r[2], r[3], r[4], r[5])
    failures = corpus.failures()
    media_failed = {r["row_id"]: r["reason"] for r in failures.iter_rows(named=True)
                    if r["stage"] == "ingest" and r["table"] == "media"} if failures.height else {}
    source_media = {r.media_id for r in _read(cfg) if isinstance(r, Media)}
    return _State(media=media, media_failed=media_failed, captions=captions, source_media=source_media,
                  root=corpus.media_root)


def _check_media_file(path: Path | None, modality: str) -> str | None:
    if path is None:
        return "media row has no path to verify"
    if not path.exists():
        return f"file not found: {path}"
    if path.stat().st_size == 0:
        return f"file is empty: {path}"
    try:
        if modality == "image":
            from PIL import Image

            with Image.open(path) as im:
                im.load()
        else:
            import av

            with av.open(str(path)) as container:
                if not container.streams.video:
                    return f"no video stream in {path}"
                next(container.decode(video=0))
    except Exception as e:  # noqa: BLE001 - any decoder error means the file is unusable
        return f"unreadable {modality} {path}: {type(e).__name__}: {e}"
    return None


def _check_media(m: Media, state: _State, cfg: IngestConfig) -> tuple[dict[str, Any] | None, str | None]:
    if not m.media_id:
        return None, "empty media_id"
    if m.split not in SPLITS:
        return None, f"split {m.split!r} is not one of {', '.join(SPLITS)} (set --split)"
    if m.modality not in MODALITIES:
        return None, f"modality {m.modality!r} is not image or video"
    known = state.media.get(m.media_id)
    if known is not None:
        if known == _media_key(m) or _names_less(m, known):
            return None, None
        return None, f"duplicate media_id {m.media_id!r} with different fields (already {known})"
    if cfg.verify_media:
        path = Path(m.path) if m.path and Path(m.path).is_absolute() else (state.root / m.path if state.root and m.path else None)
        problem = _check_media_file(path, m.modality)
        if problem:
            state.media_failed[m.media_id] = problem
            return None, problem
    state.media[m.media_id] = _media_key(m)
    return {"media_id": m.media_id, "split": m.split, "modality": m.modality, "path": m.path, "duration": m.duration}, None


def _check_caption(c: Caption, state: _State, cfg: IngestConfig) -> tuple[dict[str, Any] | None, str | None]:
    if not c.caption_id:
        return None, "empty caption_id"
    if not isinstance(c.text, str):
        return None, f"caption text is {type(c.text).__name__}, not a string"
    text = c.text.strip()
    if not text:
        return None, "empty caption"
    if len(text) > cfg.max_chars:
        return None, f"caption has {len(text)} characters, over max_chars={cfg.max_chars} (raise it with --set max_chars=N)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, "caption text is not valid UTF-8"
    if not languages.is_known(c.lang):
        return None, f"unknown language code {c.lang!r}"
    if c.origin not in ORIGINS:
        return None, f"origin {c.origin!r} is not one of {', '.join(ORIGINS)}"
    if c.media_id in state.media_failed:
        return None, f"its media {c.media_id!r} failed: {state.media_failed[c.media_id]}"
    if c.media_id not in state.media and c.media_id not in state.source_media:
        return None, f"caption points at media {c.media_id!r}, which is in neither the corpus nor this source"
    digest = _caption_hash(c.media_id, c.lang, text, c.origin, c.parent_id)
    known = state.captions.get(c.caption_id)
    if known is not None:
        return None, (None if known == digest else f"duplicate caption_id {c.caption_id!r} with a different text")
    split = c.split or (state.media.get(c.media_id) or (None,))[0]
    state.captions[c.caption_id] = digest
    row = {"caption_id": c.caption_id, "media_id": c.media_id, "split": split, "lang": c.lang, "text": text,
           "origin": c.origin, "parent_id": c.parent_id, "model": c.model}
    for key in GROUNDING_KEYS:
        if key in c.extra and c.extra[key] is not None:
            row[key] = str(c.extra[key]) if key == "qid" else c.extra[key]
    return row, None


def process(batch: Sequence[Record], state: _State, cfg: IngestConfig) -> BatchResult:
    out = BatchResult(rows={"media": [], "captions": []})
    for record in batch:
        if isinstance(record, BadRecord):
            out.failures.append(Failure(record.row_id or record.source, record.reason, table="source",
                                        source=record.source))
            continue
        table = "media" if isinstance(record, Media) else "captions"
        check = _check_media if isinstance(record, Media) else _check_caption
        row, problem = check(record, state, cfg)  # type: ignore[arg-type]
        if problem:
            out.failures.append(Failure(_record_id(record), problem, table=table))
        elif row is not None:
            out.rows[table].append(row)
    return out


STAGE = Stage(name="ingest", version="1", config=IngestConfig, plan=plan, setup=setup, process=process,
              help="read a source dataset into the corpus")


def ingest(fmt: str, src: Path | str, corpus_dir: Path | str, *, media_root: Path | str | None = None,
           split: str | None = None, lang: str | None = None, modality: str | None = None,
           columns: dict[str, str] | None = None, verify_media: bool = False, config: Path | None = None,
           sets: list[str] | None = None, options: RunOptions | None = None,
           on_config: Any = None) -> Any:
    """Ingest ``src`` into ``corpus_dir`` (created if missing); the Python twin of ``ccr ingest``."""
    from ccr.config import load_toml, parse_sets, resolve
    from ccr.pipeline.runner import run_stage

    src = Path(src)
    root = Path(media_root) if media_root else (src if src.is_dir() else src.parent)
    cli = {k: v for k, v in {"format": fmt, "src": str(src), "split": split, "lang": lang, "modality": modality,
                             "columns": columns or None, "verify_media": verify_media or None}.items()
           if v is not None}
    cfg = resolve(IngestConfig, load_toml(config, "ingest"), parse_sets(sets), cli)
    if on_config:
        on_config("ingest", cfg)
    corpus = Corpus.open(corpus_dir, create=True)
    if media_root is not None or corpus.media_root is None:
        corpus.update_manifest(media_root=str(root.resolve()))
    return run_stage(corpus, STAGE, cfg, options)
