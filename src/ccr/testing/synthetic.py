"""A corpus whose retrieval signal is learnable by design, for tests, the benchmark and smoke runs.

Design: ``concepts`` latent concepts, each a fixed random feature vector and a word in English
and German. Every media item shows ``per_item`` concepts (a combination no other item has, so val
and test items are unseen combinations); its features are the sum of its concepts' vectors plus
Gaussian noise, one row per frame (``frames`` > 1 makes a video-like ``[T, D]`` sequence with
fresh noise per frame). English captions name the concepts in two word orders and templates; the
MT caption is a word-by-word "translation" of the English one (deterministic, like a system's),
the back-translation maps it back, and the human German val/test captions use other templates,
so a model must learn words, not sentences. A model that ties each word to its concept vector
retrieves far above chance; an untrained one does not.

Three options serve methods and studies beyond the baseline, and leave the default corpus unchanged:
``scenes=True`` makes videos with a plot: each item gets its own number of frames (``per_item`` to
``frames``), cut into one contiguous scene per concept, every frame showing only its scene's
concept (plus noise), so frame counts vary within a batch and no single frame shows the item;
``descriptions=True`` adds an MLLM-like description per item (every split, as LECCR's gallery
needs) that names its concepts in English in a template no caption uses; ``mt_noise`` replaces
that share of the training MT captions by the MT caption of another item (a swap, the commonest
real MT-pair noise: fluent, on-topic for some other image), their back-translations following,
and records the truth per MT row as ``noise_type`` (``none``/``swap``) in a ``captions.synthetic``
side table, so detectors can be scored against it.

``images=True`` draws pictures instead of writing features, for towers that see pixels (CLIP
fine-tuned end to end): concept c lights cell c of a ``GRID`` x ``GRID`` board in a colour of
its own, on black, so a vision encoder must tie a place and a colour to a word.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ccr.corpus.views import derived_id, description_id

WORDS = (
    ("red", "rot"), ("blue", "blau"), ("green", "grün"), ("yellow", "gelb"), ("white", "weiß"),
    ("black", "schwarz"), ("circle", "Kreis"), ("square", "Quadrat"), ("star", "Stern"), ("triangle", "Dreieck"),
    ("dog", "Hund"), ("cat", "Katze"), ("horse", "Pferd"), ("bird", "Vogel"), ("man", "Mann"), ("woman", "Frau"),
    ("child", "Kind"), ("boat", "Boot"), ("street", "Straße"), ("park", "Park"), ("beach", "Strand"),
    ("snow", "Schnee"), ("book", "Buch"), ("ball", "Ball"), ("river", "Fluss"), ("bench", "Bank"),
    ("table", "Tisch"), ("tree", "Baum"), ("house", "Haus"), ("car", "Auto"), ("fish", "Fisch"), ("cow", "Kuh"),
)
GLUE = {"and": "und", "with": "mit", "a": "ein", "picture": "Bild", "of": "von"}
EN_DE = dict(WORDS) | GLUE
DE_EN = {de: en for en, de in EN_DE.items()}
EN_TEMPLATES = ("{0} and {1}", "a picture of {1} with {0}")
DE_HUMAN_TEMPLATES = ("{0} mit {1}", "man sieht {1} und {0}")
FEATURES = "synthetic-concepts"
GRID = 6  # cells per side of an ``images=True`` picture; one cell per concept
CELL = 8  # pixels per cell side (a tiny CLIP's patch)
MT_MODEL = "synth-mt"
MLLM_MODEL = "synth-mllm"


def _describe(names: list[str]) -> str:
    """An MLLM-style description: one sentence per concept, in templates no caption uses."""
    first, *rest = names
    return " ".join([f"in this image there is {first} .", *(f"next to it we see {n} ." for n in rest)])


def _draw(members: list[int], out: Path) -> None:
    """Concept c lights cell c of the board, in its own colour (spread over the hue circle)."""
    import colorsys

    from PIL import Image

    board = np.zeros((GRID * CELL, GRID * CELL, 3), dtype=np.uint8)
    for c in members:
        rgb = colorsys.hsv_to_rgb((c * 0.618) % 1.0, 1.0, 1.0)
        y, x = divmod(c, GRID)
        board[y * CELL:(y + 1) * CELL, x * CELL:(x + 1) * CELL] = np.asarray(rgb) * 255
    Image.fromarray(board).save(out)


def _translate(text: str, table: dict[str, str]) -> str:
    return " ".join(table.get(w, w) for w in text.split())


def _rows(split: str, media_id: str, names: list[tuple[str, str]], langs: Sequence[str], mt_models: Sequence[str],
          k_variants: int) -> list[dict[str, str]]:
    base = {"media_id": media_id, "split": split}
    rows = []
    for k in range(k_variants):
        en_id = f"{media_id}#en#{k}"
        en_text = EN_TEMPLATES[k % len(EN_TEMPLATES)].format(*(en for en, _ in names))
        rows.append(base | {"caption_id": en_id, "lang": "en", "text": en_text})
        for lang, model in itertools.product(langs if split == "train" else (), mt_models):
            mt_id = derived_id(en_id, "mt", lang, model)
            mt_text = _translate(en_text, EN_DE)
            rows.append(base | {"caption_id": mt_id, "lang": lang, "text": mt_text, "origin": "mt",
                                "parent_id": en_id, "model": model})
            rows.append(base | {"caption_id": derived_id(mt_id, "bt", "en", model), "lang": "en", "text": _translate(mt_text, DE_EN),
                                "origin": "bt", "parent_id": mt_id, "model": model})
    if split != "train":
        for lang in langs:
            human_id = f"{media_id}#{lang}#0"
            text = DE_HUMAN_TEMPLATES[len(rows) % len(DE_HUMAN_TEMPLATES)].format(*(de for _, de in names))
            rows.append(base | {"caption_id": human_id, "lang": lang, "text": text})
            rows.append(base | {"caption_id": derived_id(human_id, "mt", "en", MT_MODEL), "lang": "en",
                                "text": _translate(text, DE_EN), "origin": "mt", "parent_id": human_id,
                                "model": MT_MODEL})
    return rows


def _swap_mt(rows: list[dict[str, str]], share: float, rng: np.random.Generator) -> set[str]:
    """Give ``share`` of the train MT rows another item's MT text (their BT rows follow); returns their ids."""
    mt = [r for r in rows if r["split"] == "train" and r.get("origin") == "mt"]
    if len({r["media_id"] for r in mt}) < 2:
        raise ValueError("mt_noise needs at least two training items")
    texts = [r["text"] for r in mt]
    noisy = rng.choice(len(mt), size=round(share * len(mt)), replace=False)
    for i in noisy.tolist():
        donor = i
        while mt[donor]["media_id"] == mt[i]["media_id"]:
            donor = int(rng.integers(len(mt)))
        mt[i]["text"] = texts[donor]
    swapped = {mt[i]["caption_id"]: mt[i]["text"] for i in noisy.tolist()}
    for r in rows:
        if r.get("origin") == "bt" and r["parent_id"] in swapped:
            r["text"] = _translate(swapped[r["parent_id"]], DE_EN)
    return set(swapped)


