"""``ccr score``: how much to trust each MT caption, from two views and their optimal transport.

Per MT row of the chosen languages (one MT model each, ``--mt-model`` where several), into the
side table ``captions.score``:

- ``xl_sim``: cosine of the English caption and the MT caption under a multilingual sentence
  embedder (role ``multilingual-embedder``), the cross-lingual view;
- ``xm_sim``: cosine of the media's CLIP features (from the feature store, frames averaged) and the
  MT caption under a multilingual CLIP text encoder (role ``mclip-text``), the cross-modal view;
- ``dcot_conf``: the DCOT confidence of the pair within a random group of about B pairs
  (``dcot_conf.py``), the quantity ``ccr train --method dcot`` computes online; null for a pair
  left alone in its group (a group of one says nothing).

NRCCR's back-translation consistency ``rt_sim`` is the backtranslate stage's column on the same
rows; the summary and ``ccr select`` read it from there. It is deliberately not copied into this
side table: side tables are joined in name order and a later table's column replaces an earlier
one's, so a copy would freeze (or null) ``rt_sim`` against any later backtranslate run.

A DCOT group must be processed whole, so the stage's unit of work is a group: the runner's
batches are ``--batch-size`` groups, and a commit never splits a group.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ccr import paths
from ccr.config import option
from ccr.corpus.corpus import Corpus
from ccr.corpus.views import chosen_mt_rows, run_languages
from ccr.dcot_settings import DCOT_EPS, DCOT_ITERS, DCOT_RELAX
from ccr.errors import CcrError
from ccr.filter.common import SCORES
from ccr.filter.dcot_conf import make_groups
from ccr.models import (
    ResolvedModel,
    mt_languages,
    quiet_loading,
    resolve,
    resolve_entry,
    role_entry,
)
from ccr.stages.device import torch_device
from ccr.stages.runner import (
    BatchResult,
    Chunk,
    DoneState,
    Failure,
    Plan,
    RunOptions,
    Stage,
    chunk_key,
)

if TYPE_CHECKING:
    import polars as pl

SIDE_TABLE = "captions.score"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class ScoreConfig:
    lang: tuple[str, ...] = option((), "the MT languages to score, comma-separated: cs or de,fr", runtime=True,
                                   known=mt_languages)
    mt_model: tuple[str, ...] = option((), "model key of the MT rows to read, where a language has several "
                                           "(repeatable)", runtime=True)
    embedder: str = option("", "multilingual sentence embedder for xl_sim (default: ccr models, role "
                               "multilingual-embedder)", runtime=True)
    mclip_text: str = option("", "multilingual CLIP text encoder for xm_sim (default: ccr models, role mclip-text)",
                             runtime=True)
    features: str | None = option(None, "feature set NAME (default: the only pooled CLIP set in the corpus)",
                                  runtime=True)
    tiny: bool = option(False, "the tiny random stand-ins for both roles (--models random): scores are meaningless",
                        runtime=True, cli=False)
    group_size: int = option(64, "B: pairs per random DCOT group")
    view_weight: float = option(0.5, "λ in [0, 1]: the cross-lingual view's share of the DCOT cost (the trainer's "
                                     "curriculum at mid-training)")
    ot_eps: float = option(DCOT_EPS, "entropic regularisation, in units of a group's cost spread (costs are "
                                     "standardised)")
    ot_relax: float = option(DCOT_RELAX, "KL penalty on the marginals (an orphaned pair may send less); 0 = balanced")
    ot_iters: int = option(DCOT_ITERS, "Sinkhorn iterations at most: a confidence needs the plan's structure, not "
                                       "its last digit")
    seed: int = option(0, "fixes the random groups (a pure function of the row ids and this seed)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", runtime=True)
    encode_batch: int = option(128, "texts per encoder call", runtime=True)
    aliases: dict[str, str] = option(help="model name -> local path (the TOML's [models] table)", factory=dict,
                                     runtime=True, cli=False)


def _check(cfg: ScoreConfig) -> None:
    if cfg.group_size < 2:
        raise CcrError("--set group_size must be at least 2: DCOT compares each pair with the others of its group")
    if not 0.0 <= cfg.view_weight <= 1.0:
        raise CcrError("--set view_weight must be in [0, 1] (the cross-lingual view's share)")
    if cfg.ot_eps <= 0 or cfg.ot_iters < 1 or cfg.ot_relax < 0:
        raise CcrError("--set ot_eps must be positive, ot_iters at least 1 and ot_relax at least 0 (0 = balanced)")


def sentence_model(name: str, role: str, cfg: ScoreConfig, option: str) -> ResolvedModel:
    """A sentence-transformers model by name, or the role's default (tiny with ``--models random``)."""
    model = resolve(name, aliases=cfg.aliases) if name else resolve_entry(role_entry(role, tiny=cfg.tiny), cfg.aliases)
    if not (model.path / "modules.json").exists():
        raise CcrError(f"{model.id} is not a sentence-transformers model (no modules.json); "
                       f"pass one with {option} ID_OR_PATH")
    return model


