"""The Sinkhorn solver against POT, plus the properties the trainer and the score stage rely on."""

import math
import warnings

import numpy as np
import pytest
import torch

from ccr.ot import cosine_cost, dual_view_confidence, sinkhorn

ot = pytest.importorskip("ot")


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run thousands of tiny kernels; on a shared 2-core machine torch's 2-thread
    regions stall behind other jobs (bench/RESULTS.md), so they run single-threaded: the results
    do not depend on the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _points_cost(batch: int, n: int, m: int, seed: int, dim: int = 8) -> np.ndarray:
    """Squared Euclidean costs of random points, each problem scaled to max 1 (as in bench/)."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((batch, n, dim)), rng.standard_normal((batch, m, dim))
    cost = ((x[:, :, None] - y[:, None]) ** 2).sum(-1)
    return cost / cost.max(axis=(1, 2), keepdims=True)


def _weights(batch: int, size: int, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).uniform(0.2, 1.0, (batch, size))
    return w / w.sum(-1, keepdims=True)


def _pot_log(a: np.ndarray, b: np.ndarray, cost: np.ndarray, eps: float, **kw: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.stack([ot.bregman.sinkhorn_log(a[i], b[i], cost[i], eps, **kw) for i in range(len(cost))])


@pytest.mark.parametrize("eps", [0.1, 0.05, 0.01])
def test_matches_pot_sinkhorn_log_float64(eps: float) -> None:
    cost, a, b = _points_cost(2, 20, 30, seed=1), _weights(2, 20, 2), _weights(2, 30, 3)
    ref = _pot_log(a, b, cost, eps, stopThr=1e-9, numItermax=5000)
    plan, info = sinkhorn(
        torch.tensor(cost), eps, torch.tensor(a), torch.tensor(b), tol=1e-9, max_iter=5000, return_info=True
    )
    assert plan.dtype == torch.float64 and plan.shape == (2, 20, 30)
    assert bool(info.converged.all())
    np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-6, atol=1e-12)


def test_single_problem_uniform_matches_pot_sinkhorn() -> None:
    cost = _points_cost(1, 50, 50, seed=4)[0]
    uniform = np.full(50, 1 / 50)
    ref = ot.sinkhorn(uniform, uniform, cost, 0.05, stopThr=1e-10, numItermax=5000)
    plan, info = sinkhorn(torch.tensor(cost), 0.05, tol=1e-10, max_iter=5000, return_info=True)
    assert plan.shape == (50, 50) and info.iterations.dim() == 0 and bool(info.converged)
    np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-6, atol=1e-12)


def test_matches_pot_batch_solver() -> None:
    cost, a, b = _points_cost(6, 20, 25, seed=5), _weights(6, 20, 6), _weights(6, 25, 7)
    ref = ot.batch.solve_batch(cost, 0.05, a, b, max_iter=5000, tol=1e-11, method="log_sinkhorn", grad="detach").plan
    plan = sinkhorn(torch.tensor(cost), 0.05, torch.tensor(a), torch.tensor(b), tol=1e-11, max_iter=5000)
    np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-6, atol=1e-12)


def test_batched_equals_looped_and_is_deterministic() -> None:
    # Problems of different difficulty finish at different iterations; each must stop on its own.
    cost = torch.tensor(_points_cost(5, 16, 16, seed=8)) * torch.tensor([1.0, 0.3, 3.0, 1.0, 2.0]).view(5, 1, 1)
    plan, info = sinkhorn(cost, 0.05, tol=1e-8, max_iter=3000, return_info=True)
    assert len(set(info.iterations.tolist())) > 1
    for i in range(5):
        single, single_info = sinkhorn(cost[i], 0.05, tol=1e-8, max_iter=3000, return_info=True)
        assert int(single_info.iterations) == int(info.iterations[i])
        torch.testing.assert_close(plan[i], single, rtol=0, atol=1e-14)
    again, again_info = sinkhorn(cost, 0.05, tol=1e-8, max_iter=3000, return_info=True)
    assert torch.equal(plan, again) and torch.equal(info.iterations, again_info.iterations)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [0.05, 0.01])
def test_marginals_met_at_tolerance(dtype: torch.dtype, eps: float) -> None:
    cost = torch.tensor(_points_cost(3, 64, 48, seed=9), dtype=dtype)
    a, b = torch.tensor(_weights(3, 64, 10), dtype=dtype), torch.tensor(_weights(3, 48, 11), dtype=dtype)
    tol = 1e-6
    plan, info = sinkhorn(cost, eps, a, b, tol=tol, max_iter=5000, return_info=True)
    assert plan.dtype == dtype and bool(info.converged.all())
    col_err = torch.linalg.vector_norm(plan.double().sum(-2) - b.double(), dim=-1)
    assert float(col_err.max()) < tol
    # The solver's own estimate, in the working precision: float32 rounds away the last 1e-8.
    atol = 1e-7 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(col_err, info.marginal_error.double(), rtol=1e-2, atol=atol)
    torch.testing.assert_close(plan.sum(-1), a, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("reg_m", [0.1, 1.0, (math.inf, 0.5)])
def test_unbalanced_matches_pot(reg_m: float | tuple[float, float]) -> None:
    cost, a, b = _points_cost(3, 20, 30, seed=12), _weights(3, 20, 13), 2.0 * _weights(3, 30, 14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.stack(
            [
                ot.unbalanced.sinkhorn_unbalanced(a[i], b[i], cost[i], 0.05, reg_m, stopThr=1e-14, numItermax=20000)
                for i in range(3)
            ]
        )
    plan, info = sinkhorn(
        torch.tensor(cost), 0.05, torch.tensor(a), torch.tensor(b), reg_m=reg_m, tol=1e-13, max_iter=20000,
        return_info=True,
    )
    assert bool(info.converged.all())
    np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-6, atol=1e-12)


def test_zero_weights_give_empty_rows_and_columns() -> None:
    # Padding (sentences of different lengths in one batch) is zero weight; the rest must be the
    # plan of the unpadded problem.
    cost = _points_cost(1, 12, 10, seed=15)
    a, b = np.zeros((1, 12)), np.zeros((1, 10))
    a[0, :9], b[0, :7] = 1 / 9, 1 / 7
    for reg_m, solve in ((None, None), (1.0, "unbalanced")):
        plan = sinkhorn(
            torch.tensor(cost), 0.05, torch.tensor(a), torch.tensor(b), reg_m=reg_m, tol=1e-13, max_iter=5000
        )[0]
        inner = cost[0, :9, :7]
        if solve is None:
            ref = ot.bregman.sinkhorn_log(a[0, :9], b[0, :7], inner, 0.05, stopThr=1e-13, numItermax=5000)
        else:
            ref = ot.unbalanced.sinkhorn_unbalanced(
                a[0, :9], b[0, :7], inner, 0.05, reg_m, stopThr=1e-15, numItermax=5000
            )
        assert torch.count_nonzero(plan[9:]) == 0 and torch.count_nonzero(plan[:, 7:]) == 0
        np.testing.assert_allclose(plan[:9, :7].numpy(), ref, rtol=1e-6, atol=1e-12)


def _hard_cost(offset: float) -> torch.Tensor:
    """A 24x27 problem whose kernel exp(-cost/eps) underflows completely when offset is large."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 2, generator=g, dtype=torch.float64), torch.rand(27, 2, generator=g, dtype=torch.float64)
    cost = torch.cdist(x, y) ** 2
    return cost / cost.max() + offset


