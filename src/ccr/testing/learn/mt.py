"""The toy Marian models, en<->de, en<->fr, en<->cs, learned on parallel toy captions.

Each direction starts from ``build_tiny_marian`` (so it keeps OPUS-MT's layout, which the translate
stages convert to CTranslate2 themselves), with SentencePiece models learned on its own side of the
parallel text, and is then trained on:

- en -> xx: every English template variant of a learning scene, paired with
  ``translation_reference`` (the target caption saying exactly what the English says);
- xx -> en: both human target variants, paired with ``english_reference``, and also every reference
  translation paired with its English source, since back-translation reads the stage's own MT
  output as well as human captions; a round trip then gives back the English caption.

The reference functions make the target a function of the source text, so the models can be exact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ccr.testing.learn.scenes import learning_scenes
from ccr.testing.learn.seeded import deterministic
from ccr.testing.tiny_models import build_tiny_marian
from ccr.testing.toy_corpus import (
    TARGET_LANGS,
    ToyScene,
    english_reference,
    scene_caption,
    translation_reference,
)

DIRECTIONS = tuple((src, tgt) for lang in TARGET_LANGS for src, tgt in (("en", lang), (lang, "en")))
EN_VARIANTS = {"image": 5, "video": 2}  # English caption templates per modality
TARGET_VARIANTS = 2
SHAPE: dict[str, int] = {"d_model": 48, "layers": 2, "heads": 4, "ffn": 96}
N_IMAGES, N_VIDEOS = 3000, 400
STEPS, BATCH, LR, DROPOUT = 1000, 64, 3e-3, 0.0
MAX_LENGTH = 64  # generation_config's limit (the stages pass their own): the longest toy caption is 22 tokens


def pairs(scenes: list[ToyScene], src: str, tgt: str) -> list[tuple[str, str]]:
    """(source, target) captions of one direction, each distinct source once, in a fixed order.

    Raises if one source would have two targets: no model could then be exact.
    """
    out: dict[str, str] = {}
    for scene in scenes:
        english = range(EN_VARIANTS[scene.modality])
        if src == "en":
            found = [(scene_caption(scene, "en", v), translation_reference(scene, v, tgt)) for v in english]
        else:
            found = [(scene_caption(scene, src, v), english_reference(scene, src, v)) for v in range(TARGET_VARIANTS)]
            found += [(translation_reference(scene, v, src), scene_caption(scene, "en", v)) for v in english]
        for source, target in found:
            if out.setdefault(source, target) != target:
                raise ValueError(f"{source!r} has two {tgt} targets: {out[source]!r} and {target!r}")
    return list(out.items())


def _batches(n: int, steps: int, seed: int) -> list[list[int]]:
    """``steps`` batches of example indices: shuffled epochs, reshuffled when one runs out."""
    rng = random.Random(seed)
    order: list[int] = []
    out = []
    for _ in range(steps):
        if len(order) < BATCH:
            epoch = list(range(n))
            rng.shuffle(epoch)
            order += epoch
        out.append(order[:BATCH])
        del order[:BATCH]
    return out


def _tensors(tokenizer: Any, data: list[tuple[str, str]], rows: list[int]) -> dict[str, Any]:
    """A padded batch: encoder ids and mask, decoder inputs (pad-started, as Marian decodes) and labels."""
    import torch

    pad = tokenizer.pad_token_id
    batch = tokenizer([data[i][0] for i in rows], text_target=[data[i][1] for i in rows], padding=True,
                      return_tensors="pt")
    labels = batch["labels"]
    decoder_inputs = torch.cat([torch.full_like(labels[:, :1], pad), labels[:, :-1]], dim=1)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "decoder_input_ids": decoder_inputs, "labels": labels.masked_fill(labels == pad, -100)}


def _train(model: Any, tokenizer: Any, data: list[tuple[str, str]], seed: int) -> None:
    """Teacher-forced cross-entropy with AdamW, warm-up then linear decay.

    The pad row of the shared embedding stays zero: CTranslate2 starts Marian's decoder from a zero
    embedding (real OPUS-MT pads are zero), while the tied output projection would otherwise train it.
    """
    import torch

    pad = torch.tensor([tokenizer.pad_token_id])
    keep_pad_zero = model.get_input_embeddings().weight.register_hook(lambda grad: grad.index_fill(0, pad, 0.0))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    warm = STEPS // 20
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (STEPS - s) / (STEPS - warm))))
    for rows in _batches(len(data), STEPS, seed):
        batch = _tensors(tokenizer, data, rows)
        labels = batch.pop("labels")
        logits = model(**batch).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    keep_pad_zero.remove()
    model.eval()


def learn_direction(out_dir: Path, src: str, tgt: str, scenes: list[ToyScene], *, seed: int = 0) -> Path:
    """One direction's model directory, in OPUS-MT's layout."""
    from transformers import MarianMTModel, MarianTokenizer

    data = pairs(scenes, src, tgt)
    text = ([s for s, _ in data], [t for _, t in data])
    with deterministic(seed):
        build_tiny_marian(out_dir, src, tgt, **SHAPE, text=text, seed=seed)
        tokenizer = MarianTokenizer.from_pretrained(out_dir)
        model = MarianMTModel.from_pretrained(out_dir, dropout=DROPOUT)
        _train(model, tokenizer, data, seed)
    model.generation_config.max_length = MAX_LENGTH
    model.save_pretrained(out_dir)
    return out_dir


def learn(out: Path, *, seed: int = 0) -> list[Path]:
    """``out/marian-{src}-{tgt}`` for the six directions, deterministic under ``seed``."""
    scenes = learning_scenes(N_IMAGES, N_VIDEOS, seed=seed)
    return [learn_direction(Path(out) / f"marian-{src}-{tgt}", src, tgt, scenes, seed=seed) for src, tgt in DIRECTIONS]
