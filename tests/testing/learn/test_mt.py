"""The shipped toy Marian models translate held-out toy captions exactly (issue 18).

Design: the models are read the way the translate stages read them (resolved as a local model,
converted to CTranslate2 int8, decoded with the stages' default beam), on scenes of the demo corpus,
which the models never saw; the gold is the corpus's reference functions. Learning itself takes
minutes and is not run here (scripts/learn_toy_models.py); what the learner trains on is checked.
"""

from __future__ import annotations

import pytest

from ccr import models
from ccr.models import TOY_DIR
from ccr.testing.learn.mt import DIRECTIONS, EN_VARIANTS, pairs
from ccr.testing.learn.scenes import learning_scenes
from ccr.testing.toy_corpus import (
    english_reference,
    scene_caption,
    toy_scenes,
    translation_reference,
)
from ccr.translate.engine import Decoding, MarianTranslator

DECODING = Decoding(beam_size=4, max_length=256, min_length=1, max_input_tokens=512)  # the stages' defaults


def _translate(name: str, texts: list[str]) -> list[str]:
    translator = MarianTranslator(models.resolve(f"toy/{name}"), compute_type="auto", device="cpu")
    return [t.text for t in translator.translate(texts, DECODING)]


def test_shipped_directions_have_the_opus_mt_layout_and_fit_the_budget() -> None:
    files = {"config.json", "generation_config.json", "model.safetensors", "source.spm", "target.spm",
             "vocab.json", "tokenizer_config.json"}
    dirs = [TOY_DIR / f"marian-{src}-{tgt}" for src, tgt in DIRECTIONS]
    assert all(files <= {p.name for p in d.iterdir()} for d in dirs)
    assert sum(p.stat().st_size for d in dirs for p in d.iterdir()) <= 3.5e6


@pytest.mark.parametrize("lang", ["de", "cs"])
def test_held_out_english_captions_translate_to_their_references(lang: str) -> None:
    scenes = toy_scenes(videos=4)[-22:]  # test images and the videos: none is a learning scene
    sources = [(s, v) for s in scenes for v in range(EN_VARIANTS[s.modality])][:40]
    out = _translate(f"marian-en-{lang}", [scene_caption(s, "en", v) for s, v in sources])
    gold = [translation_reference(s, v, lang) for s, v in sources]
    assert sum(o == g for o, g in zip(out, gold)) >= 0.9 * len(gold)
    assert len(set(out)) >= 0.9 * len(set(gold))


def test_held_out_human_captions_translate_back_to_their_english_references() -> None:
    scenes = toy_scenes(videos=4)[-22:]
    sources = [(s, v) for s in scenes for v in (0, 1)][:30]
    out = _translate("marian-fr-en", [scene_caption(s, "fr", v) for s, v in sources])
    gold = [english_reference(s, "fr", v) for s, v in sources]
    assert sum(o == g for o, g in zip(out, gold)) >= 0.9 * len(gold)


def test_learning_pairs_cover_every_template() -> None:
    scenes = learning_scenes(60, 10)
    for src, tgt in DIRECTIONS:
        sources = {s for s, _ in pairs(scenes, src, tgt)}
        lang = src if src != "en" else tgt
        for scene in scenes:
            if src == "en":
                assert {scene_caption(scene, "en", v) for v in range(EN_VARIANTS[scene.modality])} <= sources
            else:
                assert {scene_caption(scene, lang, v) for v in (0, 1)} <= sources
                assert translation_reference(scene, 0, lang) in sources  # what back-translation of MT reads