@pytest.mark.parametrize("offset", [0.0, 10.0])
@pytest.mark.parametrize("eps", [1e-2, 1e-3, 1e-4])
def test_small_eps_follows_log_domain_iterates(eps: float, offset: float) -> None:
    # After the same number of iterations the plan must be POT's log-domain iterate, even when
    # the plain kernel is all zeros (offset 10) and the solver has to fall back to logsumexp.
    cost = _hard_cost(offset)
    a, b = np.full((1, 24), 1 / 24), np.full((1, 27), 1 / 27)
    ref = _pot_log(a, b, cost[None].numpy(), eps, stopThr=0.0, numItermax=200)[0]
    plan, info = sinkhorn(cost, eps, tol=0.0, max_iter=200, return_info=True)
    assert int(info.iterations) == 200 and not bool(info.converged)
    np.testing.assert_allclose(plan.numpy(), ref, rtol=1e-6, atol=1e-12)
    plan32 = sinkhorn(cost.float(), eps, tol=0.0, max_iter=200)
    assert bool(torch.isfinite(plan32).all())
    torch.testing.assert_close(plan32.sum(-1), torch.full((24,), 1 / 24), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_eps_converges_without_nan(dtype: torch.dtype) -> None:
    cost = torch.tensor(_points_cost(2, 16, 16, seed=17), dtype=dtype) + 10.0
    plan, info = sinkhorn(cost, 0.01, tol=1e-6, max_iter=5000, return_info=True)
    assert bool(torch.isfinite(plan).all()) and bool(info.converged.all())
    assert float(torch.linalg.vector_norm(plan.double().sum(-2) - 1 / 16, dim=-1).max()) < 1e-6
    torch.testing.assert_close(plan.sum(-1), torch.full((2, 16), 1 / 16, dtype=dtype), rtol=1e-5, atol=1e-8)


def test_gradcheck_through_iterations() -> None:
    g = torch.Generator().manual_seed(3)
    cost = torch.rand(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: sinkhorn(c, 0.3, tol=0.0, max_iter=30, differentiable=True), (cost,))
    # Relaxed marginals: masses may differ, so gradients to the weights are well defined too.
    a = torch.rand(2, 3, generator=g, dtype=torch.float64).add(0.5).requires_grad_()
    b = torch.rand(2, 4, generator=g, dtype=torch.float64).add(0.5).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c, a, b: sinkhorn(c, 0.3, a, b, reg_m=0.7, tol=0.0, max_iter=30, differentiable=True), (cost, a, b)
    )
    # exp(-cost/eps) underflows to zero here, so the gradient goes through the logsumexp fallback
    # and the absorbed kernels.
    shifted = (cost.detach() + 10.0).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c: sinkhorn(c, 0.012, tol=0.0, max_iter=30, differentiable=True), (shifted,)
    )