def write_synthetic_corpus(out_dir: Path | str, *, n_train: int = 200, n_val: int = 40, n_test: int = 40,
                           concepts: int = 32, per_item: int = 2, dim: int = 32, frames: int = 1, noise: float = 0.3,
                           langs: Sequence[str] = ("de",), mt_models: Sequence[str] = (MT_MODEL,),
                           captions_per_item: int = 2, descriptions: bool = False, mt_noise: float = 0.0,
                           scenes: bool = False, images: bool = False, seed: int = 0) -> Path:
    """Write ``out_dir/source.jsonl``, ingest it into ``out_dir/corpus`` with features; returns the corpus.

    ``descriptions`` adds one description per item; ``mt_noise`` (a share in [0, 1)) swaps that
    share of the training MT captions with other items' (see the module notes); ``scenes`` makes
    videos of one scene per concept (needs ``frames >= per_item``); ``images`` draws pictures
    (``out_dir/images/``) instead of writing features.
    """
    from ccr.corpus.corpus import Commit, Corpus
    from ccr.corpus.feature_store import write_meta
    from ccr.formats.ingest.stage import ingest
    from ccr.stages.runner import RunOptions

    if images and concepts > GRID * GRID:
        raise ValueError(f"images draw one cell per concept: at most {GRID * GRID} concepts")
    if not 1 <= concepts <= len(WORDS):
        raise ValueError(f"concepts must be in 1..{len(WORDS)}")
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((concepts, dim)).astype(np.float32)
    combos = list(itertools.combinations(range(concepts), per_item))
    total = n_train + n_val + n_test
    if total > len(combos):
        raise ValueError(f"{total} items need more concept combinations than {len(combos)}; raise concepts")
    if not 0.0 <= mt_noise < 1.0:
        raise ValueError(f"mt_noise is a share of the MT captions in [0, 1), got {mt_noise}")
    picks = rng.choice(len(combos), size=total, replace=False)
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    if scenes and frames < per_item:
        raise ValueError(f"scenes needs at least one frame per concept: frames >= {per_item}")
    lengths = np.random.default_rng([seed, 2])  # scene mode's own stream: the default corpus stays as it was
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, features, described = [], [], []
    for i, (split, pick) in enumerate(zip(splits, picks, strict=True)):
        media_id = f"s{i:05d}"
        members = [int(c) for c in rng.permutation(combos[pick])]
        item_rows = _rows(split, media_id, [WORDS[c] for c in members], langs, mt_models, captions_per_item)
        if images:
            (out_dir / "images").mkdir(exist_ok=True)
            _draw(members, out_dir / "images" / f"{media_id}.png")
            item_rows = [r | {"modality": "image", "path": f"images/{media_id}.png"} for r in item_rows]
        rows += item_rows
        if scenes:
            t = int(lengths.integers(per_item, frames + 1))
            scene = np.arange(t) * per_item // t  # contiguous, near-equal scenes in the item's concept order
            signal = vectors[np.asarray(members)[scene]] * per_item  # frames average to the default signal
        else:
            t, signal = frames, vectors[members].sum(axis=0)
        features.append({"media_id": media_id,
                         "features": signal + noise * rng.standard_normal((t, dim)).astype(np.float32)})
        described.append({"description_id": description_id(media_id, "detailed", MLLM_MODEL), "media_id": media_id,
                          "model": MLLM_MODEL, "prompt_id": "detailed",
                          "text": _describe([WORDS[c][0] for c in members])})
    swapped = _swap_mt(rows, mt_noise, np.random.default_rng([seed, 1])) if mt_noise else set()
    source = out_dir / "source.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    root = out_dir / "corpus"
    ingest("jsonl", source, root, options=RunOptions(progress=False))
    corpus = Corpus.open(root)
    tables: dict[str, list[dict]] = {} if images else {f"features/{FEATURES}": features}
    if descriptions:
        tables["descriptions"] = described
    if mt_noise:
        tables["captions.synthetic"] = [{"caption_id": r["caption_id"],
                                         "noise_type": "swap" if r["caption_id"] in swapped else "none"}
                                        for r in rows if r["split"] == "train" and r.get("origin") == "mt"]
    files = {}
    for table, table_rows in tables.items():
        path = corpus.shard_path(table, "synthetic", f"s{seed}", "0")
        corpus.write_shard(table, table_rows, path)
        files[table] = str(path.relative_to(root))
    corpus.commit(Commit(stage="synthetic", fingerprint=f"s{seed}", key="0", files=files,
                         rows={table: len(table_rows) for table, table_rows in tables.items()}))
    if not images:
        write_meta(corpus, FEATURES, {"model": "synthetic", "dim": dim, "dtype": "float32",
                                      "variant": "frames" if frames > 1 else "pooled"})
    return root
