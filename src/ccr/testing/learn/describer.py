"""A LLaVA describer learned on the toy domain, so ``ccr caption`` and ``ccr slots`` carry signal.

The model is ``build_tiny_llava``'s layout (CLIP vision tower, Llama, LLaVA processor and chat
template) at a size that can learn. The vision tower starts from scratch and is first warmed up on
what each position of a learning scene holds; then the whole model is trained end to end on
learning scenes, teacher-forced on the description only, with exactly the input the caption stage
gives it (the ``detailed`` prompt, one image, or a video's frames as images in one turn). Its answer is one sentence per object and one for the background, so
``ccr slots`` splits a description into sentences that are each about one thing; ``names_objects``
and ``slot_purity`` measure the answers against the scenes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccr.caption.prompts import PROMPTS
from ccr.caption.slots import cluster, segments
from ccr.testing.learn.scenes import learning_scenes
from ccr.testing.learn.seeded import deterministic
from ccr.testing.tiny_models import build_tiny_llava
from ccr.testing.toy_corpus import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    VIDEO_FPS,
    VIDEO_FRAMES,
    ToyScene,
    render_scene,
)

if TYPE_CHECKING:
    import torch

    from ccr.corpus.corpus import Corpus

PROMPT = PROMPTS["detailed"]  # the caption stage's default prompt; the demo asks with it
FRAMES = 4  # the caption stage's default --frames; LLaVA-1.5 takes them as four images in one turn
SHAPE = {"image_size": 64, "patch": 16, "hidden": 64, "layers": 3, "feature_layer": -1, "n_merges": 220}
N_IMAGES, N_VIDEOS = 10_000, 1_500
WARM_UP_STEPS, STEPS, BATCH, LR = 2000, 5000, 32, 2e-3

_ON = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
_PAIR = re.compile(rf"\b({'|'.join(COLOURS)})\s+({'|'.join(SHAPES)})s?\b", re.IGNORECASE)


def describe(scene: ToyScene) -> str:
    """The answer the describer learns: objects in a fixed position order, then the background."""
    if scene.motion_to is not None:
        obj = scene.objects[0]
        first = f"A {obj.size} {obj.colour} {obj.shape} moves from the {obj.position} to the {scene.motion_to}."
        return f"{first} The background is {scene.background}."
    objects = sorted(scene.objects, key=lambda o: POSITIONS.index(o.position))
    sentences = [f"There is a {o.size} {o.colour} {o.shape} {_ON[o.position]}." for o in objects]
    return " ".join([*sentences, f"The background is {scene.background}."])


def named_pairs(text: str) -> set[tuple[str, str]]:
    """The (colour, shape) pairs a text names, as "red circle" or "red circles"."""
    return {(c.lower(), s.lower()) for c, s in _PAIR.findall(text)}


def names_objects(description: str, scene: ToyScene) -> bool:
    """Whether the description names exactly the scene's objects by colour and shape (size and place aside)."""
    return named_pairs(description) == {(o.colour, o.shape) for o in scene.objects}


def _about(sentence: str, scene: ToyScene) -> int | str | None:
    """The object (index) or background a sentence is about, None when it names nothing of the scene rightly."""
    pairs = named_pairs(sentence)
    hits = [i for i, o in enumerate(scene.objects) if (o.colour, o.shape) in pairs]
    if len(hits) == 1 and len(pairs) == 1:
        return hits[0]
    if not pairs and "background" in sentence.lower() and scene.background in sentence.lower():
        return "background"
    return None


def purity(slot_sentences: Sequence[Sequence[str]], scene: ToyScene) -> tuple[int, int]:
    """(sentences about their slot's majority object, sentences) over one item's slots.

    A sentence about nothing of the scene never counts towards a majority, so wrong descriptions
    lower the figure as much as mixed slots do.
    """
    agree = total = 0
    for sentences in slot_sentences:
        labels = Counter(label for s in sentences if (label := _about(s, scene)) is not None)
        agree += max(labels.values(), default=0)
        total += len(sentences)
    return agree, total


