"""The card (``README.md``) of a Hub export: the metadata the Hub and ``datasets`` read, then the prose.

The YAML is written with ``datasets``' and ``huggingface_hub``'s own classes (``MetadataConfigs``,
``DatasetInfosDict``, ``DatasetCardData``), so ``configs`` (data files per split) and
``dataset_info`` (features, split sizes) are what ``push_to_hub`` would write and the Hub's
viewer reads them without guessing. The body says how to load the dataset, what the columns and
feature sets mean, what the corpus holds (the same statistics as the corpus card) and where every
row came from: each stage run of the manifest with its models and revisions, config and fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.corpus import runs
from ccr.corpus.card import TAGS, languages, statistics
from ccr.corpus.corpus import Corpus
from ccr.corpus.counts import GROUPS
from ccr.formats.hf_shards import ConfigFiles

if TYPE_CHECKING:
    import polars as pl

DEFAULT_CONFIG = "captions"  # what load_dataset(DIR) returns without a config name
# What the columns stages add mean (DESIGN.md, "Column names"); the card lists those a config has.
COLUMNS = {
    "origin": "human, mt (machine translation) or bt (back-translation)",
    "parent_id": "the caption this row was translated from",
    "model": "key (slug@revision) of the model that wrote the text",
    "mt_logprob": "translate: mean token log-probability of the translation",
    "len_ratio": "translate: target over source length in tokens",
    "is_copy": "translate: the translation copies its source",
    "rt_sim": "backtranslate: cosine of the source caption and its round trip",
    "xl_sim": "score: cosine of the English caption and its translation (multilingual embedder)",
    "xm_sim": "score: cosine of the media and the translation (multilingual CLIP)",
    "dcot_conf": "score: optimal-transport confidence of the (media, translation) pair",
    "keep": "select: the pair is kept for training (missing: kept)",
    "weight": "select: the pair's training weight (missing: 1.0)",
    "noise_type": "noise inject: none, swap, drop, replace, copy or truncate",
    "decoded_duration": "features: the video's duration as decoded, in seconds",
    "features": "the feature array of the media item, [T, D] (T = 1 for a pooled image)",
}


def render_card(corpus: Corpus, dest: Path, configs: dict[str, ConfigFiles], feature_meta: dict[str, dict[str, Any]],
                scan: Callable[[str], pl.LazyFrame]) -> str:
    """The whole README.md of the export at ``dest``; ``scan(table)``: media and captions as exported
    (``--lang``/``--split``), which the languages and statistics count."""
    counts, media = (_counted(scan(table), list(GROUPS[table]), table) for table in ("captions", "media"))
    body = [
        f"# {corpus.root.name}", "",
        ("A cross-lingual cross-modal retrieval corpus built with `ccr` and exported by "
         "`ccr export --format hf`. Every table is a config; splits are the corpus's (`val` is "
         "`validation`), and the columns later stages added (scores, keep/weight, noise labels) are "
         "joined onto their rows."), "",
        "```python", "from datasets import load_dataset", "",
        f'captions = load_dataset("OWNER/NAME", "{DEFAULT_CONFIG}")  # or a local copy: load_dataset("DIR", ...)',
        "```", "",
        "## Configs", "", _config_table(configs), *_column_notes(configs),
        *_feature_sections(feature_meta),
        *statistics(corpus, counts, media),
        "## Provenance", "",
        "Every stage run that made this corpus, from its manifest (`ccr-manifest.json` holds all of it).", "",
        *_provenance(corpus),
    ]
    return f"---\n{_yaml(dest, configs, languages(counts))}\n---\n\n" + "\n".join(body)


def _counted(rows: pl.LazyFrame, keys: list[str], name: str) -> pl.DataFrame:
    """Rows per value of ``keys``, sorted as ``ccr info`` sorts them (a key the table lacks is missing)."""
    import polars as pl

    present = set(rows.collect_schema())
    keyed = rows.select([pl.col(k) if k in present else pl.lit(None, pl.String).alias(k) for k in keys])
    return keyed.group_by(keys).agg(pl.len().cast(pl.Int64).alias(name)).sort(keys, nulls_last=False).collect()


def _yaml(dest: Path, configs: dict[str, ConfigFiles], langs: list[str]) -> str:
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(language=langs or None, tags=list(TAGS))
    files, infos = {}, {}
    for name, config in configs.items():
        folder = config.out_dir.relative_to(dest).as_posix()
        files[name] = {"data_files": [{"split": split, "path": f"{folder}/{split}-*"} for split in config.splits],
                       **({"default": True} if name == DEFAULT_CONFIG else {})}
        splits = SplitDict()
        for split, written in config.splits.items():
            splits.add(SplitInfo(name=split, num_bytes=written.nbytes, num_examples=written.rows))
        infos[name] = DatasetInfo(features=Features.from_arrow_schema(config.schema), splits=splits)
    MetadataConfigs(files).to_dataset_card_data(data)
    DatasetInfosDict(infos).to_dataset_card_data(data)
    return data.to_yaml()


def _config_table(configs: dict[str, ConfigFiles]) -> str:
    lines = ["| config | split | rows | files |", "|---|---|---|---|"]
    for name, config in configs.items():
        lines += [f"| {name} | {split} | {written.rows} | {len(written.files)} |" for split, written in config.splits.items()]
    return "\n".join(lines) + "\n"


def _column_notes(configs: dict[str, ConfigFiles]) -> list[str]:
    present = {c for config in configs.values() for c in config.schema.names}
    notes = [f"- `{column}`: {meaning}" for column, meaning in COLUMNS.items() if column in present]
    return ["What the columns mean:", "", *notes, ""] if notes else []


def _feature_sections(feature_meta: dict[str, dict[str, Any]]) -> list[str]:
    if not feature_meta:
        return []
    lines = ["## Features", "",
             ("Config `features-NAME`: `media_id`, `split`, and `features`, the item's `[T, D]` array "
              "(`np.asarray(row[\"features\"])`, or `.with_format(\"numpy\")`); `features/NAME/meta.json` "
              "says what made them."), "",
             "| config | model | revision | dim | dtype | variant |", "|---|---|---|---|---|---|"]
    lines += [f"| features-{name} | {m.get('model')} | {m.get('revision')} | {m.get('dim')} | {m.get('dtype')} | "
              f"{m.get('variant')} |" for name, m in feature_meta.items()]
    return [*lines, ""]


def _provenance(corpus: Corpus) -> list[str]:
    lines: list[str] = []
    for i, run in enumerate(runs.shown(corpus), 1):
        lines += [f"### {i}. {run['stage']} ({run.get('status', '')}, {run.get('ended', '')})", "",
                  f"- fingerprint `{run.get('fingerprint', '')}`, stage version {run.get('stage_version', '')}",
                  f"- models: {_models(run.get('models', {})) or 'none'}",
                  (f"- rows in {run.get('rows_in', 0)}, out {json.dumps(run.get('rows_out', {}))}, "
                   f"failed {run.get('rows_failed', 0)}"),
                  f"- versions: {json.dumps(run.get('versions', {}), sort_keys=True)}", "",
                  "```json", json.dumps(run.get("config", {}), sort_keys=True, ensure_ascii=False), "```", ""]
    return lines or ["_no stage runs recorded_", ""]


def _models(models: dict[str, Any]) -> str:
    """``role: id@revision`` for each model a run resolved; other facts it recorded as they are."""
    return "; ".join(f"{role}: {m['id']}@{m.get('revision')}" if isinstance(m, dict) and "id" in m
                     else f"{role}: {json.dumps(m, sort_keys=True)}" for role, m in models.items())
