"""The evaluation protocol a result was scored under: recorded beside its numbers, checked before comparing.

Two SumRs are only comparable when they were scored the same way. Every ``eval/{split}.{lang}.json``
carries a ``protocol`` block, and ``ccr evaluate --compare`` refuses to put rows with different
blocks in one table unless asked. Retrieval records the query source (native queries, or fused with
their xx->en machine translation at a weight, NRCCR's translate-test), the gallery (``captioned``:
the items with captions in the query language, or the whole ``split``), how many queries and gallery
items there were, and which directions SumR adds (both, as NRCCR does, or text-to-video only, as
RIVRL's README reports it). Grounding records the query source, counts, clip length and metric set.

Counts differ between languages by nature (Multi30K's de and cs test sets differ), so rows of
different languages must agree on everything else; rows of one language must agree in full. A result
written before the block existed has the protocol ``unknown``, which matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

SumR = Literal["both", "t2v"]
SUMR_DIRECTIONS = {"both": "t2v+v2t", "t2v": "t2v"}
SUMR_KEY = {"t2v+v2t": "sumr", "t2v": "t2v_sumr"}  # the metric that is "SumR" under each protocol
COUNTS = ("n_queries", "n_gallery", "n_videos")
UNKNOWN: dict[str, Any] = {"task": "unknown"}


def retrieval(*, translate_test_weight: float | None, translate_model: str | None, gallery: str, n_queries: int,
              n_gallery: int, sumr: SumR = "both") -> dict[str, Any]:
    """The block of a retrieval result; a weight of none or 0 means native queries only."""
    fused = bool(translate_test_weight)
    return {"task": "retrieval", "queries": "native+xx->en MT" if fused else "native",
            "translate_test_weight": float(translate_test_weight) if fused else 0.0,
            "translate_model": translate_model if fused else None, "gallery": gallery,
            "n_queries": n_queries, "n_gallery": n_gallery, "sumr": SUMR_DIRECTIONS[sumr]}


def grounding(*, queries: str, query_model: str | None, n_queries: int, n_videos: int, clip_length: float,
              metrics: str) -> dict[str, Any]:
    """The block of a grounding result: which query rows, how many over how many videos, clip length, metrics."""
    return {"task": "grounding", "queries": queries, "query_model": query_model, "n_queries": n_queries,
            "n_videos": n_videos, "clip_length": clip_length, "metrics": metrics}


def of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A result's protocol; results written before protocols were recorded are ``unknown``."""
    return dict(record.get("protocol") or UNKNOWN)


def sumr_key(protocol: Mapping[str, Any]) -> str:
    return SUMR_KEY.get(protocol.get("sumr", "t2v+v2t"), "sumr")


def describe(protocol: Mapping[str, Any], *, counts: bool = True) -> str:
    """One line for tables and logs, e.g. ``native queries; captioned gallery; SumR t2v+v2t; 40 queries x 40 items``."""
    task = protocol.get("task")
    if task == "retrieval":
        queries = "native queries"
        if protocol["translate_test_weight"]:
            model = f", {protocol['translate_model']}" if protocol.get("translate_model") else ""
            queries += f" + xx->en MT at weight {protocol['translate_test_weight']:g}{model}"
        parts = [queries, f"{protocol['gallery']} gallery", f"SumR {protocol['sumr']}"]
    elif task == "grounding":
        model = f" ({protocol['query_model']})" if protocol.get("query_model") else ""
        parts = [f"{protocol['queries']} queries{model}", f"{protocol['clip_length']:g} s clips",
                 f"{protocol['metrics']} metrics"]
    else:
        return "unknown (scored before protocols were recorded: run ccr evaluate again)"
    return "; ".join(parts + ([size(protocol)] if counts else []))


def size(protocol: Mapping[str, Any]) -> str:
    """How many queries against how many items, e.g. ``40 queries x 40 items``; "" when unknown."""
    if protocol.get("task") == "retrieval":
        return f"{protocol['n_queries']} queries x {protocol['n_gallery']} items"
    if protocol.get("task") == "grounding":
        return f"{protocol['n_queries']} queries over {protocol['n_videos']} videos"
    return ""


def difference(a: Mapping[str, Any], b: Mapping[str, Any], *, same_lang: bool) -> str | None:
    """The first field in which two protocols differ, as ``field a vs b``; None when they agree.

    Counts are compared only between rows of one language.
    """
    for key in dict.fromkeys([*a, *b]):
        if key in COUNTS and not same_lang:
            continue
        if a.get(key) != b.get(key):
            return f"{key} {_value(a, key)} vs {_value(b, key)}"
    return None


def _value(protocol: Mapping[str, Any], key: str) -> str:
    return "unknown" if protocol.get("task") == "unknown" and key != "task" else str(protocol.get(key))