def slot_purity(corpus: Corpus, scenes: Sequence[ToyScene]) -> float:
    """The share of slot sentences about their slot's majority object, over every item ``ccr slots`` grouped.

    A slot of one sentence is read from the slots table as it stands; an item with a larger slot
    has its sentences regrouped by the stage's own ``segments`` and ``cluster`` with the embedder
    named in the slot features, which gives the stage's grouping again.
    """
    import polars as pl

    by_id = {s.media_id: s for s in scenes}
    slots = corpus.scan("slots").unique(subset=["slot_id"], keep="last").sort("media_id", "slot").collect()
    texts = corpus.scan("descriptions").group_by("media_id").agg(pl.col("text").sort_by("description_id")).collect()
    descriptions = dict(zip(texts["media_id"], texts["text"]))
    agree = total = 0
    for (media_id,), item in slots.filter(pl.col("size") > 0).group_by("media_id", maintain_order=True):
        if item["size"].max() == 1:
            groups = [[text] for text in item["text"]]
        else:
            store = corpus.features(item["slot_id"][0].split("|")[1])
            groups = _regroup(descriptions[media_id], store.meta["model"], store.meta["k"])
        a, t = purity(groups, by_id[media_id])
        agree, total = agree + a, total + t
    return agree / max(total, 1)


def _regroup(texts: Sequence[str], embedder: str, k: int) -> list[list[str]]:
    from sentence_transformers import SentenceTransformer

    from ccr.models import resolve

    segs = segments(texts)
    model = SentenceTransformer(str(resolve(embedder).path), device="cpu")
    labels = cluster(model.encode(segs, normalize_embeddings=True, convert_to_numpy=True), k)
    return [[s for s, label in zip(segs, labels) if label == c] for c in range(int(labels.max()) + 1)]


# --- learning -----------------------------------------------------------------------------------


def frame_times() -> list[float]:
    """Render times of the frames the caption stage samples from a toy video (centres of equal segments,
    each shown frame being the last one that started before that instant)."""
    from ccr.stages.media import Sampling

    times = Sampling(frames=FRAMES).times(VIDEO_FRAMES / VIDEO_FPS)
    return [int(t * VIDEO_FPS + 1e-9) / (VIDEO_FRAMES - 1) for t in times]


def _chat(processor: Any, is_video: bool) -> str:
    images = [{"type": "image"}] * (FRAMES if is_video else 1)
    message = [{"role": "user", "content": [*images, {"type": "text", "text": PROMPT.text(is_video)}]}]
    return processor.apply_chat_template(message, add_generation_prompt=True)


class _Examples:
    """Pixels and token ids of the learning scenes of one modality, the prompt shared by all."""

    def __init__(self, processor: Any, scenes: Sequence[ToyScene], is_video: bool):
        import torch

        self.scenes = list(scenes)
        self.images = [render_scene(s, t=t) for s in scenes for t in (frame_times() if is_video else (0.0,))]
        self.image_processor = processor.image_processor
        self.per_item = FRAMES if is_video else 1
        self.batch_size = BATCH // 2 if is_video else BATCH  # four frames each: fewer items keep a step's cost near
        sample = processor(text=[_chat(processor, is_video)], images=self.images[:self.per_item], return_tensors="pt")
        self.prompt = sample["input_ids"][0]
        tokenizer = processor.tokenizer
        self.answers = [torch.tensor([*tokenizer(" " + describe(s), add_special_tokens=False)["input_ids"],
                                      tokenizer.eos_token_id]) for s in scenes]

    def batch(self, picked: torch.Tensor, pad: int) -> dict[str, torch.Tensor]:
        """Prompt + answer rows, right-padded (the prompts are equal, so positions match generation),
        labelled on the answer tokens only."""
        import torch

        answers = [self.answers[i] for i in picked.tolist()]
        width = len(self.prompt) + max(len(a) for a in answers)
        ids = torch.full((len(answers), width), pad)
        labels = torch.full((len(answers), width), -100)
        mask = torch.zeros((len(answers), width), dtype=torch.long)
        for row, answer in enumerate(answers):
            end = len(self.prompt) + len(answer)
            ids[row, :end] = torch.cat([self.prompt, answer])
            labels[row, len(self.prompt):end] = answer
            mask[row, :end] = 1
        frames = [self.images[i * self.per_item + k] for i in picked.tolist() for k in range(self.per_item)]
        pixels = self.image_processor(frames, return_tensors="pt")["pixel_values"]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": pixels}


