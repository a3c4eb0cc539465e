"""The ingest checks of ``checks.py`` over frames of entries, as polars expressions.

A generic source (one caption per row, each row describing its media) is checked a block of
entries at a time, with the same verdicts and the same failure texts as the record-by-record
checks (the texts come from ``checks``; only failing rows ever reach Python). What the checks
need across blocks is held as arrays, not Python objects, grown by appending and found through
hashes of their keys, never re-joined whole, so a block's cost does not grow with what came
before it: the reference description of every media id (``refs``: the corpus's row, or the
source's first description, with its line and verdict), the caption ids so far with a digest of
their content (``digests``: to tell a repeat from a clash), and for sources without caption ids
the derived ids handed out per (media, language) (a ``runs.Tally``). Each is a few dozen bytes an
id, so a source of one caption per image does not hold its millions of texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr import languages
from ccr.corpus.corpus import scan_shard
from ccr.corpus.schema import ORIGINS
from ccr.errors import CcrError
from ccr.formats.ingest import checks
from ccr.formats.ingest.digests import Digests
from ccr.formats.ingest.entries import _EXTRA, PY_WHITESPACE
from ccr.formats.ingest.refs import MediaRefs, path_hash
from ccr.formats.ingest.runs import Tally, hashes, pick
from ccr.formats.ingest.textio import guess_split, part_split
from ccr.stages.runner import Failure

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from ccr.corpus.corpus import Corpus

_KEY = ("split", "modality", "path", "duration")
_COMPARED = {"split": "split", "modality": "modality", "path": "path_hash", "duration": "duration"}  # claim's column
_LANG_BITS = 24  # a derived-id count's key: the media's reference row, then the language's code in these bits
_DIGESTED = ("media_id", "lang", "text", "origin", "parent_id")


@dataclass
class Options:
    """What the reader applies to every row (``generic._records``) and what the checks are told."""

    src: Path
    split: str | None  # --split, over the row's
    file_split: str | None  # a split word in the file's name, where the row names none
    lang: str  # where the row names none
    modality: str | None
    max_chars: int
    verify_media: bool
    root: Path | None


@dataclass
class Checked:
    media: pl.DataFrame
    captions: pl.DataFrame
    failures: list[Failure] = field(default_factory=list)


@dataclass
class FrameKnown:
    """What the checks of one block need from the corpus and from every entry before the block."""

    opts: Options  # ``src``: the file being read
    refs: MediaRefs  # split, modality, path, duration, file and line (null: the corpus's row), verdict
    seen: np.ndarray  # per row of refs: whether the source has named that media id yet
    captions: Digests  # caption_id -> digest
    counts: Tally  # (media's refs row, language's code) -> derived caption ids given so far
    langs: dict[str, int] = field(default_factory=dict)  # language -> its code in ``counts``' keys
    files: list[Path] = field(default_factory=list)  # the source's files read so far (refs' ``file``)

    @classmethod
    def load(cls, corpus: Corpus, opts: Options) -> FrameKnown:
        """The state before the source's first entry: the corpus's media references and caption
        digests. If loading fails, the files opened beside the corpus are closed here: the caller has
        no state to close yet, and a caller holding the error would keep them open."""
        import numpy as np

        known = cls(opts=opts, refs=MediaRefs(spill_dir=corpus.root), seen=np.zeros(0, bool),
                    captions=Digests(spill_dir=corpus.root), counts=Tally(corpus.root), files=[opts.src])
        try:
            known._load(corpus)
        except BaseException:
            known.close()
            raise
        return known

    def _load(self, corpus: Corpus) -> None:
        import numpy as np
        import polars as pl

        refs, captions = self.refs, self.captions
        for path in corpus.files("media"):  # a shard at a time, like the captions below
            shard = scan_shard(path)
            have = shard.collect_schema()
            media = (shard.select("media_id", *[pl.col(k) if k in have else pl.lit(None).alias(k) for k in _KEY],
                                  pl.lit(None, pl.UInt32).alias("file"), pl.lit(None, pl.Int64).alias("line"),
                                  pl.lit(None, pl.String).alias("verdict"))
                     .collect().cast({"split": pl.String, "modality": pl.String, "path": pl.String,
                                      "duration": pl.Float64}))
            refs.append(media, hashes(media["media_id"]))
        self.seen = np.zeros(refs.height, bool)
        for path in corpus.files("captions"):  # a shard at a time: the load's memory is that of one shard
            shard = scan_shard(path)
            have = shard.collect_schema()
            present = (shard.with_columns(pl.lit(None, pl.String).alias(c) for c in _DIGESTED if c not in have)
                       .select("caption_id", _digest(pl.col("text")).alias("digest")).collect())
            captions.add(hashes(present["caption_id"]), present["digest"])

    def close(self) -> None:
        """Drop the files the state keeps beside the corpus."""
        self.refs.close()
        self.captions.close()
        self.counts.close()

    def reading(self, path: Path, src: Path) -> None:
        """The entries checked next come from ``path``, a file of the source ``src`` (or ``src`` itself)."""
        if self.files[-1] != path:
            self.files.append(path)
            named = guess_split(path.name) if path == src else part_split(str(path.relative_to(src))) or \
                part_split(src.name)  # a part's own name, then its folders' (parts/val/0.jsonl), then the source's
            self.opts = replace(self.opts, src=path, file_split=named)


def check(entries: pl.DataFrame, known: FrameKnown) -> Checked:
    """The media rows, caption rows and failures of one block of entries (in line order)."""
    import polars as pl

    opts = known.opts
    source = pl.concat_str(pl.lit(f"{opts.src}:"), "line")  # not pl.format: a part's name may hold "{}"
    out = Checked(media=pl.DataFrame(), captions=pl.DataFrame())
    bad = entries["bad"].is_not_null()
    if bad.any():  # a clean block is not copied
        for row in entries.filter(bad).with_columns(source.alias("source")).iter_rows(named=True):
            out.failures.append(Failure(row["bad_id"] or row["source"], row["bad"], table="source",
                                        source=row["source"]))
        entries = entries.filter(~bad)
    rows = _as_read(entries, known)
    out.media, refs = _media(rows, known, out.failures)
    out.captions = _captions(rows, refs, known, out.failures)
    return out


def _as_read(rows: pl.DataFrame, known: FrameKnown) -> pl.DataFrame:
    """The reader's defaults (language, split, origin), and each path's hash (references hold only that)."""
    import polars as pl

    opts = known.opts
    split = pl.lit(opts.split) if opts.split else pl.coalesce("split", pl.lit(opts.file_split, pl.String))
    return rows.with_columns(pl.coalesce("lang", pl.lit(opts.lang)).alias("lang"), split.alias("split"),
                             pl.coalesce("modality", pl.lit(opts.modality, pl.String)).alias("modality"),
                             pl.coalesce("origin", pl.lit("human")).alias("origin"),
                             path_hash(pl.col("path")).alias("path_hash"))


def _derived_ids(rows: pl.DataFrame, known: FrameKnown) -> pl.DataFrame:
    """Caption ids ``MEDIA#LANG#K`` where the source gives none, K counting on over the whole source
    per (media, language): numbered within the block by a sort of their keys (the media's reference
    row, ``ref_row``, and the language's code), on from the counts of the blocks before."""
    import numpy as np
    import polars as pl

    need = np.flatnonzero(rows["caption_id"].is_null().to_numpy())
    if len(need) == 0:
        return rows
    lang = rows["lang"].gather(need)
    for name in lang.unique().to_list():
        known.langs.setdefault(name, len(known.langs))
    if len(known.langs) > 1 << _LANG_BITS:
        raise CcrError(f"{known.opts.src}: more than {1 << _LANG_BITS:,} distinct languages; check its lang column")
    keys = ((rows["ref_row"].gather(need).to_numpy().astype(np.uint64) << np.uint64(_LANG_BITS))
            + lang.replace_strict(known.langs, return_dtype=pl.UInt64).to_numpy())
    distinct, group, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(group, kind="stable")  # each key's rows in line order
    within = np.empty(len(keys), np.int64)
    within[order] = np.arange(len(keys)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    k = pl.Series(within + known.counts.get(distinct)[group])
    known.counts.add(distinct, sizes)
    parts = pl.DataFrame([rows["media_id"].gather(need), lang, k.alias("k")])
    derived = parts.select(pl.concat_str("media_id", "lang", "k", separator="#")).to_series()
    return rows.with_columns(rows["caption_id"].scatter(need, derived))


def _media(rows: pl.DataFrame, known: FrameKnown, failures: list[Failure]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each media id's first row in the source: a new id is judged once; a corpus id is compared.

    Returns the media rows to write, and the reference (``ref_*`` columns and verdict) of every
    media id of the block: looked up once per id, not once per caption."""
    import numpy as np
    import polars as pl

    opts = known.opts
    first = rows.filter(pl.col("media_id").is_first_distinct())  # rows are in line order
    ids = hashes(first["media_id"])
    at = known.refs.find(ids)
    found = at >= 0
    new = first.filter(pl.Series(~found)).select(
        "media_id", pl.col("split").fill_null(checks.DEFAULT_SPLIT), pl.col("modality").alias("claimed_modality"),
        pl.col("modality").fill_null("image"), "path", "duration",
        pl.lit(len(known.files) - 1, pl.UInt32).alias("file"), "line")
    verdicts = pl.Series("verdict", [checks.media_problem(split, modality, path, opts.root, verify=True)
                                     for split, modality, path in new.select("split", "claimed_modality",
                                                                            "path").iter_rows()], dtype=pl.String) \
        if opts.verify_media else _verdict(new).alias("verdict")
    height = known.refs.height
    new = new.with_columns(verdicts).drop("claimed_modality")
    in_corpus = np.zeros(len(at), bool)
    in_corpus[found] = ~known.seen[at[found]]  # a source's own reference is seen from its first row
    claims = first.filter(pl.Series(in_corpus))
    refs = known.refs.columns(at[in_corpus])
    differing = pl.concat([claims, refs], how="horizontal").filter(_differs()).sort("media_id")
    for claim in differing.iter_rows(named=True):  # a rerun compares every media id: only these reach Python
        problem = checks.conflict(claim["media_id"], tuple(claim[k] for k in _KEY), _ref(claim, known),
                                  "in the corpus")
        if problem:
            failures.append(Failure(claim["media_id"], problem, table="media", source=f"{opts.src}:{claim['line']}"))
    for row in new.filter(pl.col("verdict").is_not_null()).iter_rows(named=True):
        failures.append(Failure(row["media_id"], row["verdict"], table="media", source=f"{opts.src}:{row['line']}"))
    known.seen[at[in_corpus]] = True
    known.refs.append(new, pick(ids, ~found))
    known.seen = np.concatenate([known.seen, np.ones(new.height, bool)])
    at[~found] = np.arange(height, height + new.height)  # new ids were appended in block order
    refs = pl.concat([first.select("media_id"), known.refs.columns(at)], how="horizontal")
    return new.filter(pl.col("verdict").is_null()).select("media_id", *_KEY), refs


def _verdict(new: pl.DataFrame) -> pl.Expr:
    """Verdicts without opening files depend on split and modality only: judged once per pair, and
    only the pairs that fail (in a clean source, none) cost an expression."""
    import polars as pl

    verdict = pl.lit(None, pl.String)
    for split, modality in new.select("split", "claimed_modality").unique().iter_rows():
        problem = checks.media_problem(split, modality, None, None, verify=False)
        if problem is not None:
            same = pl.col("split").eq_missing(split) & pl.col("claimed_modality").eq_missing(modality)
            verdict = pl.when(same).then(pl.lit(problem)).otherwise(verdict)
    return verdict


def _captions(rows: pl.DataFrame, refs: pl.DataFrame, known: FrameKnown, failures: list[Failure]) -> pl.DataFrame:
    import polars as pl

    opts = known.opts
    rows = _derived_ids(rows.join(refs, on="media_id", how="left", maintain_order="left")  # rows stay in line order
                        .with_columns(pl.col("text").str.strip_chars(PY_WHITESPACE)), known)
    langs = rows["lang"].unique().to_list()
    length = pl.col("text").str.len_chars()
    reason = (pl.when(pl.col("caption_id") == "").then(pl.lit(checks.EMPTY_CAPTION_ID))
              .when(pl.col("text") == "").then(pl.lit(checks.EMPTY_CAPTION))
              .when(length > opts.max_chars).then(pl.lit("long"))
              .when(~pl.col("text_ok")).then(pl.lit(checks.NOT_UTF8))
              .when(~pl.col("lang").is_in([x for x in langs if languages.is_known(x)])).then(pl.lit("lang"))
              .when(~pl.col("origin").is_in(list(ORIGINS))).then(pl.lit("origin"))
              .when(_differs()).then(pl.lit("conflict"))
              .when(pl.col("verdict").is_not_null()).then(pl.lit("media")))
    rows = rows.with_columns(reason.alias("reason"), _digest(pl.col("text")).alias("digest"))
    failed = rows["reason"].is_not_null()
    passed = rows
    if failed.any():  # a clean block is not copied
        for row in rows.filter(failed).iter_rows(named=True):
            failures.append(Failure(row["caption_id"] or f"{opts.src}:{row['line']}", _reason(row, known),
                                    table="captions", source=f"{opts.src}:{row['line']}"))
        passed = rows.filter(~failed)
    ids = hashes(passed["caption_id"])
    before = known.captions.find(ids)
    first = passed["caption_id"].is_first_distinct()
    # an id new to the source is compared with its first statement in the block (when the block repeats it)
    stated = pl.col("digest") if first.all() else pl.col("digest").first().over("caption_id")
    new = first & before.is_null()
    passed = passed.with_columns(pl.coalesce(pl.lit(before), stated).alias("before"))
    clash = passed.filter(pl.col("before") != pl.col("digest"))
    for row in clash.iter_rows(named=True):
        failures.append(Failure(row["caption_id"], checks.duplicate(row["caption_id"]), table="captions",
                                source=f"{opts.src}:{row['line']}"))
    added = passed if new.all() else passed.filter(new)
    known.captions.add(pick(ids, new.to_numpy()), added["digest"])
    with_extra = pl.any_horizontal([pl.col(k).is_not_null() for k in _EXTRA])
    out = added.select("caption_id", "media_id", pl.col("ref_split").alias("split"), "lang", "text", "origin",
                       "parent_id", "model", *_EXTRA, pl.when(with_extra).then(pl.col("duration")).alias("duration"))
    return out.drop([c for c in (*_EXTRA, "duration") if out[c].null_count() == out.height])


def _differs() -> pl.Expr:
    """Whether a description states a field its reference (``ref_*``) does not (``checks.conflict``)."""
    import polars as pl

    return pl.any_horizontal([pl.col(mine).is_not_null() & (pl.col(mine) != pl.col(f"ref_{k}")).fill_null(True)
                              for k, mine in _COMPARED.items()])


def _ref(row: dict[str, Any], known: FrameKnown) -> tuple[Any, ...]:
    """The reference a row was compared with, its path as text (read back only for a failure's message)."""
    path = known.refs.path(row["ref_row"]) if row["ref_row"] is not None else None
    return row["ref_split"], row["ref_modality"], path, row["ref_duration"]


def _reason(row: dict[str, Any], known: FrameKnown) -> str:
    """The failure text of a caption the expressions refused, worded by ``checks``."""
    opts = known.opts
    mid = row["media_id"]
    kind = row["reason"]
    if kind == "long":
        return checks.too_long(len(row["text"]), opts.max_chars)
    if kind == "lang":
        return checks.unknown_language(row["lang"])
    if kind == "origin":
        return checks.unknown_origin(row["origin"])
    if kind == "conflict":
        where = "in the corpus" if row["ref_line"] is None else f"at {known.files[row['ref_file']]}:{row['ref_line']}"
        return checks.conflict(mid, tuple(row[k] for k in _KEY), _ref(row, known), where) or ""
    if kind == "media":
        return checks.media_failed(mid, row["verdict"])
    return kind


def _digest(text: pl.Expr) -> pl.Expr:
    """A caption's content (``checks.caption_hash``'s fields, ``_DIGESTED``) as one 64-bit hash."""
    import polars as pl

    fields = [pl.col("media_id"), pl.col("lang"), text, pl.col("origin"), pl.col("parent_id").fill_null("")]
    return pl.concat_str(fields, separator="\0").hash(seed=0)
