"""The toy CLIP and its multilingual text student, learned on rendered learning scenes.

``clip`` is a CLIP dual encoder trained contrastively on rendered scenes (video scenes: a few frames)
and every English caption template. ``mclip-text`` is a sentence-transformers student distilled the
way multilingual CLIP text encoders are made: on parallel text, with MSE to the teacher's English
text embedding, so English, German, French and Czech captions of a scene all land next to CLIP's
embedding of its English captions. The student serves ``mclip-text`` (xm_sim), ``multilingual-embedder``
(xl_sim) and the trainer's text tower (its BERT loads with ``AutoModel`` from the directory root).

Both start from the tiny builders (``ccr.testing.tiny_models``), so they keep the layouts the stages
load, with tokenizers whose pieces come from the learning captions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ccr.testing.learn.scenes import learning_scenes
from ccr.testing.learn.seeded import deterministic
from ccr.testing.tiny_models import build_tiny_clip, build_tiny_sentence_transformer
from ccr.testing.toy_corpus import TARGET_LANGS, ToyScene, render_scene, scene_caption

EN_VARIANTS = {"image": 5, "video": 2}  # English caption templates per modality
TARGET_VARIANTS = 2
CLIP_SHAPE: dict[str, int] = {
    "text_hidden": 64, "vision_hidden": 64, "layers": 2, "image_size": 64, "patch": 8, "projection_dim": 32,
}
STUDENT_SHAPE: dict[str, int] = {"hidden": 64, "layers": 2}
N_IMAGES, N_VIDEOS = 3000, 400
# video frames the CLIP learns from: where `ccr features` samples 4 and 8 frames, roughly
VIDEO_TIMES = (0.0625, 0.3125, 0.6875, 0.9375)
CLIP_STEPS, CLIP_BATCH, CLIP_LR = 600, 128, 1e-3
STUDENT_STEPS, STUDENT_BATCH, STUDENT_LR = 1500, 128, 1e-3


def _english(scene: ToyScene) -> list[str]:
    return [scene_caption(scene, "en", v) for v in range(EN_VARIANTS[scene.modality])]


def _targets(scene: ToyScene) -> list[str]:
    return [scene_caption(scene, lang, v) for lang in TARGET_LANGS for v in range(TARGET_VARIANTS)]


def _schedule(optimizer: Any, steps: int) -> Any:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    import math

    import torch

    warm = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))


def _pixels(processor: Any, scenes: list[ToyScene]) -> tuple[Any, list[list[int]]]:
    """Every image and learning video frame through the CLIP processor, and each scene's rows in it."""
    images, rows = [], []
    for scene in scenes:
        times = VIDEO_TIMES if scene.modality == "video" else (0.0,)
        rows.append(list(range(len(images), len(images) + len(times))))
        images += [render_scene(scene, t=t) for t in times]
    return processor(images=images, return_tensors="pt")["pixel_values"], rows


def _learn_clip(out: Path, scenes: list[ToyScene]) -> Path:
    """Contrastive training: each step pairs a batch of scenes (one frame of a video) with one English caption each."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    captions = [_english(s) for s in scenes]
    build_tiny_clip(out, **CLIP_SHAPE, text=[c for cs in captions for c in cs])
    model, processor = CLIPModel.from_pretrained(out), CLIPProcessor.from_pretrained(out)
    pixels, frame_rows = _pixels(processor.image_processor, scenes)
    flat = [c for cs in captions for c in cs]
    tokens = processor.tokenizer(flat, padding=True, return_tensors="pt")
    first = [0]
    for cs in captions:
        first.append(first[-1] + len(cs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=CLIP_LR, weight_decay=0.01)
    schedule = _schedule(optimizer, CLIP_STEPS)
    model.train()
    for _ in range(CLIP_STEPS):
        batch = torch.randperm(len(scenes))[:CLIP_BATCH].tolist()
        frames = [rows[int(torch.randint(len(rows), ()))] for rows in (frame_rows[i] for i in batch)]
        texts = [first[i] + int(torch.randint(first[i + 1] - first[i], ())) for i in batch]
        loss = model(input_ids=tokens["input_ids"][texts], attention_mask=tokens["attention_mask"][texts],
                     pixel_values=pixels[frames], return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval().save_pretrained(out)
    return out


def _teacher(clip: Path, texts: list[str]) -> Any:
    """CLIP's unit-length text embeddings of ``texts``."""
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    model, tokenizer = CLIPModel.from_pretrained(clip).eval(), CLIPTokenizer.from_pretrained(clip)
    with torch.inference_mode():
        out = [model.get_text_features(**tokenizer(texts[i:i + 512], padding=True, return_tensors="pt")).pooler_output
               for i in range(0, len(texts), 512)]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def _learn_student(out: Path, clip: Path, scenes: list[ToyScene]) -> Path:
    """MSE distillation: an English caption aims at its own teacher embedding, a German, French or Czech one
    at the mean of its scene's English embeddings (its captions translate none of the English templates)."""
    import torch
    from sentence_transformers import SentenceTransformer

    english = [_english(s) for s in scenes]
    targets = [_targets(s) for s in scenes]
    teacher = _teacher(clip, [c for cs in english for c in cs])
    texts, goals, k = [], [], 0
    for en, other in zip(english, targets):
        own = teacher[k:k + len(en)]
        k += len(en)
        scene_goal = torch.nn.functional.normalize(own.mean(0), dim=-1)
        texts += en + other
        goals += [*own, *[scene_goal] * len(other)]
    goal = torch.stack(goals)
    projection = CLIP_SHAPE["projection_dim"]
    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_sentence_transformer(Path(tmp), multilingual=True, output_dim=projection, **STUDENT_SHAPE,
                                        text=texts)
        model = SentenceTransformer(tmp, device="cpu")
    features = model.tokenizer(texts, padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=STUDENT_LR, weight_decay=0.01)
    schedule = _schedule(optimizer, STUDENT_STEPS)
    model.train()
    for _ in range(STUDENT_STEPS):
        batch = torch.randperm(len(texts))[:STUDENT_BATCH]
        width = int(features["attention_mask"][batch].sum(1).max())
        inputs = {name: value[batch, :width] for name, value in features.items()}
        loss = torch.nn.functional.mse_loss(model(inputs)["sentence_embedding"], goal[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval().save(str(out), create_model_card=False)
    return out


def learn(out: Path, *, seed: int = 0) -> list[Path]:
    """Write ``out/clip`` and ``out/mclip-text``, the same bytes for the same seed, thread count and torch."""
    out = Path(out)
    with deterministic(seed):
        scenes = learning_scenes(N_IMAGES, N_VIDEOS, seed=seed)
        clip = _learn_clip(out / "clip", scenes)
        student = _learn_student(out / "mclip-text", clip, scenes)
    return [clip, student]