def test_gradient_of_transport_cost_matches_finite_differences() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)

    def loss(x: torch.Tensor) -> torch.Tensor:
        cost = cosine_cost(x, y)
        return (sinkhorn(cost, 0.05, tol=1e-12, max_iter=5000, differentiable=True) * cost).sum()

    loss(x).backward()
    step, direction = 1e-6, torch.randn(6, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        numeric = (loss(x + step * direction) - loss(x - step * direction)) / (2 * step)
    assert float(numeric) == pytest.approx(float((x.grad * direction).sum()), rel=1e-5, abs=1e-9)


def test_no_grad_mode_detaches() -> None:
    cost = torch.rand(2, 5, 5, dtype=torch.float64, requires_grad=True)
    plan = sinkhorn(cost, 0.1)
    assert not plan.requires_grad
    plan = sinkhorn(cost, 0.1, differentiable=True)
    assert plan.requires_grad
    plan.sum().backward()
    assert cost.grad is not None and bool(torch.isfinite(cost.grad).all())


def test_max_iter_reports_not_converged() -> None:
    cost = torch.tensor(_points_cost(2, 30, 30, seed=17))
    plan, info = sinkhorn(cost, 0.005, tol=1e-12, max_iter=7, return_info=True)
    assert info.iterations.tolist() == [7, 7] and not bool(info.converged.any())
    assert bool((info.marginal_error > 1e-12).all()) and bool(torch.isfinite(plan).all())


def test_rejects_bad_input() -> None:
    cost = torch.rand(3, 4)
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(cost, 0.0)
    with pytest.raises(ValueError, match="equal total mass"):
        sinkhorn(cost, 0.1, torch.full((3,), 0.5), torch.full((4,), 0.25))
    with pytest.raises(ValueError, match="shape"):
        sinkhorn(cost, 0.1, torch.full((4,), 0.25))
    with pytest.raises(ValueError, match="cost"):
        sinkhorn(torch.ones(3, 4, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="non-finite"):
        sinkhorn(torch.full((3, 4), math.nan), 0.1)


def test_cosine_cost() -> None:
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2, 6, 4, generator=g), torch.randn(2, 7, 4, generator=g)
    expected = 1 - torch.nn.functional.cosine_similarity(x[:, :, None], y[:, None], dim=-1)
    torch.testing.assert_close(cosine_cost(x, y), expected)


def _group_with_an_orphan(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """English, visual and MT embeddings of n well-matched pairs (one direction per item plus
    jitter), except that pair 5's MT caption is the caption of an item outside the group."""
    g = torch.Generator().manual_seed(seed)
    items = torch.nn.functional.normalize(torch.randn(n + 1, 32, generator=g), dim=-1)
    e, v, t = (items + 0.1 * torch.randn(n + 1, 32, generator=g) for _ in range(3))
    t[5] = t[n]
    return e[:n], v[:n], t[:n]


def test_an_isolated_swap_is_visible_to_the_relaxed_plan_and_hidden_by_the_balanced_one() -> None:
    """DCOT's confidence of 64 pairs of which one MT caption belongs to an item outside the group.

    Balanced OT must send the orphaned row's whole mass somewhere, and the only column nobody
    else wants is the orphaned caption, so the swap reads as a match (``ccr score`` version 1, a
    balanced plan at eps 0.1, gave such a pair 0.95 to 1). The relaxed plan lets the orphans
    transport little to each other: the default confidence singles the swap out in every draw.
    """
    n, swapped = 64, 5
    clean = torch.arange(n) != swapped
    for seed in range(6):
        e, v, t = _group_with_an_orphan(n, seed)
        conf, _ = dual_view_confidence(e, t, v, t, 0.5)
        assert conf[swapped] < 0.2 and conf[clean].min() > 0.8, seed
    e, v, t = _group_with_an_orphan(n, 0)
    balanced, plan = dual_view_confidence(e, t, v, t, 0.5, relax=0.0, eps=0.1)
    assert balanced[swapped] > 0.9
    torch.testing.assert_close(plan.sum(-1), torch.full((n,), 1 / n))  # every row sent its whole 1/n
    # the mass a pair sends to its own item's captions, over the marginal 1/n, capped at 1
    same = torch.eye(n, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True  # pairs 0 and 1: two captions of one item
    conf, plan = dual_view_confidence(e, t, v, t, 0.5, same=same)
    torch.testing.assert_close(conf, (n * (plan * same).sum(-2)).clamp(max=1.0))


def test_half_precision_transposed_input_and_padded_gradients() -> None:
    cost64 = torch.tensor(_points_cost(2, 10, 12, seed=18))
    ref = sinkhorn(cost64, 0.1)
    half = sinkhorn(cost64.to(torch.bfloat16), 0.1)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.double(), ref, rtol=0.05, atol=2e-3)
    transposed = sinkhorn(cost64.mT.contiguous().mT, 0.1)
    torch.testing.assert_close(transposed, ref, rtol=0, atol=1e-15)
    # Padded word alignment (CL2CM): gradients stay finite and never reach the padding.
    cost = cost64.clone().requires_grad_()
    a = torch.full((2, 10), 1 / 8, dtype=torch.float64)
    a[:, 8:] = 0
    plan = sinkhorn(cost, 0.1, a, differentiable=True)
    (plan * cost).sum().backward()
    assert bool(torch.isfinite(cost.grad).all())
    assert torch.count_nonzero(cost.grad[:, 8:]) == 0
