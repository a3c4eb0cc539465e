"""The toy models learn on scenes that no demo or test corpus shows (issue 18)."""

from ccr.testing.learn.scenes import (
    HELD_OUT_CORPORA,
    content,
    held_out,
    learning_scenes,
)
from ccr.testing.toy_corpus import toy_scenes


def test_learning_scenes_are_disjoint_from_the_demos_and_the_tests():
    learned = {content(s) for s in learning_scenes(3_000, 300)}
    shown = {content(s) for corpus in HELD_OUT_CORPORA for seed in range(4) for s in toy_scenes(**corpus, seed=seed)}
    shown |= {content(s) for seed in range(4) for s in toy_scenes(n_train=280, n_val=40, n_test=40, seed=seed)}
    assert learned and not learned & shown
    assert not learned & held_out()


def test_learning_scenes_cover_both_modalities_and_are_reproducible():
    scenes = learning_scenes(200, 20, seed=3)
    assert sum(s.modality == "video" for s in scenes) == 20
    assert {len(s.objects) for s in scenes if s.modality == "image"} == {1, 2}
    assert scenes == learning_scenes(200, 20, seed=3)
