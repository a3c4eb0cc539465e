"""The ingest stage: read a source into the corpus, every record through the same checks.

Readers only parse; ``checks`` judges every record the same way whatever its format, and whatever
fails becomes a failure row naming its file and line (or entry) and the reason: nothing is dropped
in silence. The unit of work is the source entry (a line, or a JSON entry) in file order: chunks
are keyed by their entry range, within a fingerprint that covers the source's content, so
``--limit N`` ingests the first N entries, rerunning it has nothing left to do, and a later full
run adds exactly the rest. A generic source may be a directory of parts: its files are read in path
order as one source, entries numbered on across them (a chunk never spans two files), every file
checked against the corpus and the files before it. With ``--engine ray`` a generic source is
parsed on Ray, piece by piece (``pieces``), and checked and committed here in file order, so the
corpus is the local run's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr import languages
from ccr.config import option
from ccr.corpus.corpus import MANIFEST, Corpus
from ccr.corpus.schema import MODALITIES, SPLIT_RULE, is_split
from ccr.errors import CcrError
from ccr.formats.ingest import formats, pieces, spans
from ccr.formats.ingest.ahead import ahead
from ccr.formats.ingest.checks import Known, caption_hash, check_caption, check_media
from ccr.formats.ingest.entries import ENTRY_READERS
from ccr.formats.ingest.frame_checks import Checked, FrameKnown
from ccr.formats.ingest.frame_checks import Options as FrameOptions
from ccr.formats.ingest.frame_checks import check as check_frame
from ccr.formats.ingest.generic import check_columns
from ccr.formats.ingest.records import BadRecord, Media, Record, entries
from ccr.formats.ingest.source import check_source, fingerprint, source_files
from ccr.formats.ingest.textio import guess_split
from ccr.stages.runner import (
    BatchResult,
    Chunk,
    DoneState,
    Failure,
    Plan,
    RunOptions,
    RunSummary,
    Stage,
)

if TYPE_CHECKING:
    import polars as pl

Entry = list[Record]  # the records of one source line or entry
CHECK_ENTRIES = 65_536  # entries parsed and checked at once: one block a chunk (a shard) unless --chunk-rows is larger


@dataclass
class IngestConfig:
    format: str = option("", "the source's format", choices=formats)
    src: str = option("", "source file or directory (jsonl, csv, parquet: a directory of such files is read as one "
                          "source, its files in path order)", positional=True)
    split: str | None = option(None, "the split of every entry, over what the source or its file name says: train, "
                                     "val, test or a named test_*/val_* split (default: the source's; train for a "
                                     "new item where nothing says)")
    lang: str | None = option(None, "caption language where the format does not say (default: en)")
    modality: str | None = option(None, "image or video, where the format does not say", choices=MODALITIES)
    columns: dict[str, str] = option(help="jsonl, csv, parquet: OURS=THEIRS column mapping (repeatable)", factory=dict,
                                     flag="--column")
    mt_model: str = option("google", "nrccr: model key of the MT and back-translated rows whose file names name "
                                     "none", flag="--mt-key")
    max_chars: int = option(10_000, "longer captions are failures (a broken line, not a caption)")
    verify_media: bool = option(False, "open every media file; missing or unreadable ones become failures")


def check(cfg: IngestConfig) -> None:
    """Every option and the source path, checked before a corpus is created or a byte is hashed."""
    from ccr.formats.ingest import DIRECTORY_FORMATS, formats

    if cfg.format not in formats():
        raise CcrError(f"unknown ingest format {cfg.format!r}; choose one of: {', '.join(formats())}")
    if cfg.lang:
        languages.check(cfg.lang)
    if cfg.split and not is_split(cfg.split):
        raise CcrError(f"--split {cfg.split!r}: use one of {SPLIT_RULE}")
    if cfg.modality and cfg.modality not in MODALITIES:
        raise CcrError(f"--modality {cfg.modality!r}: use image or video")
    if cfg.max_chars < 1:
        raise CcrError(f"max_chars={cfg.max_chars}: give a positive number of characters")
    src = Path(cfg.src)
    check_source(src, cfg.format, takes_directory=cfg.format in DIRECTORY_FORMATS or cfg.format in ENTRY_READERS)
    check_columns(cfg.format, src, _files(cfg) if cfg.format in ENTRY_READERS else [src], cfg.columns)


def _read(cfg: IngestConfig) -> Iterator[Record]:
    from ccr.formats.ingest import READERS, IngestOptions

    opts = IngestOptions(split=cfg.split, lang=cfg.lang, modality=cfg.modality, columns=dict(cfg.columns),
                         mt_model=cfg.mt_model)
    if cfg.format not in ENTRY_READERS:
        return READERS[cfg.format](Path(cfg.src), opts)
    return chain.from_iterable(READERS[cfg.format](path, opts) for path in _files(cfg))


def _files(cfg: IngestConfig) -> list[Path]:
    """The files of a generic source: a directory's parts, or the one file."""
    return source_files(Path(cfg.src), cfg.format)