def _warm_up_vision(model: Any, images: _Examples) -> None:
    """Teach the vision tower what each position holds (shape and size; colour) and the background
    colour, before the language model leans on it.

    Through the language model alone the tower learns colours and places but not shapes in a few
    minutes: the description loss reaches it weakly. A throwaway linear head over the patch features
    gives it that signal directly on the same learning scenes; the description training then tunes
    tower and language model together.
    """
    import torch

    tower = model.model.vision_tower
    colours = sorted(COLOURS)
    # per position: 0 = nothing there, else 1 + (shape, size) index; then 0 = nothing, else 1 + colour
    sizes = (1 + len(SHAPES) * len(SIZES), 1 + len(colours))
    targets = torch.zeros((len(images.scenes), 2 * len(POSITIONS) + 1), dtype=torch.long)
    for row, scene in enumerate(images.scenes):
        for obj in scene.objects:
            at = 2 * POSITIONS.index(obj.position)
            targets[row, at] = 1 + SHAPES.index(obj.shape) * len(SIZES) + SIZES.index(obj.size)
            targets[row, at + 1] = 1 + colours.index(obj.colour)
        targets[row, -1] = colours.index(scene.background)
    widths = [*sizes * len(POSITIONS), len(colours)]
    config = tower.config
    head = torch.nn.Linear(config.hidden_size, sum(widths))
    optimiser = torch.optim.AdamW([*tower.parameters(), *head.parameters()], lr=LR)
    tower.train()
    for _ in range(WARM_UP_STEPS):
        picked = torch.randint(len(images.scenes), (BATCH,))
        pixels = images.image_processor([images.images[i] for i in picked.tolist()], return_tensors="pt")["pixel_values"]
        # the mean of the patches the LM sees: what its attention reads before it has learned where to look
        features = tower(pixel_values=pixels).last_hidden_state[:, 1:].mean(dim=1)
        logits = head(features).split(widths, dim=1)
        loss = sum(torch.nn.functional.cross_entropy(out, targets[picked, k]) for k, out in enumerate(logits))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def _train(model: Any, examples: Sequence[_Examples], weights: Sequence[float], pad: int) -> list[float]:
    """AdamW with warm-up and cosine decay; each step draws one modality, then a batch of it."""
    import math

    import torch

    tower = list(model.model.vision_tower.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in tower)]
    # the warmed-up tower moves slowly, so the language model's first noisy steps do not undo it
    optimiser = torch.optim.AdamW([{"params": tower, "lr": LR / 10}, {"params": rest}], lr=LR, weight_decay=0.01)
    warmup = STEPS // 20
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS)))
    model.train()
    losses = []
    for _ in range(STEPS):
        kind = examples[int(torch.multinomial(torch.tensor(weights), 1))]
        picked = torch.randint(len(kind.answers), (kind.batch_size,))
        loss = model(**kind.batch(picked, pad)).loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
    return losses


def learn(out: Path, *, seed: int = 0) -> list[Path]:
    """Learn the describer on learning scenes and write it to ``out/llava``; returns the files written."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    scenes = learning_scenes(N_IMAGES, N_VIDEOS, seed=seed)
    target = Path(out) / "llava"
    text = [describe(s) for s in scenes] + [PROMPT.text(v) for v in (False, True)]
    with deterministic(seed), tempfile.TemporaryDirectory() as tmp:
        build_tiny_llava(Path(tmp), text=text, seed=seed, **SHAPE)
        processor = AutoProcessor.from_pretrained(tmp)
        model = LlavaForConditionalGeneration.from_pretrained(tmp)
        images = _Examples(processor, [s for s in scenes if s.modality == "image"], is_video=False)
        videos = _Examples(processor, [s for s in scenes if s.modality == "video"], is_video=True)
        _warm_up_vision(model, images)
        _train(model, (images, videos), (0.8, 0.2), processor.tokenizer.pad_token_id)
        model.eval()
        if target.exists():
            shutil.rmtree(target)
        model.save_pretrained(target)
        processor.save_pretrained(target)
    return sorted(p for p in target.rglob("*") if p.is_file())
