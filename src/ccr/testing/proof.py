"""What a demo run proved, measured on its own output against the toy corpus's ground truth.

A demo that only runs shows that files appear; these figures show that each stage's output carries
signal: the MT is right (exact match against the reference translation of every caption), the
scores find planted noise, the trained models retrieve far above chance (German retrieval by models
that saw machine-translated German only), and the descriptions name what the pictures show. With
the random stand-ins the same figures come out near chance, which is the point of printing them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from math import comb
from pathlib import Path
from typing import Any

from ccr.corpus.corpus import Corpus
from ccr.testing.learn.describer import names_objects, slot_purity
from ccr.testing.toy_corpus import ToyScene

RECALLS = (1, 5, 10)


def chance_recall(k: int, gallery: int, relevant: int = 1) -> float:
    """Recall@k in percent of a random ranking: the chance that one of ``relevant`` items is in the top k."""
    if gallery <= 0:
        return 0.0
    k = min(k, gallery)
    return 100.0 * (1 - comb(gallery - relevant, k) / comb(gallery, k))


def chance_sumr(n_queries: int, n_gallery: int, directions: str) -> float:
    """SumR of a random ranking under an eval file's protocol (one query caption per item or several)."""
    per_item = max(1, round(n_queries / max(n_gallery, 1)))
    t2v = sum(chance_recall(k, n_gallery) for k in RECALLS)
    v2t = sum(chance_recall(k, n_queries, per_item) for k in RECALLS)
    return t2v + (v2t if "v2t" in directions else 0.0)


def mt_quality(corpus: Corpus, references: Path) -> dict[str, dict[str, float]]:
    """Per direction (``en-de``, ``de-en``, ...): exact-match rate of the MT rows against the reference
    translation of their source, and the share of distinct sources whose outputs are distinct."""
    import polars as pl

    gold = pl.read_ndjson(references).rename({"caption_id": "parent_id", "text": "reference"})
    captions = corpus.table("captions", with_side_tables=False).select("caption_id", "lang", "text", "origin",
                                                                        "parent_id")
    sources = captions.select(pl.col("caption_id").alias("parent_id"), pl.col("lang").alias("source_lang"),
                              pl.col("text").alias("source"))
    mt = (captions.filter(pl.col("origin") == "mt").join(sources, on="parent_id")
          .join(gold, on=["parent_id", "lang"]))
    out: dict[str, dict[str, float]] = {}
    for (src, tgt), rows in sorted(mt.group_by("source_lang", "lang"), key=lambda g: g[0]):
        pairs = rows.select("source", "text").unique()
        distinct = pairs.group_by("text").len().filter(pl.col("len") == 1).height
        out[f"{src}-{tgt}"] = {"rows": rows.height,
                               "exact_match": float((rows["text"] == rows["reference"]).mean()),
                               "distinct": distinct / max(pairs["source"].n_unique(), 1)}
    return out


def noise_detection(noise_eval: Path, lang: str = "de") -> dict[str, float]:
    """AUROC of each score against the planted noise, from ``ccr noise eval``'s JSON."""
    scores = json.loads(noise_eval.read_text())["languages"].get(lang, {}).get("scores", {})
    return {name: figures["auroc"] for name, figures in scores.items() if figures.get("auroc") is not None}


def retrieval(eval_file: Path) -> dict[str, float]:
    """SumR of a run's test evaluation beside a random ranking's under the same protocol."""
    result = json.loads(eval_file.read_text())
    chance = chance_sumr(result["n_queries"], result["n_gallery"], result["protocol"]["sumr"])
    sumr = result["metrics"]["sumr"]
    return {"sumr": sumr, "chance_sumr": chance, "times_chance": sumr / chance if chance else 0.0}


def descriptions(corpus: Corpus, scenes: Sequence[ToyScene], split: str = "test") -> dict[str, float]:
    """The share of ``split``'s items whose descriptions name exactly their objects, and the slots' purity."""
    by_id = {s.media_id: s for s in scenes if s.split == split}
    table = corpus.table("descriptions", with_side_tables=False)
    named = [names_objects(text, by_id[media_id]) for media_id, text in zip(table["media_id"], table["text"])
             if media_id in by_id]
    return {"names_objects": sum(named) / max(len(named), 1), "slot_purity": slot_purity(corpus, scenes)}


def prove(work_dir: Path, source: Path, scenes: Sequence[ToyScene], runs: Sequence[str],
          lang: str = "de") -> dict[str, Any]:
    """Every figure, from the demo's corpus, runs and noise evaluation in ``work_dir``."""
    corpus = Corpus.open(work_dir / "corpus")
    return {
        "mt": mt_quality(corpus, source / "references.jsonl"),
        "noise_auroc": noise_detection(work_dir / "noise-eval" / "noise_eval.json", lang),
        "retrieval": {run: retrieval(work_dir / "runs" / run / "eval" / f"test.{lang}.json") for run in runs},
        "descriptions": descriptions(corpus, scenes),
    }


def proof_lines(proof: dict[str, Any]) -> list[str]:
    """The figures as the demo prints them, each saying how it was measured."""
    lines = ["MT against the toy references (exact-match rate; distinct outputs per distinct source):"]
    lines += [f"  {pair}: {f['exact_match']:.1%} exact, {f['distinct']:.1%} distinct ({f['rows']} rows)"
              for pair, f in proof["mt"].items()]
    aurocs = ", ".join(f"{name} {auroc:.3f}" for name, auroc in proof["noise_auroc"].items())
    lines.append("planted 20% swap noise in German MT rows, AUROC per score: "
                 + (aurocs or "none measurable (no planted swap changed a text)"))
    lines += [f"German test retrieval, trained on machine-translated German only ({run}): SumR {f['sumr']:.1f} "
              f"= {f['times_chance']:.1f}x a random ranking's {f['chance_sumr']:.1f}"
              for run, f in proof["retrieval"].items()]
    d = proof["descriptions"]
    lines.append(f"descriptions naming exactly the objects of each test scene: {d['names_objects']:.1%}; "
                 f"slot purity {d['slot_purity']:.1%}")
    return lines