def plan(corpus: Corpus, cfg: IngestConfig) -> Plan:
    files = _files(cfg) if cfg.format in ENTRY_READERS else None  # listed once: the files read are those hashed

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        size = shard_entries(options)
        if files is not None:
            yield from _frame_chunks(corpus, cfg, files, done.keys, options, size)
            return
        for span in spans.spans(entries(_read(cfg)), lambda e: 1, lambda e, a, n: e, spans.done(done.keys),
                                options.limit, size):
            if not span.done:
                yield _chunk(span.start, span.parts)
            elif span.key is not None:
                yield Chunk(key=span.key, items=[], ids=[])

    return Plan(
        input_table="source",
        chunks=chunks,
        fingerprint_parts={"source": fingerprint(Path(cfg.src), files)},
        models={},
        id_of=_entry_id,
        done_by_key=True,
    )


def shard_entries(options: RunOptions) -> int:
    """Source entries per chunk: the run's chunk_rows where it sets one, else ``SHARD_ENTRIES``, so a
    table of millions of rows is tens of files."""
    return options.chunk_rows if options.chunk_rows != RunOptions.chunk_rows else spans.SHARD_ENTRIES


@dataclass
class EntryBlock:
    """The generic path's unit of work: a block of entries, already checked in file order (the
    checks of each block depend on every entry before it) while the runner wrote the block before."""

    id: str  # its first entry's
    checked: Checked


def _frame_chunks(corpus: Corpus, cfg: IngestConfig, files: list[Path], done_keys: set[str], options: RunOptions,
                  size: int) -> Iterator[Chunk]:
    """The chunks, read and checked on threads: parsing the next block (on Ray: taking the next
    parsed piece), checking this one and writing the one before overlap."""
    return ahead(_checked_chunks(corpus, cfg, files, done_keys, options, size))