def choose_features(corpus: Corpus, name: str | None) -> tuple[str, dict[str, Any]]:
    """``--features NAME``, else the only pooled CLIP feature set, else an error listing the choices."""
    names = [n for n in corpus.feature_names() if (corpus.root / "features" / n / "meta.json").exists()]
    if name:
        if name not in names:
            raise CcrError(f"no feature set {name!r} in {corpus.root}; have: {', '.join(names) or 'none'}")
        return name, corpus.features(name).meta
    pooled = [n for n in names if corpus.features(n).meta.get("variant") == "pooled"]
    if len(pooled) == 1:
        return pooled[0], corpus.features(pooled[0]).meta
    if pooled:
        raise CcrError(f"several pooled feature sets: {', '.join(pooled)}; pick the CLIP one with --features NAME")
    raise CcrError(f"no pooled CLIP feature set in {corpus.root} (have: {', '.join(names) or 'none'}); "
                   "make one with: ccr features CORPUS, or name one with --features NAME")


_VIT = re.compile(r"vit[-_/]?(b|base|l|large|h|huge|g|giant|bigg)[-_/]?(?:patch)?(\d+)")


def clip_family(model_id: str) -> str | None:
    """``ViT-B/32`` for ``openai/clip-vit-base-patch32`` or ``clip-ViT-B-32-multilingual-v1``; ``tiny`` / ``toy`` for ccr's own."""
    text = model_id.lower()
    if text.startswith(("tiny/", "toy/")):
        return text.split("/")[0]
    m = _VIT.search(text)
    return f"ViT-{m.group(1)[0].upper()}/{m.group(2)}" if m else None


def family_mismatch(features_model: str, text_model: str) -> str | None:
    """A warning when the features' CLIP and the text encoder obviously belong to different families."""
    visual, text = clip_family(features_model), clip_family(text_model)
    if visual and text and visual != text:
        return (f"features from {features_model} ({visual}) but MT captions embedded by {text_model} ({text}): "
                "xm_sim compares two unrelated spaces; pass the matching --mclip-text or --features")
    return None


def plan(corpus: Corpus, cfg: ScoreConfig) -> Plan:
    import polars as pl

    _check(cfg)
    langs = run_languages(cfg.lang)
    mt, keys = chosen_mt_rows(corpus, langs, cfg.mt_model, side_tables=False)
    embedder = sentence_model(cfg.embedder, "multilingual-embedder", cfg, "--embedder")
    mclip = sentence_model(cfg.mclip_text, "mclip-text", cfg, "--mclip-text")
    features, meta = choose_features(corpus, cfg.features)
    # an alias maps a hub name to a local path: the name is then what tells the family
    mismatch = family_mismatch(str(meta.get("model", "")), mclip.id if clip_family(mclip.id) else mclip.name)
    if mismatch:
        warnings.warn(mismatch, stacklevel=2)
    ids = mt.select("caption_id", "lang").unique().collect()
    groups = [g for lang in langs
              for g in make_groups(ids.filter(pl.col("lang") == lang)["caption_id"].to_list(), cfg.group_size, cfg.seed)]
    english = corpus.scan("captions", with_side_tables=False).select("caption_id", "text")

    def chunks(corpus: Corpus, done: DoneState, options: RunOptions) -> Iterator[Chunk]:
        part: list[list[str]] = []
        for g in done.owed_groups(groups):
            if part and sum(map(len, part)) + len(g) > options.chunk_rows:
                yield _chunk(part, mt, english)
                part = []
            part.append(g)
        if part:
            yield _chunk(part, mt, english)

    return Plan(
        input_table="captions", chunks=chunks, total=lambda: len(groups),
        fingerprint_parts={"embedder": _identity(embedder), "mclip_text": _identity(mclip),
                           "features": {"name": features, "model": meta.get("model"), "revision": meta.get("revision")}},
        models={"embedder": {**embedder.provenance(), "path": str(embedder.path)},
                "mclip_text": {**mclip.provenance(), "path": str(mclip.path)},
                "features": features, "features_model": meta.get("model"), "mt_models": keys,
                **({"warnings": [mismatch]} if mismatch else {})},
        id_of=lambda group: group[0]["caption_id"],
    )


