"""Retrieval metrics: hand-worked cases, edge cases, and a loop-based reference on random data."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from ccr.train.eval.metrics import (
    METRIC_KEYS,
    format_table,
    fuse_scores,
    retrieval_metrics,
    retrieval_ranks,
)


def reference_metrics(sim: np.ndarray, t2m: np.ndarray) -> dict[str, float]:
    """The protocol written out query by query: sort the gallery, find the relevant items.

    Ties are ordered with the relevant item last, the rule the vectorised code implements by
    counting.
    """
    n_texts, n_media = sim.shape
    t2v_ranks, t2v_aps = [], []
    for i in range(n_texts):
        order = sorted(range(n_media), key=lambda j: (-sim[i, j], j == t2m[i]))
        rank = order.index(t2m[i]) + 1
        t2v_ranks.append(rank)
        t2v_aps.append(1 / rank)
    v2t_ranks, v2t_aps = [], []
    for m in range(n_media):
        relevant = {c for c in range(n_texts) if t2m[c] == m}
        if not relevant:
            continue
        order = sorted(range(n_texts), key=lambda c: (-sim[c, m], c in relevant))
        hits, precisions, first = 0, [], None
        for pos, c in enumerate(order, 1):
            if c in relevant:
                hits += 1
                precisions.append(hits / pos)
                first = first or pos
        v2t_ranks.append(first)
        v2t_aps.append(sum(precisions) / len(precisions))
    out = {}
    for prefix, ranks, aps in (("t2v", t2v_ranks, t2v_aps), ("v2t", v2t_ranks, v2t_aps)):
        for k in (1, 5, 10):
            out[f"{prefix}_r{k}"] = 100 * sum(r <= k for r in ranks) / len(ranks)
        out[f"{prefix}_medr"] = statistics.median(ranks)
        out[f"{prefix}_meanr"] = statistics.fmean(ranks)
        out[f"{prefix}_map"] = 100 * statistics.fmean(aps)
    out["t2v_sumr"] = out["t2v_r1"] + out["t2v_r5"] + out["t2v_r10"]
    out["sumr"] = out["t2v_sumr"] + out["v2t_r1"] + out["v2t_r5"] + out["v2t_r10"]
    return out


# 4 captions x 3 media; captions 0, 1 describe item 0, captions 2, 3 item 1, item 2 has none.
HAND_SIM = np.array(
    [
        [0.9, 0.1, 0.3],  # t0 -> m0 is the top score: rank 1
        [0.2, 0.5, 0.4],  # t1 -> m0 (0.2) is beaten by 0.5 and 0.4: rank 3
        [0.1, 0.6, 0.6],  # t2 -> m1 (0.6) ties with m2, the tie counts against it: rank 2
        [0.9, 0.8, 0.0],  # t3 -> m1 (0.8) is beaten by m0: rank 2
    ]
)
HAND_T2M = np.array([0, 0, 1, 1])


def test_hand_worked_example() -> None:
    # t2v ranks 1, 3, 2, 2: R@1 25, R@5 = R@10 = 100, MedR median(1,2,2,3) = 2, MeanR 8/4 = 2,
    # AP = 1/rank -> (1 + 1/3 + 1/2 + 1/2) / 4 = 0.58333.
    # v2t, item 0: column (t0 .9 rel, t1 .2 rel, t2 .1, t3 .9); t3 ties with t0 and goes first:
    #   t3, t0*, t1*, t2 -> best rank 2, AP = (1/2 + 2/3) / 2 = 0.58333.
    # item 1: column (t0 .1, t1 .5, t2 .6 rel, t3 .8 rel): t3*, t2*, t1, t0 -> rank 1, AP 1.
    # item 2 has no caption: not a v2t query. v2t ranks 2, 1: R@1 50, MedR 1.5, MeanR 1.5,
    # mAP (0.58333 + 1) / 2 = 0.79167.
    m = retrieval_metrics(HAND_SIM, HAND_T2M)
    expected = {
        "t2v_r1": 25.0, "t2v_r5": 100.0, "t2v_r10": 100.0, "t2v_medr": 2.0, "t2v_meanr": 2.0,
        "t2v_map": 100 * 7 / 12,
        "v2t_r1": 50.0, "v2t_r5": 100.0, "v2t_r10": 100.0, "v2t_medr": 1.5, "v2t_meanr": 1.5,
        "v2t_map": 100 * (7 / 12 + 1) / 2,
        "sumr": 475.0, "t2v_sumr": 225.0,
    }  # fmt: skip
    assert list(m) == list(METRIC_KEYS)
    assert m == pytest.approx(expected)


def test_ranks_per_query_and_captionless_item() -> None:
    r = retrieval_ranks(HAND_SIM, HAND_T2M)
    np.testing.assert_array_equal(r.t2v, [1, 3, 2, 2])
    np.testing.assert_array_equal(r.v2t, [2, 1])
    np.testing.assert_array_equal(r.v2t_media, [0, 1])
    np.testing.assert_allclose(r.v2t_ap, [7 / 12, 1.0])


def test_multi_caption_v2t_uses_best_rank_and_all_captions_for_ap() -> None:
    # Item 0 has captions 0, 1, 2; item 1 has 3, 4, 5. Column of item 0 in score order:
    # c0* .9, c3 .8, c4 .7, c1* .6, c5 .5, c2* .4 -> relevant at positions 1, 4, 6:
    # best rank 1, AP = (1/1 + 2/4 + 3/6) / 3 = 2/3. Item 1: its captions score highest, AP 1.
    sim = np.array(
        [[0.9, 0.1], [0.6, 0.2], [0.4, 0.3], [0.8, 0.9], [0.7, 0.8], [0.5, 0.7]]
    )
    r = retrieval_ranks(sim, np.array([0, 0, 0, 1, 1, 1]))
    np.testing.assert_array_equal(r.v2t, [1, 1])
    np.testing.assert_allclose(r.v2t_ap, [2 / 3, 1.0])
    m = retrieval_metrics(sim, np.array([0, 0, 0, 1, 1, 1]))
    assert m["v2t_r1"] == 100.0
    assert m["v2t_map"] == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_perfect_retrieval() -> None:
    t2m = np.repeat(np.arange(10), 3)
    sim = np.eye(10)[t2m]  # each caption scores 1 on its item, 0 elsewhere
    m = retrieval_metrics(sim, t2m)
    for key in ("t2v_r1", "t2v_r5", "t2v_r10", "v2t_r1", "v2t_r5", "v2t_r10", "t2v_map", "v2t_map"):
        assert m[key] == 100.0
    assert m["t2v_medr"] == m["v2t_medr"] == 1.0
    assert m["sumr"] == 600.0
    assert m["t2v_sumr"] == 300.0


def test_reversed_retrieval() -> None:
    # The relevant item scores lowest of 20 everywhere: every rank is 20, AP 1/20.
    sim = -np.eye(20)
    m = retrieval_metrics(sim, np.arange(20))
    assert m["t2v_r10"] == m["v2t_r10"] == 0.0
    assert m["t2v_medr"] == m["v2t_medr"] == m["t2v_meanr"] == 20.0
    assert m["t2v_map"] == pytest.approx(5.0)
    assert m["v2t_map"] == pytest.approx(5.0)


def test_collapsed_model_scores_nothing() -> None:
    # All scores equal: ties count against the relevant item, so nothing is retrieved.
    m = retrieval_metrics(np.zeros((12, 4)), np.repeat(np.arange(4), 3))
    assert m["t2v_r1"] == 0.0
    assert m["t2v_medr"] == 4.0
    assert m["v2t_medr"] == 12 - 3 + 1  # behind all 9 wrong captions


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_loop_reference_on_random_data(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    n_media = 15
    per_item = rng.integers(0, 5, size=n_media)  # some items have no caption
    per_item[0] = max(per_item[0], 1)
    t2m = rng.permutation(np.repeat(np.arange(n_media), per_item))
    sim = rng.standard_normal((len(t2m), n_media))
    if ties:
        sim = np.round(sim)  # a handful of values: many ties
    r = retrieval_ranks(sim, t2m)
    ref = reference_metrics(sim, t2m)
    assert retrieval_metrics(sim, t2m) == pytest.approx(ref)
    assert len(r.v2t) == int((per_item > 0).sum())


def test_float32_and_torch_inputs_agree_with_float64() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    t2m = np.repeat(np.arange(30), 5)
    sim = rng.standard_normal((150, 30)).astype(np.float32)
    expected = retrieval_metrics(sim.astype(np.float64), t2m)
    got = retrieval_metrics(torch.from_numpy(sim), torch.from_numpy(t2m))
    assert got == pytest.approx(expected)
    halved = torch.from_numpy(sim).to(torch.bfloat16)
    assert retrieval_metrics(halved, t2m) == pytest.approx(
        retrieval_metrics(halved.float().numpy(), t2m)
    )


def test_input_matrix_is_not_modified() -> None:
    sim = np.asfortranarray(np.random.default_rng(1).standard_normal((8, 4)))
    before = sim.copy()
    retrieval_metrics(sim, np.repeat(np.arange(4), 2))
    np.testing.assert_array_equal(sim, before)


@pytest.mark.parametrize(
    ("sim", "t2m", "message"),
    [
        (np.zeros((3, 2)), np.array([0, 2, 1]), "indices"),
        (np.zeros((3, 2)), np.array([0, 1]), "shape"),
        (np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]), "integer"),
        (np.array([[np.nan, 0.0]]), np.array([0]), "non-finite"),
        (np.zeros(3), np.array([0, 0, 0]), "2-D"),
    ],
)
def test_bad_inputs_are_rejected(sim: np.ndarray, t2m: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(sim, t2m)


def test_fuse_scores_whole_matrix() -> None:
    native = np.array([[0.0, 2.0], [4.0, 8.0]])  # min 0, max 8 -> [[0, .25], [.5, 1]]
    translated = np.array([[1.0, 1.0], [1.0, 3.0]])  # min 1, max 3 -> [[0, 0], [0, 1]]
    fused = fuse_scores(native, translated, translated_weight=0.25)
    # 0.25 * translated + 0.75 * native
    np.testing.assert_allclose(fused, [[0.0, 0.1875], [0.375, 1.0]])


def test_fuse_scores_weighs_the_translated_queries_as_nrccr_sim_ratio() -> None:
    """NRCCR's validate.py: ``sim_ratio * (xx->en query) + (1 - sim_ratio) * native``, sim_ratio 0.2.

    Its validation caption file is the xx->en MT (``<coll>val_google_de2enc``) and the "trans" side
    the native one, so with 0.2 the native queries weigh 0.8. The two matrices below rank in opposite
    orders: the fused ranking must follow the native one.
    """
    native = np.array([[0.9, 0.1], [0.1, 0.9]])  # each query finds its own item
    translated = np.array([[0.1, 0.9], [0.9, 0.1]])  # each translation finds the other one
    t2m = np.array([0, 1])
    fused = fuse_scores(native, translated, translated_weight=0.2)
    np.testing.assert_allclose(fused, 0.8 * (native - 0.1) / 0.8 + 0.2 * (translated - 0.1) / 0.8)
    assert retrieval_metrics(fused, t2m)["t2v_r1"] == 100.0


def test_fuse_scores_weight_zero_keeps_native_ranking() -> None:
    rng = np.random.default_rng(3)
    native, translated = rng.standard_normal((2, 20, 5))
    t2m = np.repeat(np.arange(5), 4)
    assert retrieval_metrics(fuse_scores(native, translated, translated_weight=0.0), t2m) == pytest.approx(
        retrieval_metrics(native, t2m)
    )
    assert retrieval_metrics(fuse_scores(native, translated, translated_weight=1.0), t2m) == pytest.approx(
        retrieval_metrics(translated, t2m)
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"translated_weight": 1.5}, {"translated_weight": -0.1}, {"translated_weight": 0.5, "normalize": "row"}],
)
def test_fuse_scores_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        fuse_scores(np.zeros((2, 2)), np.ones((2, 2)), **kwargs)


def test_fuse_scores_weight_is_keyword_only() -> None:
    """Its meaning was once the native share: a positional weight from old code fails instead of inverting."""
    with pytest.raises(TypeError):
        fuse_scores(np.zeros((2, 2)), np.ones((2, 2)), 0.2)  # type: ignore[misc]


def test_format_table() -> None:
    rows = {
        "de": {"t2v_r1": 41.25, "v2t_map": 12.345, "sumr": 300.0},
        "fr": {"t2v_r1": 40.0, "MR-full-mAP": 32.2},
    }
    assert format_table(rows) == (
        "| lang | T2V R@1 | V2T mAP | SumR | MR-full-mAP |\n"
        "|---|---:|---:|---:|---:|\n"
        "| de | 41.2 | 12.35 | 300.0 | - |\n"
        "| fr | 40.0 | - | - | 32.20 |\n"
    )


def test_format_table_rejects_nested_values() -> None:
    with pytest.raises(TypeError, match="brief"):
        format_table({"run": {"brief": {"MR-full-mAP": 1.0}}})
