"""The shipped toy LLaVA describer names the objects of held-out scenes (issue 18).

Design: the model is loaded by the caption stage's own ``Describer`` from ``toy/llava`` and asked
with the stage's default prompt on demo-corpus scenes, which learning never saw (test_scenes.py
checks the sets apart). Videos reach it as the stage's sampled frames; rendering them at the
sampled instants stands in for decoding the mp4. Learning takes minutes and is not run here
(scripts/learn_toy_models.py).
"""

from __future__ import annotations

import pytest

from ccr import models
from ccr.caption.describe import Describer, Request
from ccr.caption.slots import segments
from ccr.stages.media import Visual
from ccr.testing.learn.describer import (
    PROMPT,
    describe,
    frame_times,
    names_objects,
    purity,
)
from ccr.testing.toy_corpus import ToyObject, ToyScene, render_scene, toy_scenes

pytest.importorskip("torch")

SCENES = toy_scenes(videos=4)
PICKED = [s for s in SCENES if s.split == "test"]  # the demo's test split: 12 images and a video


def _visual(scene: ToyScene) -> Visual:
    if scene.modality == "video":
        times = frame_times()
        return Visual(frames=[render_scene(scene, t=t) for t in times], times=times, duration=2.0)
    return Visual(frames=[render_scene(scene)], times=[0.0], duration=None)


def test_the_shipped_describer_names_the_objects_of_held_out_scenes() -> None:
    describer = Describer(models.resolve("toy/llava"))
    requests = [Request(_visual(s), PROMPT.text(s.modality == "video")) for s in PICKED]
    texts = describer.describe(requests, max_new_tokens=64)
    named = [names_objects(text, scene) for text, scene in zip(texts, PICKED)]
    assert sum(named) >= 0.8 * len(PICKED), list(zip(texts, named))


def test_a_description_splits_into_one_sentence_per_object_and_one_for_the_background() -> None:
    two = next(s for s in SCENES if len(s.objects) == 2)
    parts = segments([describe(two)])
    assert len(parts) == 3
    assert purity([[p] for p in parts], two) == (3, 3)
    assert purity([parts[:2], parts[2:]], two) == (2, 3)  # a slot mixing two objects counts its majority only


def test_names_objects_wants_every_object_and_nothing_else() -> None:
    scene = ToyScene("x", "test", "image", "green", (ToyObject("circle", "red", "left", "large"),
                                                       ToyObject("star", "blue", "top", "small")))
    assert names_objects("A large red circle on the left and a small blue star at the top.", scene)
    assert not names_objects("There is a large red circle on the left.", scene)
    assert not names_objects("A red circle, a blue star and a white square.", scene)
    assert not names_objects("A red square and a blue star.", scene)
