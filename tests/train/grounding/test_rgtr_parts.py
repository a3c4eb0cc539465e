"""RGTR's parts with known answers: anchor clustering, Hungarian matching with the region cost, losses,
windows on the clip grid."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ccr.train.model.grounding.criterion import SetCriterion, saliency_hinge
from ccr.train.model.grounding.spans import kmeans_anchors, nms, round_windows
from ccr.train.model.methods.rgtr import Config


def test_anchors_are_the_centres_of_the_training_moments():
    rng = np.random.default_rng(0)
    truth = np.array([[0.2, 0.1], [0.5, 0.4], [0.8, 0.1]])
    spans = np.concatenate([c + 0.01 * rng.standard_normal((50, 2)) for c in truth])
    anchors = kmeans_anchors(spans, 3, seed=0)
    np.testing.assert_allclose(anchors, truth, atol=0.01)  # sorted by centre
    np.testing.assert_array_equal(anchors, kmeans_anchors(spans, 3, seed=0))
    few = kmeans_anchors(truth[:2], 4, seed=0)  # fewer distinct moments than anchors: a grid fills in
    assert len(few) == 4 and {tuple(a) for a in truth[:2].astype(np.float32)} <= {tuple(a) for a in few}


def _outputs(spans: list[list[float]], fg: list[float], anchors: list[list[float]]) -> dict[str, torch.Tensor]:
    p = torch.tensor(fg)
    logits = torch.stack([torch.log(p), torch.log(1 - p)], dim=-1)[None, None]
    return {"spans": torch.tensor(spans)[None, None], "logits": logits, "iou": torch.zeros(1, 1, len(spans)),
            "saliency": torch.zeros(1, 4), "static_anchors": torch.tensor(anchors)}


def _batch(gt: list[list[float]]) -> dict[str, torch.Tensor]:
    return {"spans": torch.tensor(gt)[None], "span_mask": torch.ones(1, len(gt), dtype=torch.bool),
            "saliency": torch.zeros(1, 4), "video_mask": torch.ones(1, 4, dtype=torch.bool)}


def test_matching_takes_the_query_that_predicts_the_moment_and_its_losses_vanish():
    criterion = SetCriterion(Config())
    anchors = [[0.2, 0.2], [0.5, 0.2], [0.8, 0.2]]
    out = _outputs([[0.2, 0.2], [0.5, 0.3], [0.8, 0.2]], [0.5, 0.5, 0.5], anchors)
    batch = _batch([[0.5, 0.3]])
    (queries, gts), = criterion.match(out["spans"][0], out["logits"][0], batch["spans"], batch["span_mask"],
                                      out["static_anchors"])
    assert queries.tolist() == [1] and gts.tolist() == [0]
    terms = criterion(out, batch, None)
    assert terms["span_l1"].value.item() == 0 and abs(terms["span_giou"].value.item()) < 1e-6


def test_class_loss_is_the_familys_mean_over_queries():
    """Three queries, p(foreground) 0.8, 0.5, 0.1; the moment goes to query 1 (it predicts it exactly).

    Moment-DETR: weighted per-query cross-entropy (background weight 0.1), divided by the number
    of queries: (0.1 (-ln 0.2) + (-ln 0.5) + 0.1 (-ln 0.9)) / 3 = (0.160944 + 0.693147 + 0.010536) / 3
    = 0.288209. Dividing by the weights' sum (1.2) instead would give 0.720523.
    """
    out = _outputs([[0.2, 0.2], [0.5, 0.3], [0.8, 0.2]], [0.8, 0.5, 0.1], [[0.2, 0.2], [0.5, 0.2], [0.8, 0.2]])
    terms = SetCriterion(Config())(out, _batch([[0.5, 0.3]]), None)
    assert terms["class"].value.item() == pytest.approx(0.288209, abs=1e-6) and terms["class"].weight == 4.0


def test_windows_are_rounded_to_whole_clips_within_the_video():
    """QVHighlights post-processing, 2-s clips: nearest multiple of 2 s, halves to even, inside the video."""
    windows = np.array([[0.9, 3.1, 0.8],  # 0.45 -> 0, 1.55 -> 2 clips
                        [4.99, 7.0, 0.7],  # 2.495 -> 2, 3.5 -> 4 (half to even)
                        [5.0, 9.0, 0.6],  # 2.5 -> 2 (half to even), 4.5 -> 4
                        [147.2, 150.0, 0.5],  # 73.6 -> 74, 75
                        [-1.0, 0.8, 0.4]])  # clipped to 0 first; 0.4 -> 0: an empty window stays
    expected = [[0, 4, 0.8], [4, 8, 0.7], [4, 8, 0.6], [148, 150, 0.5], [0, 0, 0.4]]
    np.testing.assert_array_equal(round_windows(windows, 2.0, 150.0), expected)
    # a duration that is not a multiple of the clip: 75.5 clips round to 76, the end stays at 151 s
    np.testing.assert_array_equal(round_windows(np.array([[149.5, 151.0, 1.0]]), 2.0, 151.0), [[150, 151, 1.0]])
    np.testing.assert_array_equal(round_windows(np.array([[0.4, 2.6, 1.0]]), 1.0, 30.0), [[0, 3, 1.0]])  # Charades


def test_region_cost_gives_a_moment_to_the_query_whose_region_holds_it():
    """Two queries predict the same span; the one whose static anchor covers the moment wins."""
    anchors = [[0.2, 0.2], [0.7, 0.2]]
    out = _outputs([[0.7, 0.2], [0.7, 0.2]], [0.5, 0.5], anchors)
    batch = _batch([[0.7, 0.2]])
    (queries, _), = SetCriterion(Config()).match(out["spans"][0], out["logits"][0], batch["spans"],
                                                 batch["span_mask"], out["static_anchors"])
    assert queries.tolist() == [1]
    (queries, _), = SetCriterion(SimpleNamespace(**vars(Config()) | {"cost_region": 0.0})).match(
        out["spans"][0], out["logits"][0], batch["spans"], batch["span_mask"], out["static_anchors"])
    assert queries.tolist() == [0]  # without it, a tie resolved by order


def test_saliency_hinge_is_zero_only_when_labels_are_ranked_with_the_margin():
    labels = torch.tensor([[0.0, 1.0, 0.5, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    good = torch.tensor([[0.0, 1.0, 0.5, 9.0]])  # the padded clip's score does not count
    assert saliency_hinge(good, labels, mask, 0.2).item() == 0
    assert saliency_hinge(good.flip(1), labels, mask, 0.2).item() > 0


def test_nms_keeps_the_best_of_overlapping_windows():
    windows = np.array([[0, 10, 0.9], [1, 10, 0.8], [20, 30, 0.7]])
    np.testing.assert_array_equal(nms(windows, 0.5), windows[[0, 2]])
