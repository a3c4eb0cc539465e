"""The loss primitives and the learning-rate schedule against hand-worked values."""

import math

import pytest
import torch
import torch.nn.functional as F

from ccr.train.model.losses import (
    Temperature,
    feature_distillation,
    info_nce,
    kl_divergence,
    ot_distance,
    positives,
    soft_cross_entropy,
    triplet_hardest,
)
from ccr.train.run.optim import lr_factor


def test_triplet_hardest_negative_by_hand():
    # rows: captions, columns: media; diag = [0.9, 0.6], margin 0.2
    # pair 0: row 0.2+0.5-0.9 < 0, column 0.2+0.7-0.9 = 0 -> 0
    # pair 1: row 0.2+0.7-0.6 = 0.3, column 0.2+0.5-0.6 = 0.1 -> 0.4
    sim = torch.tensor([[0.9, 0.5], [0.7, 0.6]])
    pos = positives(torch.tensor([0, 1]))
    assert triplet_hardest(sim, pos).item() == pytest.approx(0.4)
    assert triplet_hardest(sim, pos, reduction="mean").item() == pytest.approx(0.2)
    assert triplet_hardest(sim, pos, weights=torch.tensor([1.0, 0.5])).item() == pytest.approx(0.2)
    assert triplet_hardest(sim, positives(torch.tensor([3, 3]))).item() == 0.0  # one item: no negatives


def test_triplet_never_uses_captions_of_the_same_item_as_negatives():
    # tuples 0 and 1 show the same item. Pair 0: only column 2 is a negative (0.2+0.9-0.8 = 0.3), row 2 as
    # column negative gives 0.2+0.2-0.8 < 0. Pair 1: 0.2+0.1-0.5 < 0 and 0.2+0.3-0.5 = 0. Pair 2: row
    # max(0.2+0.2-0.4, 0.2+0.3-0.4) = 0.1, column max(0.2+0.9-0.4, 0.2+0.1-0.4) = 0.7. Total 0.3 + 0 + 0.8.
    sim = torch.tensor([[0.8, 0.7, 0.9], [0.6, 0.5, 0.1], [0.2, 0.3, 0.4]])
    assert triplet_hardest(sim, positives(torch.tensor([0, 0, 1]))).item() == pytest.approx(1.1)


def test_info_nce_is_clip_loss_with_unique_items_and_uniform_over_siblings():
    torch.manual_seed(0)
    sim = torch.randn(5, 5)
    labels = torch.arange(5)
    clip = (F.cross_entropy(sim / 0.1, labels) + F.cross_entropy(sim.T / 0.1, labels)) / 2
    assert info_nce(sim, positives(labels), 0.1).item() == pytest.approx(clip.item(), rel=1e-6)
    # two captions of one item, equal scores: the target is uniform over both, so the loss is log 2
    assert info_nce(torch.zeros(2, 2), positives(torch.tensor([7, 7])), 1.0).item() == pytest.approx(math.log(2))
    weights = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0])
    rows = -(torch.eye(5) * (sim / 0.1).log_softmax(1)).sum(1)
    cols = -(torch.eye(5) * (sim / 0.1).log_softmax(0)).sum(0)
    expected = (weights * (rows + cols) / 2).mean()
    assert info_nce(sim, positives(labels), 0.1, weights=weights).item() == pytest.approx(expected.item(), rel=1e-6)


def test_soft_targets_kl_and_feature_distillation():
    torch.manual_seed(1)
    logits = torch.randn(4, 6)
    one_hot = F.one_hot(torch.tensor([0, 2, 5, 1]), 6).float()
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(
        F.cross_entropy(logits, torch.tensor([0, 2, 5, 1])).item(), rel=1e-6)
    assert kl_divergence(logits, logits.softmax(-1)).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_divergence(logits, one_hot).item() == pytest.approx(soft_cross_entropy(logits, one_hot).item(), rel=1e-6)
    x = torch.zeros(3, 8)
    assert feature_distillation(x, x).item() == 0.0
    assert feature_distillation(x + 1, x).item() == pytest.approx(0.5 / 4.0)  # SmoothL1, beta 4: 0.5 d^2 / beta
    assert feature_distillation(x + 1, x, kind="mse").item() == pytest.approx(1.0)


def test_ot_distance_is_near_zero_for_matching_tokens_and_ignores_padding():
    torch.manual_seed(2)
    a = F.normalize(torch.randn(1, 3, 16), dim=-1)
    shuffled = a[:, [2, 0, 1]]
    far = F.normalize(torch.randn(1, 3, 16), dim=-1)
    mask = torch.ones(1, 3, dtype=torch.bool)
    same = ot_distance(a, mask, shuffled, mask, eps=0.01, max_iter=200)
    other = ot_distance(a, mask, far, mask, eps=0.01, max_iter=200)
    assert same.shape == (1,) and same.item() < 0.05 < other.item()
    padded = torch.cat([shuffled, far[:, :1]], dim=1)
    pad_mask = torch.tensor([[True, True, True, False]])
    assert ot_distance(a, mask, padded, pad_mask, eps=0.01, max_iter=200).item() == pytest.approx(same.item(), abs=1e-5)
    tokens = a.clone().requires_grad_(True)
    ot_distance(tokens, mask, far, mask).sum().backward()
    assert tokens.grad is not None and torch.isfinite(tokens.grad).all() and tokens.grad.abs().sum() > 0


def test_temperature_is_a_clamped_parameter_unless_fixed():
    t = Temperature(0.07)
    assert t().item() == pytest.approx(0.07) and [p.shape for p in t.parameters()] == [torch.Size([])]
    with torch.no_grad():
        t.log_t.fill_(math.log(1e-6))
    assert t().item() == pytest.approx(1e-3)
    assert list(Temperature(0.05, learnable=False).parameters()) == []


def test_lr_schedule_points():
    common = {"total": 100, "steps_per_epoch": 10, "epoch_decay": 1.0}
    assert lr_factor(0, warmup=10, schedule="constant", **common) == pytest.approx(0.1)
    assert lr_factor(9, warmup=10, schedule="constant", **common) == pytest.approx(1.0)
    assert lr_factor(55, warmup=10, schedule="linear", **common) == pytest.approx(0.5)
    assert lr_factor(55, warmup=0.1, schedule="cosine", **common) == pytest.approx(0.5)
    assert lr_factor(100, warmup=0, schedule="linear", **common) == pytest.approx(0.0)
    assert lr_factor(25, warmup=0, schedule="constant", total=100, steps_per_epoch=10,
                     epoch_decay=0.99) == pytest.approx(0.99 ** 2)
