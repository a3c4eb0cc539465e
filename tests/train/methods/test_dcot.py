"""DCOT: the curriculum, dual-view OT confidences on designed batches, weights in the loss, learning.

Designed batch: 16 tuples whose English, visual and MT embeddings share one random direction per
item (plus small noise), except planted ones. A swapped MT caption points at an item outside the
batch (an orphan), as a caption swapped with another item's mostly does; a "cross-modal only"
mismatch keeps the MT caption on its English source but moves the visual item elsewhere, so only
the cross-modal view can see it.

Learning (tests/train/conftest.py, ccr.testing.synthetic): chance SumR on the 40 test items is about
80; the untrained model scores near it and six epochs of the tiny towers score several times
more. Noise detection: the same generator with 30% of the training MT captions swapped with
other items'; after training, the kept confidences must rank clean tuples above swapped ones.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from methods_helpers_nc import build, history, train_run, trained_and_untrained_sumr
from train_helpers import load_checkpoint, sets

from ccr.corpus.corpus import Corpus
from ccr.errors import CcrError
from ccr.ot import dual_view_confidence
from ccr.testing.synthetic import EN_DE, write_synthetic_corpus
from ccr.train.data.rows import train_records
from ccr.train.model.losses import info_nce, positives, triplet_hardest
from ccr.train.model.methods.base import StepInfo
from ccr.train.model.methods.dcot import (
    DcotConfig,
    DualViewAlignment,
    relative,
    view_weight,
)
from ccr.train.run.loop import train

N, DIM = 16, 32


def test_view_weight_moves_from_the_cross_lingual_to_the_cross_modal_view():
    assert view_weight(0.0) == pytest.approx(0.9) and view_weight(1.0) == pytest.approx(0.1)
    assert view_weight(0.5) == pytest.approx(0.5)  # half way on the half cosine
    assert view_weight(0.25) == pytest.approx(0.1 + 0.8 * (1 + math.cos(math.pi / 4)) / 2)
    values = [view_weight(p / 10) for p in range(11)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert view_weight(-1.0) == view_weight(0.0) and view_weight(2.0) == view_weight(1.0)  # clamped
    assert view_weight(0.3, start=0.5, end=0.5) == 0.5  # a fixed λ, as ccr score uses


def _designed(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    items = F.normalize(torch.randn(N, DIM, generator=g), dim=-1)
    jitter = lambda: 0.1 * torch.randn(N, DIM, generator=g)  # noqa: E731
    e, v, t = (F.normalize(items + jitter(), dim=-1) for _ in range(3))
    return e, v, t, g


SWAPPED = [2, 7, 11, 13]


def test_swapped_pairs_get_lower_confidence_than_clean_ones():
    e, v, t, g = _designed()
    t[SWAPPED] = F.normalize(torch.randn(len(SWAPPED), DIM, generator=g), dim=-1)  # other items' captions
    clean = [i for i in range(N) if i not in SWAPPED]
    for lam in (0.9, 0.5, 0.1):
        for relax in (1.0, 0.0):
            conf, plan = dual_view_confidence(e, t, v, t, lam, relax=relax)
            assert conf[SWAPPED].max() < 0.25 < 0.5 < conf[clean].min(), (lam, relax)
            assert conf.min() >= 0 and conf.max() <= 1 and plan.shape == (N, N)
        assert torch.allclose(plan.sum(1), torch.full((N,), 1 / N), rtol=1e-4)  # balanced: every row sends 1/N
        _, relaxed = dual_view_confidence(e, t, v, t, lam)
        assert relaxed[SWAPPED].sum(1).max() < relaxed[clean].sum(1).min()  # relaxed: orphans may send less


def test_each_view_sees_its_own_noise_and_lambda_chooses():
    e, v, t, g = _designed(1)
    moved = torch.tensor([3, 9])
    v[moved] = F.normalize(torch.randn(len(moved), DIM, generator=g), dim=-1)  # MT right, visual pairing wrong
    cross_lingual, _ = dual_view_confidence(e, t, v, t, 1.0)
    cross_modal, _ = dual_view_confidence(e, t, v, t, 0.0)
    others = torch.ones(N, dtype=torch.bool)
    others[moved] = False
    assert cross_lingual[moved].min() > 0.9 * cross_lingual[others].mean()  # English agrees with the MT caption
    assert cross_modal[moved].max() < cross_modal[others].min()  # the visual view does not


def test_captions_of_one_item_share_its_mass_without_losing_confidence():
    e, v, t, _ = _designed(2)
    v[1], e[1] = v[0], e[0]  # tuples 0 and 1: two captions of one item
    t[1] = F.normalize(t[0] + 0.05 * torch.randn(DIM), dim=-1)
    same = positives(torch.tensor([0, 0, *range(2, N)]))
    diagonal, _ = dual_view_confidence(e, t, v, t, 0.5, relax=0.0)  # balanced: exactly 1/N per row to share
    grouped, _ = dual_view_confidence(e, t, v, t, 0.5, same=same, relax=0.0)
    assert grouped[:2].min() > 0.8 and diagonal[:2].max() < 0.75  # the plan splits the item between them
    assert torch.allclose(grouped[2:], diagonal[2:])


def test_relative_weights_cap_at_one_and_scale_the_doubtful():
    w = relative(torch.tensor([0.8, 0.6, 0.2, 0.4]))
    assert w.tolist() == pytest.approx([1.0, 1.0, 0.4, 0.8])


def _outputs_and_batch(noisy: list[int]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    e, v, t, g = _designed()
    t[noisy] = F.normalize(torch.randn(len(noisy), DIM, generator=g), dim=-1)
    outputs = {"e": e, "v": v, "t": t.requires_grad_()}
    weight = torch.ones(N)
    weight[5] = 0.5  # a corpus weight from a filter
    batch = {"media_index": torch.arange(N), "index": torch.arange(N) + 100, "weight": weight}
    return outputs, batch


def test_confidences_and_corpus_weights_reach_the_per_sample_loss():
    noisy = SWAPPED
    outputs, batch = _outputs_and_batch(noisy)
    plugin = DualViewAlignment(DcotConfig(), n_train=200)
    step = StepInfo(epoch=1, step=30, total_steps=60, steps_per_epoch=30)  # past warm-up, half way
    terms = plugin(outputs, batch, step)
    conf, _ = dual_view_confidence(outputs["e"], outputs["t"], outputs["v"], outputs["t"], view_weight(0.5))
    pos = positives(batch["media_index"])
    expected = triplet_hardest(outputs["t"] @ outputs["v"].T, pos, weights=batch["weight"] * relative(conf))
    assert terms["vt"].value.item() == pytest.approx(expected.item()) and terms["vt"].weight == 0.6
    assert terms["ve"].value.item() == pytest.approx(triplet_hardest(outputs["e"] @ outputs["v"].T, pos).item())
    assert terms["view_weight"].value.item() == pytest.approx(0.5) and terms["conf"].weight == 0.0
    assert torch.allclose(plugin.confidence[100:116], conf) and (plugin.confidence[:100] == 1).all()
    clean = [i for i in range(N) if i not in noisy]
    assert relative(conf)[noisy].max() < 0.5 and relative(conf)[clean].min() == 1.0  # the noisy pairs count less

    warm = plugin(outputs, batch, StepInfo(epoch=0, step=3, total_steps=60, steps_per_epoch=30))
    unjudged = triplet_hardest(outputs["t"] @ outputs["v"].T, pos, weights=batch["weight"])
    assert warm["vt"].value.item() == pytest.approx(unjudged.item())  # warm-up: corpus weights only


def test_soft_labels_are_the_transport_plan():
    outputs, batch = _outputs_and_batch(SWAPPED)
    plugin = DualViewAlignment(DcotConfig(confidence="soft", loss="infonce"), n_train=200)
    step = StepInfo(epoch=1, step=60, total_steps=60, steps_per_epoch=30)
    _, plan = dual_view_confidence(outputs["e"], outputs["t"], outputs["v"], outputs["t"], view_weight(1.0))
    logits = outputs["t"] @ outputs["v"].T / plugin.align.temperature()
    rows = -(plan.T / plan.T.sum(-1, keepdim=True) * logits.log_softmax(-1)).sum(-1)
    cols = -(plan / plan.sum(-1, keepdim=True) * logits.T.log_softmax(-1)).sum(-1)
    expected = ((rows + cols) / 2 * batch["weight"]).mean()
    assert plugin(outputs, batch, step)["vt"].value.item() == pytest.approx(expected.item(), rel=1e-5)
    pos = positives(batch["media_index"])
    warm = plugin(outputs, batch, StepInfo(epoch=0, step=0, total_steps=60, steps_per_epoch=30))
    one_hot = info_nce(outputs["t"] @ outputs["v"].T, pos, plugin.align.temperature(), weights=batch["weight"])
    assert warm["vt"].value.item() == pytest.approx(one_hot.item(), rel=1e-5)


def test_soft_labels_need_infonce():
    with pytest.raises(CcrError, match="confidence=soft.*loss=infonce"):
        build("dcot", confidence="soft")


def test_dcot_learns_far_above_chance_and_the_untrained_model(tmp_path_factory, synth_corpus):
    run = train_run(tmp_path_factory, synth_corpus, "dcot", epochs=6)
    records = history(run)
    assert set(records[-1]["train"]) == {"ve", "vt", "conf", "view_weight", "loss"}
    lams = [h["train"]["view_weight"] for h in records]
    assert all(a > b for a, b in zip(lams, lams[1:], strict=False))  # the curriculum moved on
    trained, untrained = trained_and_untrained_sumr(run, synth_corpus)
    assert untrained < 150 and trained > 300 and trained > untrained + 150


def test_trained_confidences_single_out_swapped_mt_captions(tmp_path):
    """InfoNCE (LECCR's loss) learns this corpus in fewer epochs than the triplet, so it is used here."""
    corpus = write_synthetic_corpus(tmp_path / "noisy", mt_noise=0.3)
    train(corpus, tmp_path / "run", method="dcot", sets=sets(epochs=8, loss="infonce"), log=lambda _: None)
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")  # on the CPU, wherever it trained
    conf = state["model"]["objectives.0.confidence"].numpy()
    records = train_records(Corpus.open(corpus), ["de"], frozenset({"en", "mt"}), log=lambda _: None)
    swapped = np.array([" ".join(EN_DE.get(w, w) for w in en.split()) != mt
                        for en, mt in zip(records.texts["en"], records.texts["mt"], strict=True)])
    assert swapped.mean() == pytest.approx(0.3, abs=0.01) and len(conf) == len(swapped)
    gap = conf[~swapped][:, None] - conf[swapped][None, :]
    auc = (gap > 0).mean() + (gap == 0).mean() / 2  # ROC AUC: a clean tuple outranks a swapped one
    assert auc > 0.8
