"""The scenes the toy models learn from: drawn from generator seeds no corpus uses, and with no scene
whose content (background, objects, motion) appears in a demo or test corpus.

A model that had seen the demo's scenes would "prove" nothing on them. Seeds alone do not keep the
sets apart, since the content space is small (a one-object video is one of 2,240), so every learning
scene is checked against the held-out contents: the first ``HELD_OUT_IMAGES`` image scenes of every
seed below ``HELD_OUT_SEEDS`` (image content does not depend on the corpus size; corpora use seeds
0-3 and at most 280 images), and every scene of the corpora that have videos, listed by name (video
content follows the number of images drawn before it, so no blanket rule leaves any video over).
A new corpus with videos joins ``HELD_OUT_CORPORA``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ccr.testing.toy_corpus import ToyScene, toy_scenes

LEARN_SEED = 1_000  # learning draws from seeds LEARN_SEED, LEARN_SEED + 1, ...; corpora use small seeds
HELD_OUT_SEEDS = 8
HELD_OUT_IMAGES = 512
# the demo's corpus (ccr demo writes it; big enough that a 3x-chance retrieval SumR can be reached)
DEMO_CORPUS: dict[str, Any] = {"n_train": 160, "n_val": 40, "n_test": 40, "videos": 4}
# the corpora with videos (held out for every seed below HELD_OUT_SEEDS): the demo, test_toy_corpus,
# the Ray cluster test, tests/vision's media corpus, tiny_models' training text, tests/report's scored corpus
HELD_OUT_CORPORA: tuple[dict[str, Any], ...] = (
    DEMO_CORPUS,
    {"videos": 4},
    {"n_train": 4, "n_val": 1, "n_test": 1, "videos": 1},
    {"n_train": 4, "n_val": 1, "n_test": 1, "videos": 3},
    {"n_train": 40, "n_val": 0, "n_test": 0, "videos": 8},
    {"n_train": 12, "n_val": 1, "n_test": 1, "videos": 2},
)


def content(scene: ToyScene) -> tuple[Any, ...]:
    """What a scene shows, whatever its id and split."""
    return scene.modality, scene.background, scene.objects, scene.motion_to


@functools.cache
def held_out() -> frozenset[tuple[Any, ...]]:
    """The contents of every scene a demo or test corpus may show."""
    seen = {content(s) for seed in range(HELD_OUT_SEEDS)
            for s in toy_scenes(n_train=HELD_OUT_IMAGES, n_val=0, n_test=0, seed=seed)}
    seen |= {content(s) for corpus in HELD_OUT_CORPORA for seed in range(HELD_OUT_SEEDS)
             for s in toy_scenes(**corpus, seed=seed)}
    return frozenset(seen)


def _draws(modality: str, seed: int) -> Iterator[ToyScene]:
    for k in range(seed, seed + 10_000):
        batch = toy_scenes(n_train=0 if modality == "video" else 256, n_val=0, n_test=0,
                           videos=256 if modality == "video" else 0, seed=LEARN_SEED + k)
        yield from (s for s in batch if s.modality == modality)
    raise RuntimeError(f"not enough {modality} scenes outside the held-out set")


def learning_scenes(n_images: int, n_videos: int = 0, *, seed: int = 0) -> list[ToyScene]:
    """``n_images`` image and ``n_videos`` video scenes, none with held-out content, ids ``L{i}``."""
    banned = held_out()
    picked: list[ToyScene] = []
    for modality, n in (("image", n_images), ("video", n_videos)):
        draws = (s for s in _draws(modality, seed) if content(s) not in banned)
        picked += [next(draws) for _ in range(n)]
    return [replace(s, media_id=f"L{i:05d}", split="train") for i, s in enumerate(picked)]
