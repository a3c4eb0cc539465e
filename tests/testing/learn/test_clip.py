"""The shipped toy CLIP and its multilingual text student carry signal on held-out scenes (issue 18).

Design: the models are loaded as the stages load them (``toy/clip`` through ``ccr.models.resolve``
into ``CLIPModel``; ``toy/mclip-text`` as a sentence-transformers model for xm_sim and xl_sim, and
as the trainer's text tower through ``load_text_encoder``), on demo-corpus scenes, which learning
never saw. Learning takes minutes and is not run here (scripts/learn_toy_models.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from ccr import models
from ccr.testing.toy_corpus import render_scene, scene_caption, toy_scenes
from ccr.train.model.towers import load_text_encoder

torch = pytest.importorskip("torch")

# 20 held-out image scenes; held out by test_scenes.py's disjointness checks
SCENES = [s for s in toy_scenes(videos=4) if s.modality == "image"][:20]


@pytest.fixture(scope="module")
def clip() -> tuple[Any, Any]:
    from transformers import CLIPModel, CLIPProcessor

    path = models.resolve("toy/clip").path
    return CLIPModel.from_pretrained(path).eval(), CLIPProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def student() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(models.resolve("toy/mclip-text").path), device="cpu")


def _unit(x: Any) -> Any:
    return torch.nn.functional.normalize(torch.as_tensor(x), dim=-1)


def _images(clip: tuple[Any, Any]) -> Any:
    model, processor = clip
    pixels = processor.image_processor(images=[render_scene(s) for s in SCENES], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        return _unit(model.get_image_features(pixel_values=pixels).pooler_output)


def _rank_of_match(similarity: Any) -> Any:
    """Where each row's own column ranks among all columns (0 = first)."""
    return (similarity > similarity.diagonal()[:, None]).sum(dim=1)


def test_clip_ranks_the_right_english_caption_first_for_most_held_out_images(clip: tuple[Any, Any]) -> None:
    model, processor = clip
    tokens = processor.tokenizer([scene_caption(s, "en", 0) for s in SCENES], padding=True, return_tensors="pt")
    with torch.inference_mode():
        texts = _unit(model.get_text_features(**tokens).pooler_output)
    ranks = _rank_of_match(_images(clip) @ texts.T)
    assert (ranks < 5).float().mean() >= 0.9
    assert (ranks < 1).float().mean() >= 0.5


def test_student_puts_a_german_caption_nearer_its_english_pair_than_a_swapped_one(student: Any) -> None:
    english = _unit(student.encode([scene_caption(s, "en", 1) for s in SCENES]))
    german = _unit(student.encode([scene_caption(s, "de", 0) for s in SCENES]))
    similarity = english @ german.T
    swapped = similarity.roll(1, dims=1).diagonal()  # each English caption against the next scene's German one
    assert (similarity.diagonal() > swapped).float().mean() >= 0.9
    assert (_rank_of_match(similarity) < 1).float().mean() >= 0.5


def test_student_embeds_every_language_in_the_clip_image_space(clip: tuple[Any, Any], student: Any) -> None:
    images = _images(clip)
    assert student.get_embedding_dimension() == images.shape[1]  # the score stage refuses two spaces
    for lang in ("de", "fr", "cs"):
        ranks = _rank_of_match(images @ _unit(student.encode([scene_caption(s, lang, 1) for s in SCENES])).T)
        assert (ranks < 5).float().mean() >= 0.8, lang


def test_the_trainer_loads_the_student_as_its_text_tower() -> None:
    encoder, tokenizer = load_text_encoder(models.resolve("toy/mclip-text").path, pretrained=True)
    tokens = tokenizer(["Ein roter Kreis links auf blauem Hintergrund."], return_tensors="pt")
    assert tokenizer.unk_token_id not in tokens["input_ids"][0].tolist()  # the pieces cover German
    with torch.inference_mode():
        assert encoder(**tokens).last_hidden_state.shape[-1] == encoder.config.hidden_size