def _identity(model: ResolvedModel) -> dict[str, str]:
    return {"id": model.id, "revision": model.revision}


def _chunk(groups: list[list[str]], mt: pl.LazyFrame, english: pl.LazyFrame) -> Chunk:
    """One commit's groups with their rows: the MT row, its media and its English parent's text."""
    import polars as pl

    ids = [i for g in groups for i in g]
    rows = (mt.filter(pl.col("caption_id").is_in(ids)).select("caption_id", "media_id", "parent_id", "text")
            .unique(subset=["caption_id"], keep="first").collect())
    parents = (english.filter(pl.col("caption_id").is_in(rows["parent_id"].drop_nulls().unique().implode()))
               .unique(subset=["caption_id"], keep="first").collect())
    en_text = dict(zip(parents["caption_id"].to_list(), parents["text"].to_list()))
    by_id = {r["caption_id"]: {**r, "en_text": en_text.get(r["parent_id"])} for r in rows.iter_rows(named=True)}
    items = [[by_id[i] for i in g if i in by_id] for g in groups]
    return Chunk(key=chunk_key(ids), items=[g for g in items if g], ids=ids)


@dataclass
class _State:
    embedder: Any
    mclip: Any
    store: Any
    device: str


def setup(corpus: Corpus, cfg: ScoreConfig, plan_: Plan) -> _State:
    from sentence_transformers import SentenceTransformer

    device = torch_device(cfg.device)
    with quiet_loading():
        embedder = SentenceTransformer(plan_.models["embedder"]["path"], device=device)
        mclip = SentenceTransformer(plan_.models["mclip_text"]["path"], device=device)
    store = corpus.features(plan_.models["features"])
    dim, text_dim = store.meta.get("dim"), mclip.get_embedding_dimension()
    if dim != text_dim:
        raise CcrError(f"features/{store.name} are {dim}-d but {plan_.models['mclip_text']['id']} embeds text in "
                       f"{text_dim}-d: they are not one CLIP space; pass the matching --mclip-text or --features")
    return _State(embedder=embedder, mclip=mclip, store=store, device=device)


def process(batch: Sequence[list[dict[str, Any]]], state: _State, cfg: ScoreConfig) -> BatchResult:
    """Score a batch of whole groups; a lone group that cannot be scored fails row by row."""
    try:
        return _score(batch, state, cfg)
    except CcrError:
        raise
    except Exception as e:  # noqa: BLE001 - the runner splits a failing batch into single groups, ending here
        if len(batch) > 1:
            raise
        reason = f"its DCOT group could not be scored: {type(e).__name__}: {e}"[:2000]
        return BatchResult(failures=[Failure(r["caption_id"], reason) for r in batch[0]])


def _encode(model: Any, texts: list[str], batch_size: int) -> Any:
    """Unit vectors of ``texts`` as a CPU float tensor; each distinct text is embedded once."""
    import torch

    unique = list(dict.fromkeys(texts))
    vectors = model.encode(unique, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True,
                           show_progress_bar=False).float().cpu()
    index = {t: i for i, t in enumerate(unique)}
    return vectors[torch.tensor([index[t] for t in texts], dtype=torch.long)]


