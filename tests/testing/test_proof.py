"""The demo's proof figures: chance levels that a random ranking really gets."""

import itertools

import pytest

from ccr.testing.proof import chance_recall, chance_sumr


def test_chance_recall_counts_every_ranking_of_a_small_gallery():
    gallery, relevant = 6, 2
    rankings = list(itertools.permutations(range(gallery)))
    for k in (1, 2, 5):
        hits = sum(any(item < relevant for item in r[:k]) for r in rankings)
        assert chance_recall(k, gallery, relevant) == pytest.approx(100 * hits / len(rankings))


def test_chance_sumr_of_one_caption_per_item_is_both_directions_of_k_over_n():
    assert chance_sumr(41, 41, "t2v+v2t") == pytest.approx(2 * 100 * (1 + 5 + 10) / 41)
    assert chance_sumr(41, 41, "t2v") == pytest.approx(100 * (1 + 5 + 10) / 41)
    assert chance_sumr(8, 8, "t2v+v2t") == pytest.approx(2 * 100 * (1 + 5 + 8) / 8)  # recall@10 of 8 items is 100%