def _checked_chunks(corpus: Corpus, cfg: IngestConfig, files: list[Path], done_keys: set[str], options: RunOptions,
                    size: int) -> Iterator[Chunk]:
    import polars as pl

    known = FrameKnown.load(corpus, _options(corpus, cfg))
    if options.engine == "ray":
        parts = pieces.read(cfg.format, files, dict(cfg.columns), options.ray_concurrency)
    else:
        parts = ((path, ENTRY_READERS[cfg.format](path, dict(cfg.columns))) for path in files)
    pending: _Pending | None = None
    try:
        unit = -(-size // -(-size // CHECK_ENTRIES))  # as few blocks a chunk as CHECK_ENTRIES allows, near equal
        for path, span, frame in ahead(_chunk_frames(parts, done_keys, options, size, unit)):
            known.reading(path, Path(cfg.src))
            checked = check_frame(frame, known)  # for a done range, only for what later entries are checked against
            if pending is not None and (span.done or pending.path != path or pending.end != span.start
                                        or pending.end - pending.start + len(frame) > size):
                yield pending.chunk()
                pending = None
            if span.done:
                if span.key is not None:
                    yield Chunk(key=span.key, items=[], ids=[])
                continue
            ids = frame.select(pl.concat_str(pl.lit(f"{path}:"), "line")).to_series()  # a name may hold "{}"
            pending = pending or _Pending(path, span.start, span.start)
            pending.add(span.end, EntryBlock(ids[0], checked), ids)
            if pending.end - pending.start == size:
                yield pending.chunk()
                pending = None
        if pending is not None:
            yield pending.chunk()
    finally:
        known.close()


@dataclass
class _Pending:
    """A chunk being assembled from checked blocks of contiguous entries of one file."""

    path: Path
    start: int
    end: int
    blocks: list[EntryBlock] = field(default_factory=list)
    ids: list[pl.Series] = field(default_factory=list)

    def add(self, end: int, block: EntryBlock, ids: pl.Series) -> None:
        self.end = end
        self.blocks.append(block)
        self.ids.append(ids)

    def chunk(self) -> Chunk:
        import polars as pl

        return Chunk(key=spans.key(self.start, self.end), items=self.blocks,
                     ids=pl.concat(self.ids) if len(self.ids) > 1 else self.ids[0])


def _chunk_frames(parts: Iterable[tuple[Path, Iterator[pl.DataFrame]]], done_keys: set[str], options: RunOptions,
                  size: int, unit: int) -> Iterator[tuple[Path, spans.Span[pl.DataFrame], pl.DataFrame]]:
    """Each span with its file and its entries as one frame, assembled where the blocks are parsed:
    the checker then takes a whole chunk at once instead of waiting on the parser block by block.
    Entries are numbered on across the files; a span ends where its file does."""
    import polars as pl

    first, done = 0, spans.done(done_keys)
    for path, frames in parts:
        for span in spans.spans(frames, len, lambda f, a, n: f.slice(a, n), done, options.limit, size, first, unit):
            yield path, span, pl.concat(span.parts) if len(span.parts) > 1 else span.parts[0]
            first = span.end  # spans cover every entry up to the limit, so the next file's start
        if options.limit is not None and first >= options.limit:
            return


def _options(corpus: Corpus, cfg: IngestConfig) -> FrameOptions:
    src = Path(cfg.src)
    return FrameOptions(src=src, split=cfg.split, file_split=guess_split(src.name), lang=cfg.lang or "en",
                        modality=cfg.modality, max_chars=cfg.max_chars, verify_media=cfg.verify_media,
                        root=corpus.media_root)


def _chunk(start: int, batch: list[Entry]) -> Chunk:
    return Chunk(key=spans.key(start, start + len(batch)), items=batch, ids=[_entry_id(e) for e in batch])


def _entry_id(entry: Entry | EntryBlock) -> str:
    """An entry is the input row of ingest; its id is where it stands in the source."""
    if isinstance(entry, EntryBlock):
        return entry.id
    return entry[0].source


def setup(corpus: Corpus, cfg: IngestConfig, plan_: Plan) -> Known | None:
    if cfg.format in ENTRY_READERS:
        return None  # the generic path's state travels with its chunks
    media: dict[str, tuple[Any, ...]] = {}
    if corpus.files("media"):
        for r in corpus.table("media", with_side_tables=False).iter_rows(named=True):
            media[r["media_id"]] = (r["split"], r["modality"], r["path"], r["duration"])
    captions: dict[str, str] = {}
    if corpus.files("captions"):
        df = corpus.table("captions", with_side_tables=False)
        for r in df.select("caption_id", "media_id", "lang", "text", "origin", "parent_id").iter_rows():
            captions[r[0]] = caption_hash(r[1], r[2], r[3], r[4], r[5])
    failures = corpus.failures()
    failed_before = {r["row_id"]: r["reason"] for r in failures.iter_rows(named=True)
                     if r["stage"] == "ingest" and r["table"] == "media" and r["row_id"] not in media}
    first: dict[str, Media] = {}
    for record in _read(cfg):
        if isinstance(record, Media) and record.media_id not in media:
            first.setdefault(record.media_id, record)
    return Known(media=media, first=first, failed_before=failed_before, captions=captions, root=corpus.media_root,
                 max_chars=cfg.max_chars, verify_media=cfg.verify_media)


def process(batch: Sequence[Entry | EntryBlock], known: Known | None, cfg: IngestConfig) -> BatchResult:
    if batch and isinstance(batch[0], EntryBlock):
        return _process_frames(batch)  # type: ignore[arg-type]
    assert known is not None
    out = BatchResult(rows={"media": [], "captions": []})
    for record in (r for entry in batch for r in entry):
        if isinstance(record, BadRecord):
            out.failures.append(Failure(record.row_id or record.source, record.reason, table="source",
                                        source=record.source))
            continue
        if isinstance(record, Media):
            table, row_id, (row, problem) = "media", record.media_id, check_media(record, known)
        else:
            table, row_id, (row, problem) = "captions", record.caption_id, check_caption(record, known)
        if problem:
            out.failures.append(Failure(row_id or record.source, problem, table=table, source=record.source))
        elif row is not None:
            out.rows[table].append(row)
    return out


def _process_frames(blocks: Sequence[EntryBlock]) -> BatchResult:
    out = BatchResult()
    for block in blocks:
        checked = block.checked
        out.rows.setdefault("media", []).append(checked.media)
        out.rows.setdefault("captions", []).append(checked.captions)
        out.failures.extend(checked.failures)
    return out


def open_corpus(corpus_dir: Path, cfg: IngestConfig, arguments: Mapping[str, Any]) -> Corpus:
    """Create the corpus only once the source has passed its checks (for a new corpus, once it has
    yielded its first record), so a run that fails at once leaves no empty corpus directory behind.

    The media root goes to the manifest when given, or when the corpus has none yet: next to SRC.
    """
    if not (corpus_dir / MANIFEST).exists():
        next(_read(cfg), None)  # a source the reader refuses outright (no 'images' list, ...) fails here
    corpus = Corpus.open(corpus_dir, create=True)
    given = arguments.get("media_root")
    if given is not None or corpus.media_root is None:
        src = Path(cfg.src)
        root = Path(given) if given is not None else src if src.is_dir() else src.parent
        corpus.update_manifest(media_root=str(root.resolve()))
    return corpus


STAGE = Stage(name="ingest", version="2", config=IngestConfig, plan=plan, setup=setup, process=process,
              help="read a source dataset into the corpus", check=check,
              examples=("ccr ingest ccr-demo/mine ccr-demo/toy/captions.jsonl --format jsonl", "ccr ingest ccr-demo/first100 ccr-demo/toy/captions.jsonl --format jsonl --limit 100"),
              batch_size=1024, runner=("limit", "force", "engine", "ray_concurrency"),
              limit_help="only the first N source entries (lines, or JSON entries) in file order; a later run "
                         "without it adds exactly the rest",
              provides={"media": "media rows", "captions": "captions"}, path_options=("src", "media_root"),
              required=("format", "src"), open=open_corpus,
              arguments={"media_root": "where media paths are relative to (default: next to SRC)"},
              reads_on_ray=lambda cfg: pieces.check(cfg.format))


def ingest(fmt: str, src: Path | str, corpus_dir: Path | str, *, media_root: Path | str | None = None,
           split: str | None = None, lang: str | None = None, modality: str | None = None,
           columns: dict[str, str] | None = None, verify_media: bool = False, config: Path | None = None,
           sets: list[str] | None = None, options: RunOptions | None = None,
           on_config: Callable[[str, Any], None] | None = None) -> RunSummary:
    """Ingest ``src`` into ``corpus_dir``: ``ccr ingest`` for Python callers (tests, benchmarks)."""
    from ccr.stages.table import run

    overrides = {"format": fmt, "src": str(src), "split": split, "lang": lang, "modality": modality,
                 "columns": columns or None, "verify_media": verify_media or None}
    return run("ingest", corpus_dir, config=config, sets=sets, overrides=overrides, options=options,
               arguments={"media_root": media_root}, on_config=on_config)
