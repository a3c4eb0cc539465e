"""A scored corpus made on the spot, for the report's tests and its benchmark.

Design: the toy corpus's images (and videos) with their English captions; for every English
caption an MT row per language (the toy corpus's own target-language wording of the same scene)
and a back-translation; a score side table as the translate, backtranslate, score, select and
noise-inject stages would leave it. Planted facts the tests check:
- 5% of MT rows carry injected noise (`swap`: the MT text of another scene) with low `xl_sim`;
- one noisy row holds the lowest `xl_sim` (-0.5), one clean row the highest (1.0);
- a caption with empty text fails ingest (a failure row);
- media `ghost` points at an image that does not exist, with an English caption and its MT row,
  which has no scores (every score column missing);
- the first image has two MLLM descriptions and two slots;
- one validation image has a human German caption and its translate-test query (MT into English).
The bench uses the same builder at 10k and 100k MT rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ccr.corpus.corpus import Commit, Corpus
from ccr.formats.ingest.stage import ingest
from ccr.stages.runner import RunOptions
from ccr.testing.toy_corpus import scene_caption, toy_scenes, write_toy_corpus

NOISE_RATE = 0.05
MT_MODEL = "tiny@1"


@dataclass
class ScoredCorpus:
    corpus: Path
    mt_rows: int
    worst_xl: str  # caption_id with the lowest xl_sim
    best_xl: str
    noisy: list[str]
    ghost_mt: str  # the MT row whose image is missing
    query_mt: str  # the translate-test query: MT into English of a human German caption
    described_media: str
    failed_caption: str


def commit_rows(corpus: Corpus, table: str, stage: str, rows: list[dict]) -> None:
    """Shards of the runner's default size, as a stage would commit them."""
    size = RunOptions().chunk_rows
    for start in range(0, len(rows), size):
        key = f"{start // size:06d}"
        path = corpus.shard_path(table, stage, "fixture", key)
        corpus.write_shard(table, rows[start:start + size], path)
        corpus.commit(Commit(stage=stage, fingerprint="fixture", key=key,
                             files={table: str(path.relative_to(corpus.root))}, rows={table: len(rows[start:start + size])}))


