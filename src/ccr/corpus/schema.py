"""Column types of the corpus tables (DESIGN.md, "The corpus directory" and "Column names").

Shards are written with these types so that shards from different stages concatenate without
guessing; columns a stage adds beyond these keep the type the stage gave them.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 1

ID_COLUMN = {
    "media": "media_id",
    "captions": "caption_id",
    "descriptions": "description_id",
    "slots": "slot_id",
    "failures": "failure_id",
}

# The columns every row of a table has (DESIGN.md, "The corpus directory"); stages add scores beside them.
BASE_COLUMNS = {
    "media": ("media_id", "split", "modality", "path", "duration"),
    "captions": ("caption_id", "media_id", "split", "lang", "text", "origin", "parent_id", "model"),
    "descriptions": ("description_id", "media_id", "model", "prompt_id", "text"),
    "slots": ("slot_id", "media_id", "slot", "text", "size"),
    "failures": ("failure_id", "table", "row_id", "stage", "fingerprint", "reason", "source"),
}

ORIGINS = ("human", "mt", "bt")
MODALITIES = ("image", "video")
# Splits are train, val and test, and named evaluation sets: benchmarks ship several test sets
# (Multi30K: test_2016_flickr, test_2017_flickr, test_2017_mscoco, test_2018_flickr), which keep
# their names so that one corpus holds them side by side and `ccr evaluate --split test_2017_flickr`
# scores one of them. A name goes into file names (eval/{split}.{lang}.json): a narrow alphabet.
EVAL_SPLIT = r"(val|test)(_[a-z0-9][a-z0-9_]*)?"  # a regex polars can take too (anchored: ^...$)
SPLIT_RULE = "train, val, test or a named test_*/val_* split such as test_2017_flickr"


def is_split(name: object) -> bool:
    return name == "train" or is_eval_split(name)


def is_eval_split(name: object) -> bool:
    """A split whose captions are evaluation queries: val and test, named ones included."""
    return isinstance(name, str) and re.fullmatch(EVAL_SPLIT, name) is not None


def column_types() -> dict[str, dict[str, object]]:
    """Polars dtypes per table; a function so that importing this module stays free of polars."""
    import polars as pl

    s, f, i = pl.String, pl.Float64, pl.Int64
    return {
        "media": {"media_id": s, "split": s, "modality": s, "path": s, "duration": f},
        "captions": {
            "caption_id": s, "media_id": s, "split": s, "lang": s, "text": s, "origin": s,
            "parent_id": s, "model": s,
            "qid": s, "duration": f, "relevant_windows": pl.List(pl.List(f)),
            "relevant_clip_ids": pl.List(i), "saliency_scores": pl.List(pl.List(i)),
            "mt_logprob": f, "len_ratio": f, "is_copy": pl.Boolean, "rt_sim": f, "xl_sim": f,
            "xm_sim": f, "dcot_conf": f, "keep": pl.Boolean, "weight": f, "noise_type": s,
        },
        "descriptions": {"description_id": s, "media_id": s, "model": s, "prompt_id": s, "text": s},
        "slots": {"slot_id": s, "media_id": s, "slot": i, "text": s, "size": i},
        "failures": {
            "failure_id": s, "table": s, "row_id": s, "stage": s, "fingerprint": s, "reason": s, "source": s,
        },
    }


def base_table(name: str) -> str:
    """``captions.backtranslate`` (a side table) -> ``captions``."""
    return name.split(".", 1)[0]