def _score(batch: Sequence[list[dict[str, Any]]], state: _State, cfg: ScoreConfig) -> BatchResult:
    import torch
    import torch.nn.functional as F

    from ccr.ot import dual_view_confidence

    out = BatchResult(rows={SIDE_TABLE: []})
    visual: dict[str, np.ndarray] = {}
    for media_id in {r["media_id"] for g in batch for r in g}:
        if media_id in state.store:
            visual[media_id] = state.store.get(media_id).astype(np.float32).mean(axis=0)
    groups: list[list[dict[str, Any]]] = []
    for group in batch:
        ok = []
        for r in group:
            if r["en_text"] is None:
                out.failures.append(Failure(r["caption_id"], f"its English parent {r['parent_id']!r} is not in the corpus"))
            elif r["media_id"] not in visual:
                out.failures.append(Failure(r["caption_id"], f"no {state.store.name} features for media "
                                                              f"{r['media_id']!r}; run ccr features (or --retry-failed after)"))
            else:
                ok.append(r)
        groups.append(ok)
    rows = [r for g in groups for r in g]
    if not rows:
        return out
    mt_texts = [r["text"] or "" for r in rows]
    en = _encode(state.embedder, [r["en_text"] for r in rows], cfg.encode_batch)
    mt_xl = _encode(state.embedder, mt_texts, cfg.encode_batch)
    mt_xm = _encode(state.mclip, mt_texts, cfg.encode_batch)
    vis = F.normalize(torch.from_numpy(np.stack([visual[r["media_id"]] for r in rows])), dim=-1)
    xl = (en * mt_xl).sum(-1).tolist()
    xm = (vis * mt_xm).sum(-1).tolist()
    start = 0
    for group in groups:
        span = slice(start, start + len(group))
        start += len(group)
        conf: list[float | None] = [None] * len(group)
        if len(group) > 1:
            index = {m: k for k, m in enumerate(dict.fromkeys(r["media_id"] for r in group))}
            media = torch.tensor([index[r["media_id"]] for r in group])
            same = media[:, None] == media[None, :]
            conf = dual_view_confidence(en[span], mt_xl[span], vis[span], mt_xm[span], cfg.view_weight, same=same,
                                        eps=cfg.ot_eps, relax=cfg.ot_relax, max_iter=cfg.ot_iters)[0].tolist()
        for r, x, v, c in zip(group, xl[span], xm[span], conf):
            out.rows[SIDE_TABLE].append({"caption_id": r["caption_id"], "xl_sim": x, "xm_sim": v, "dcot_conf": c})
    return out


STAGE = Stage(name="score", version="2", config=ScoreConfig, plan=plan, setup=setup, process=process,
              help="score MT captions: xl_sim (English↔MT), xm_sim (visual↔MT), dcot_conf (dual-view OT)",
              examples=("ccr score ccr-demo/corpus --lang de,fr,cs --models toy --plot ccr-demo/scores.png",),
              batch_size=8, batch_help="DCOT groups per batch", needs=frozenset({"mt", "features"}),
              provides={"scores": "scores"}, smoke={"tiny": True},
              summary=lambda corpus_dir, cfg: format_summary(summarize(corpus_dir, cfg.lang, cfg.mt_model)))


# ---- summary ------------------------------------------------------------------------------------


def describe(values: np.ndarray) -> dict[str, float | int]:
    """Count, missing, mean and quantiles of one score (missing = null or NaN)."""
    finite = values[np.isfinite(values)]
    out: dict[str, float | int] = {"count": int(finite.size), "missing": int(values.size - finite.size)}
    if finite.size:
        out["mean"] = float(finite.mean())
        out.update({f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES))})
    return out


def score_values(corpus: Corpus, langs: Sequence[str], mt_model: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per language, each score column present on its MT rows as a float array (NaN = missing)."""
    import polars as pl

    rows, _ = chosen_mt_rows(corpus, langs, mt_model, side_tables=True)
    present = [c for c in SCORES if c in rows.collect_schema().names()]
    frame = rows.select("lang", *[pl.col(c).cast(pl.Float64) for c in present]).collect()
    return {lang: {c: frame.filter(pl.col("lang") == lang)[c].fill_null(math.nan).to_numpy() for c in present}
            for lang in langs}


def summarize(corpus_dir: Path | str, langs: Sequence[str], mt_model: Sequence[str] = (), *,
              plot: Path | None = None) -> dict[str, dict[str, dict[str, float | int]]]:
    """Per language and view, the statistics of the scores now in the corpus; ``plot`` also draws them."""
    if plot is not None:
        paths.output_file(plot, "--plot")
    corpus = Corpus.open(corpus_dir)
    values = score_values(corpus, run_languages(langs), mt_model)
    if plot is not None:
        from ccr.filter.plots import histograms

        columns = dict.fromkeys(c for per_lang in values.values() for c in per_lang)
        histograms(plot, {c: {lang: per_lang[c] for lang, per_lang in values.items()} for c in columns},
                   f"ccr score: {Path(corpus_dir).name}")
    return {lang: {c: describe(v) for c, v in per_lang.items()} for lang, per_lang in values.items()}


def format_summary(summary: dict[str, dict[str, dict[str, float | int]]]) -> str:
    """The summary as a plain-text table, one row per language and view."""
    stats = ["count", "missing", "mean", *(f"p{round(q * 100):02d}" for q in QUANTILES)]
    header = ["lang", "view", *stats]
    lines = [header]
    for lang, views in summary.items():
        for view, s in views.items():
            lines.append([lang, view, *(_cell(s.get(k)) for k in stats)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in lines)


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3f}"