def write_scored_corpus(root: Path, *, images: int = 14, videos: int = 2, langs: tuple[str, ...] = ("de", "fr"),
                        seed: int = 0) -> ScoredCorpus:
    n_val = n_test = max(1, images // 7)
    n_train = images - n_val - n_test
    source = write_toy_corpus(root / "toy", n_train=n_train, n_val=n_val, n_test=n_test, videos=videos, seed=seed,
                              target_langs=())
    scenes = {s.media_id: s for s in toy_scenes(n_train=n_train, n_val=n_val, n_test=n_test, videos=videos, seed=seed)}
    rng = np.random.default_rng(seed)
    english = [json.loads(line) for line in (source / "captions.jsonl").read_text(encoding="utf-8").splitlines()]
    english.append({"media_id": "ghost", "path": "images/ghost.png", "split": "test", "modality": "image", "lang": "en",
                    "text": "a red circle that nobody can find", "caption_id": "ghost#en#0"})
    media_ids = sorted(scenes)
    scores, noisy = [], []
    ghost_mt = ""
    with open(source / "captions.jsonl", "w", encoding="utf-8") as out:
        for row in english:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            variant = int(row["caption_id"].rsplit("#", 1)[1])
            for lang in langs:
                mt_id = f"{row['caption_id']}|mt:{lang}:{MT_MODEL}"
                is_noise = row["media_id"] != "ghost" and rng.random() < NOISE_RATE
                scene = scenes.get(media_ids[int(rng.integers(len(media_ids)))] if is_noise else row["media_id"])
                text = scene_caption(scene, lang, variant) if scene else "ein roter Kreis, den niemand findet"
                back = scene_caption(scene, "en", variant + 1) if scene else "a red circle nobody finds"
                common = {"media_id": row["media_id"], "split": row["split"], "model": MT_MODEL}
                out.write(json.dumps({**common, "caption_id": mt_id, "lang": lang, "origin": "mt",
                                      "parent_id": row["caption_id"], "text": text}, ensure_ascii=False) + "\n")
                out.write(json.dumps({**common, "caption_id": f"{mt_id}|bt:en:{MT_MODEL}", "lang": "en", "origin": "bt",
                                      "parent_id": mt_id, "text": back}, ensure_ascii=False) + "\n")
                if row["media_id"] == "ghost":
                    ghost_mt = mt_id
                    continue
                xl = float(np.clip(rng.normal(0.25 if is_noise else 0.7, 0.12), -0.2, 0.99))
                scores.append({"caption_id": mt_id, "mt_logprob": float(rng.normal(-0.6, 0.3)),
                               "rt_sim": float(np.clip(rng.normal(0.8, 0.1), 0, 1)), "xl_sim": xl,
                               "xm_sim": float(rng.normal(0.3, 0.05)), "dcot_conf": float(rng.uniform(0, 1)),
                               "keep": not is_noise, "weight": 0.2 if is_noise else 1.0,
                               "noise_type": "swap" if is_noise else "none"})
                if is_noise:
                    noisy.append(mt_id)
        out.write(json.dumps({"media_id": media_ids[0], "split": "train", "lang": "en", "text": "   ",
                              "caption_id": "broken#en#0"}) + "\n")
        val = next(r for r in english if r["split"] == "val")
        human = {"media_id": val["media_id"], "split": "val", "lang": "de", "caption_id": f"{val['media_id']}#de#0",
                 "text": scene_caption(scenes[val["media_id"]], "de", 1)}
        query = {**human, "caption_id": f"{human['caption_id']}|mt:en:{MT_MODEL}", "lang": "en", "origin": "mt",
                 "parent_id": human["caption_id"], "model": MT_MODEL, "text": scene_caption(scenes[val["media_id"]], "en", 2)}
        out.write(json.dumps(human, ensure_ascii=False) + "\n" + json.dumps(query, ensure_ascii=False) + "\n")
    if not noisy:  # a tiny corpus may draw none: plant one
        scores[0].update(noise_type="swap", keep=False, weight=0.2)
        noisy.append(scores[0]["caption_id"])
    worst = next(s for s in scores if s["caption_id"] == noisy[0])
    worst["xl_sim"] = -0.5
    best = next(s for s in scores if s["noise_type"] == "none")
    best["xl_sim"] = 1.0
    dest = root / "corpus"
    ingest("jsonl", source / "captions.jsonl", dest, options=RunOptions(progress=False))
    corpus = Corpus.open(dest)
    commit_rows(corpus, "captions.score", "score", scores)
    described = media_ids[0]
    commit_rows(corpus, "descriptions", "caption", [
        {"description_id": f"{described}|d{k}", "media_id": described, "model": "tiny/llava", "prompt_id": prompt,
         "text": text} for k, (prompt, text) in enumerate([("detailed", "A flat drawing with shapes on a plain background."),
                                                            ("objects", "Shapes: one or two coloured figures.")])])
    commit_rows(corpus, "slots", "slots", [
        {"slot_id": f"{described}|s{k}", "media_id": described, "slot": k, "text": text, "size": size}
        for k, (text, size) in enumerate([("coloured shapes", 2), ("plain background", 1)])])
    corpus.append_run({"stage": "score", "status": "complete", "ended": "2026-11-26T10:00:00", "seconds": 1.25,
                       "models": {"embedder": {"id": "tiny/minilm", "revision": "tiny-v1"}},
                       "rows_in": len(scores), "rows_out": {"captions.score": len(scores)}, "rows_failed": 0})
    return ScoredCorpus(corpus=dest, mt_rows=len(english) * len(langs) + 1, worst_xl=worst["caption_id"],
                        best_xl=best["caption_id"], noisy=noisy, ghost_mt=ghost_mt, query_mt=query["caption_id"],
                        described_media=described, failed_caption="broken#en#0")
