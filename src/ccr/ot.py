"""Entropic optimal transport: the one Sinkhorn solver of the package.

DCOT turns transport plans into per-pair confidences and CL2CM aligns words with them; both solve
many small problems per training step, so the solver is batched over a leading dimension and
written in torch (any device, any float dtype, gradients on request).

Numerics. Plain Sinkhorn iterates on scalings u, v of the kernel exp(-C/eps): two matrix-vector
products per iteration, fast, but the kernel underflows at small eps. Log-domain Sinkhorn
iterates on potentials with logsumexp: stable, but it pays n*m exponentials per half-iteration.
This solver keeps the potentials f, g in the log domain and iterates on scalings relative to the
*absorbed* kernel exp((f_i + g_j - C_ij) / eps), which is the current plan itself. Iterations are
matrix-vector products; scalings are absorbed into the potentials (one exponential pass) when they
leave a safe range; and a stretch of scaling iterations that overflowed is discarded and redone
with logsumexp updates. The iterates are those of log-domain Sinkhorn (Schmitzer 2019, "Stabilized
sparse scaling algorithms for entropy regularized transport problems"); only their floating-point
representation differs.

Conventions follow POT (``ot.bregman.sinkhorn_log``, ``ot.unbalanced.sinkhorn_unbalanced`` with
``reg_type="kl"``): the column potential is updated first, convergence is the L2 norm of the
column-marginal violation, checked after iteration 1 and then every ``check_every`` iterations, so
equal settings give equal iterates and the two are compared one to one in tests and bench/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ccr.dcot_settings import DCOT_EPS, DCOT_ITERS, DCOT_RELAX

__all__ = ["SinkhornInfo", "cosine_cost", "dual_view_confidence", "dual_view_plan", "sinkhorn"]


@dataclass(frozen=True)
class SinkhornInfo:
    """Per-problem diagnostics, shape (B,) for batched input and () for a single problem.

    ``marginal_error`` is the L2 norm of the change the next column update would make to the
    column marginal of the returned plan; for balanced problems that is exactly the violation
    ``||plan.sum(-2) - b||``, POT's stopping criterion.
    """

    iterations: torch.Tensor
    marginal_error: torch.Tensor
    converged: torch.Tensor


def sinkhorn(
    cost: torch.Tensor,
    eps: float,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    reg_m: float | tuple[float, float] | None = None,
    differentiable: bool = False,
    check_every: int = 10,
    return_info: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, SinkhornInfo]:
    """Entropic OT plans for a batch of cost matrices ``(B, n, m)`` or one ``(n, m)``.

    Minimises ``<P, C> + eps * KL(P | a b^T)`` with marginals ``a`` (``(B, n)`` or ``(n,)``,
    uniform if None) and ``b``; zero weights are allowed (padding) and get empty rows/columns.
    ``eps`` is in the units of the cost, so scale costs to a known range first. The plan has the
    cost's dtype and device; half-precision costs are solved in float32, as Sinkhorn needs the
    exponent range.

    ``reg_m`` relaxes the marginals into ``reg_m * KL(P 1 | a) + reg_m * KL(P^T 1 | b)``
    (unbalanced OT, POT's parametrisation; a pair gives each side its own strength and ``inf``
    keeps that side hard). ``tol`` bounds the L2 norm of the marginal update, in units of mass
    (see ``SinkhornInfo``); it is checked after iteration 1 and then every ``check_every``
    iterations, each problem stopping on its own, so a plan never depends on which other
    problems share its batch. A check costs a few vector operations and one host sync.
    Convergence is linear and slow when the plan is close to a permutation (eps small against
    the gaps between costs, as for well-matched pairs); a caller that only needs the plan's
    structure, such as a confidence label, caps ``max_iter`` and reads ``info.converged``.

    With ``differentiable=False`` the solve runs under ``no_grad`` (use the plan as a label, or
    the envelope theorem for the transport cost: the gradient of the entropic OT value with
    respect to the cost is the plan); with True, gradients flow through every iteration to
    ``cost``, ``a`` and ``b``, at the memory of a few vectors per iteration.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if max_iter < 1 or check_every < 1:
        raise ValueError("max_iter and check_every must be at least 1")
    if cost.dim() not in (2, 3) or not cost.is_floating_point() or cost.numel() == 0:
        raise ValueError(
            f"cost must be a non-empty float tensor (n, m) or (B, n, m), got {tuple(cost.shape)} {cost.dtype}"
        )
    single = cost.dim() == 2
    C = cost.unsqueeze(0) if single else cost
    if C.dtype in (torch.float16, torch.bfloat16):
        C = C.float()
    fa, fb = _relaxation(reg_m, eps)
    if differentiable:
        plan, info = _solve(C, eps, a, b, fa, fb, max_iter, tol, check_every)
    else:
        with torch.no_grad():
            plan, info = _solve(C, eps, a, b, fa, fb, max_iter, tol, check_every)
    plan = plan.to(cost.dtype)
    if single:
        plan = plan[0]
        info = SinkhornInfo(info.iterations[0], info.marginal_error[0], info.converged[0])
    return (plan, info) if return_info else plan


def cosine_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1 - cos(x_i, y_j)`` for ``x (..., n, d)``, ``y (..., m, d)``: a cost in [0, 2].

    The cost DCOT's two views and CL2CM's word alignment use; its fixed range is what makes one
    ``eps`` meaningful across batches and training stages.
    """
    return 1.0 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).mT


def standardised(cost: torch.Tensor) -> torch.Tensor:
    """A cost in units of its spread: zero mean, unit standard deviation over all its entries.

    How far apart a view's cosines lie depends on the encoder (a triplet-trained tower may keep all
    captions within 0.05 of each other, CLIP spreads them wider); measured in standard deviations,
    one ``eps`` means the same sharpness for every view and stage, and a weight mixes views on a par.
    """
    return (cost - cost.mean()) / cost.std().clamp_min(1e-6)


def dual_view_plan(cost_a: torch.Tensor, cost_b: torch.Tensor, weight: float, eps: float, *, max_iter: int,
                   reg_m: float | None = None) -> torch.Tensor:
    """DCOT's transport plan over ``weight`` x view a + (1 - weight) x view b, each view standardised."""
    cost = weight * standardised(cost_a.float()) + (1.0 - weight) * standardised(cost_b.float())
    return sinkhorn(cost, eps, max_iter=max_iter, reg_m=reg_m)


def dual_view_confidence(anchors_a: torch.Tensor, targets_a: torch.Tensor, anchors_b: torch.Tensor,
                         targets_b: torch.Tensor, weight: float, *, same: torch.Tensor | None = None,
                         eps: float = DCOT_EPS, relax: float = DCOT_RELAX,
                         max_iter: int = DCOT_ITERS) -> tuple[torch.Tensor, torch.Tensor]:
    """DCOT's confidence ``(n,)`` in [0, 1] of n claimed pairs, and its plan ``(n, n)``, without gradient.

    The one definition behind ``ccr score``'s ``dcot_conf`` (fixed embedders, a fixed ``weight``)
    and ``ccr train --method dcot`` (the towers being trained, ``weight`` on a curriculum). Row i
    of every input is pair i. View a compares ``anchors_a`` (English captions) with ``targets_a``
    (MT captions), view b ``anchors_b`` (visual items) with ``targets_b`` (the same MT captions,
    possibly from another encoder); the cost mixes their cosine costs, each standardised, with
    ``weight`` on view a. Rows of the plan are the pairs' anchors, columns their MT captions, the
    marginals uniform (1/n) and relaxed by the KL penalty ``relax`` (``reg_m``; 0 = balanced).

    The confidence of pair i is the mass its MT caption (column i) receives from the anchors of
    its own item (``same`` ``(n, n)``, symmetric, default the diagonal) over its marginal 1/n,
    capped at 1: with one caption per item, the reference's ``n T_ii``. It is read off the
    caption's column because the caption is what may be wrong: an item with a second, correct
    caption in the group sends its mass there, which says nothing for the first one.

    Why relaxed: a balanced plan must transport every row's and column's full mass. When a
    swapped caption's true partner is not among the n pairs (always so for an isolated swap),
    its orphaned row and column are left to each other and look like a match, confidence near 1.
    A relaxed plan may transport little to an orphaned column, and that mass, not its share of
    what the column received, is the confidence.
    """
    with torch.no_grad():
        plan = dual_view_plan(cosine_cost(anchors_a, targets_a), cosine_cost(anchors_b, targets_b), weight, eps,
                              max_iter=max_iter, reg_m=relax or None)
        if same is None:
            same = torch.eye(len(plan), dtype=torch.bool, device=plan.device)
        return ((plan * same).sum(-2) * len(plan)).clamp(0.0, 1.0), plan


def _relaxation(reg_m: float | tuple[float, float] | None, eps: float) -> tuple[float, float]:
    """Exponents of the scaling updates: 1 keeps a marginal hard, reg_m / (reg_m + eps) relaxes it."""
    if reg_m is None:
        return 1.0, 1.0
    pair = (reg_m, reg_m) if isinstance(reg_m, (int, float)) else tuple(reg_m)
    if len(pair) != 2 or not all(r > 0 for r in pair):
        raise ValueError(f"reg_m must be a positive float or a pair of them, got {reg_m!r}")
    fa, fb = (1.0 if math.isinf(r) else r / (r + eps) for r in pair)
    return fa, fb


def _weights(w: torch.Tensor | None, batch: int, size: int, like: torch.Tensor, name: str) -> torch.Tensor:
    if w is None:
        return torch.full((batch, size), 1.0 / size, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(w).to(dtype=like.dtype, device=like.device)
    if w.shape not in ((size,), (batch, size)):
        raise ValueError(f"{name} must have shape ({size},) or ({batch}, {size}), got {tuple(w.shape)}")
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} must be finite and non-negative")
    return w.expand(batch, size)


class _Problem:
    """Per-problem tensors of the active batch, kept together so that they compact together.

    ``row``/``col`` are the log offsets folded into the kernel: log a (KL reference of unbalanced
    OT), or -big where a weight is zero so its row vanishes exactly; ``c_row``/``c_col`` are the
    constants of the log-domain updates; ``pad_row``/``pad_col`` keep padded scalings at 1.
    ``offsets`` says whether any offset is non-zero; if none is, the first kernel skips them.
    """

    def __init__(self, C: torch.Tensor, a: torch.Tensor, b: torch.Tensor, relaxed: bool) -> None:
        big = math.sqrt(torch.finfo(C.dtype).max)
        self.offsets = relaxed
        self.t: dict[str, torch.Tensor] = {"C": C, "index": torch.arange(C.shape[0], device=C.device)}
        for side, w in (("row", a), ("col", b)):
            zero = w == 0
            logw = torch.log(torch.where(zero, torch.ones_like(w), w))
            offset = logw if relaxed else torch.zeros_like(w)
            if bool(zero.any()):
                self.offsets = True
                offset = torch.where(zero, -big, offset)
                self.t[f"pad_{side}"] = zero.to(w.dtype).unsqueeze(1)
            self.t[f"num_{side}"] = (w + zero.to(w.dtype)).unsqueeze(1)
            self.t[side] = offset
            self.t[f"c_{side}"] = torch.where(zero, 0.0, logw - offset)
            self.t[f"pot_{side}"] = torch.zeros_like(w)

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.t[key]

    def optional(self, key: str) -> torch.Tensor | None:
        return self.t.get(key)

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self.t[key] = value

    def keep(self, mask: torch.Tensor) -> None:
        self.t = {k: v[mask] for k, v in self.t.items()}


def _affine(
    C: torch.Tensor, row: torch.Tensor | None, col: torch.Tensor | None, inv_eps: float, out: torch.Tensor | None
) -> torch.Tensor:
    """``row_i + col_j - C_ij / eps`` (a None offset is zero). The offsets are accumulated onto the
    scaled cost as one rank-1 or rank-2 product, so no n*m temporary is made for them."""
    batch, n, m = C.shape
    lhs, rhs = [], []
    if row is not None:
        lhs.append(row)
        rhs.append(torch.ones(batch, m, dtype=C.dtype, device=C.device))
    if col is not None:
        lhs.append(torch.ones(batch, n, dtype=C.dtype, device=C.device))
        rhs.append(col)
    if torch.is_grad_enabled():
        x = C * -inv_eps
        return torch.baddbmm(x, torch.stack(lhs, -1), torch.stack(rhs, -2)) if lhs else x
    x = torch.mul(C, -inv_eps, out=out) if out is not None else C * -inv_eps
    return x.baddbmm_(torch.stack(lhs, -1), torch.stack(rhs, -2)) if lhs else x


def _log_safe(dtype: torch.dtype) -> float:
    """Scalings stay within exp(+-this) between absorptions: a sixth of the exponent range, the
    widest for which the kernel truncation below stays far under the float's resolution."""
    return math.log(torch.finfo(dtype).max) / 6


def _kernel(p: _Problem, inv_eps: float, out: torch.Tensor | None, initial: bool = False) -> torch.Tensor:
    """The absorbed kernel. Entries below ``tiny * exp(safe)`` become exact zeros: subnormal
    products make CPU matrix-vector products an order of magnitude slower, and such an entry
    carries at most ``tiny * exp(3 safe)`` of mass in a returned plan (2e-19 in float32)."""
    dtype = p["C"].dtype
    floor = math.log(torch.finfo(dtype).tiny) + _log_safe(dtype)
    if initial and not p.offsets:
        x = _affine(p["C"], None, None, inv_eps, out)
    else:
        x = _affine(p["C"], p["pot_row"] + p["row"], p["pot_col"] + p["col"], inv_eps, out)
    if torch.is_grad_enabled():
        return torch.exp(F.threshold(x, floor, -math.inf))
    return F.threshold(x, floor, -math.inf, inplace=True).exp_()


def _log_steps(p: _Problem, count: int, inv_eps: float, fa: float, fb: float) -> None:
    """``count`` Sinkhorn iterations on the potentials with logsumexp: the safe path."""
    for _ in range(count):
        lse = torch.logsumexp(_affine(p["C"], p["pot_row"] + p["row"], None, inv_eps, None), dim=1)
        p["pot_col"] = fb * (p["c_col"] - lse)
        lse = torch.logsumexp(_affine(p["C"], None, p["pot_col"] + p["col"], inv_eps, None), dim=2)
        p["pot_row"] = fa * (p["c_row"] - lse)


def _row_masses(K: torch.Tensor, s_col: torch.Tensor) -> torch.Tensor:
    """``K s_col`` per problem, as (B, 1, n). A single problem goes through ``torch.mv``, which on
    CPU runs this row-major product about 1.5x faster than ``bmm`` with a batch of one."""
    if K.shape[0] == 1:
        return torch.mv(K[0], s_col[0, 0]).view(1, 1, -1)
    return torch.bmm(s_col, K.mT)


def _scale(p: _Problem, side: str, t: torch.Tensor, f: float, gain: torch.Tensor | None) -> torch.Tensor:
    """New scaling of one side from its kernel masses ``t``: b / t, or (b / t)^f * gain if relaxed."""
    pad = p.optional(f"pad_{side}")
    s = p[f"num_{side}"] / (t if pad is None else t + pad)
    return s if gain is None else s.pow(f) * gain


def _solve(
    C: torch.Tensor,
    eps: float,
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    fa: float,
    fb: float,
    max_iter: int,
    tol: float,
    check_every: int,
) -> tuple[torch.Tensor, SinkhornInfo]:
    batch, n, m = C.shape
    a = _weights(a, batch, n, C, "a")
    b = _weights(b, batch, m, C, "b")
    if fa == 1 and fb == 1:
        mass_a, mass_b = a.sum(-1), b.sum(-1)
        if not bool(torch.allclose(mass_a, mass_b, rtol=1e-5, atol=0.0)):
            raise ValueError("balanced OT needs a and b of equal total mass; pass reg_m for unbalanced OT")
    inv_eps = 1.0 / eps
    safe = math.exp(_log_safe(C.dtype))
    grad = torch.is_grad_enabled()
    p = _Problem(C, a, b, relaxed=fa != 1 or fb != 1)

    def absorb(s_row: torch.Tensor, s_col: torch.Tensor) -> None:
        p["pot_row"] = p["pot_row"] + torch.log(s_row.squeeze(1))
        p["pot_col"] = p["pot_col"] + torch.log(s_col.squeeze(1))

    def rebuild(
        out: torch.Tensor | None, initial: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor | None]]:
        # After an absorption the row update is repeated on the new kernel. In exact arithmetic
        # it changes nothing (the last update was a row update); in floating point it removes
        # the rounding of exp(f + g - C/eps), which grows with |C/eps| and would otherwise show
        # in the row marginals of a plan returned right after an absorption.
        K = _kernel(p, inv_eps, out, initial)
        gains = [
            None if f == 1 else torch.exp((f - 1) * p[f"pot_{side}"]).unsqueeze(1)
            for side, f in (("row", fa), ("col", fb))
        ]
        ones_col = torch.ones(K.shape[0], 1, m, dtype=C.dtype, device=C.device)
        if initial:
            return K, torch.ones(K.shape[0], 1, n, dtype=C.dtype, device=C.device), ones_col, gains
        return K, _scale(p, "row", _row_masses(K, ones_col), fa, gains[0]), ones_col, gains

    buffer = None if grad else torch.empty_like(C, memory_format=torch.contiguous_format)
    K, s_row, s_col, gains = rebuild(buffer, initial=True)
    it = 0
    snapshot = (0, p["pot_row"], p["pot_col"], s_row, s_col)
    done: list[tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]] = []
    while True:
        t_col = torch.bmm(s_row, K)
        new_col = _scale(p, "col", t_col, fb, gains[1])
        if it == max_iter or (it >= 1 and (it - 1) % check_every == 0):
            err = torch.linalg.vector_norm(t_col * (new_col - s_col), dim=(1, 2))
            stats = torch.cat((torch.stack(torch.aminmax(s_row)), torch.stack(torch.aminmax(s_col)), err)).tolist()
            if not (all(math.isfinite(x) for x in stats) and min(stats[0], stats[2]) > 0):
                # The scalings over- or underflowed since the last good check: redo that stretch
                # in the log domain.
                it, p["pot_row"], p["pot_col"], s_row, s_col = snapshot
                absorb(s_row, s_col)
                target = min(max_iter, it + 1 if it == 0 else it + check_every)
                _log_steps(p, target - it, inv_eps, fa, fb)
                if not bool(torch.isfinite(p["pot_row"]).all() and torch.isfinite(p["pot_col"]).all()):
                    raise ValueError(
                        "non-finite potentials: the cost has NaN, or a row or column whose costs are all +inf"
                    )
                it = target
                K, s_row, s_col, gains = rebuild(None if grad else K)
                snapshot = (it, p["pot_row"], p["pot_col"], s_row, s_col)
                continue
            if min(stats[0], stats[2]) < 1 / safe or max(stats[1], stats[3]) > safe:
                absorb(s_row, s_col)
                K, s_row, s_col, gains = rebuild(None if grad else K)
                continue
            errs = stats[4:]
            if it == max_iter or all(e < tol for e in errs):
                plan = K * s_row.mT * s_col if grad else K.mul_(s_row.mT).mul_(s_col)
                done.append((p["index"], plan, it, err))
                break
            finished = torch.tensor([e < tol for e in errs], device=C.device)
            if bool(finished.any()):
                plan = K[finished] * s_row[finished].mT * s_col[finished]
                done.append((p["index"][finished], plan, it, err[finished]))
                alive = ~finished
                p.keep(alive)
                K, s_row, s_col, new_col = K[alive], s_row[alive], s_col[alive], new_col[alive]
                gains = [None if g is None else g[alive] for g in gains]
            snapshot = (it, p["pot_row"], p["pot_col"], s_row, s_col)
        s_col = new_col
        s_row = _scale(p, "row", _row_masses(K, s_col), fa, gains[0])
        it += 1
    return _assemble(done, tol)


def _assemble(
    done: list[tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]], tol: float
) -> tuple[torch.Tensor, SinkhornInfo]:
    """Put the problems, finished in groups at different iterations, back in input order."""
    index = torch.cat([d[0] for d in done])
    plan = done[0][1] if len(done) == 1 else torch.cat([d[1] for d in done])
    err = torch.cat([d[3] for d in done])
    iters = torch.cat([torch.full_like(d[0], d[2]) for d in done])
    if len(done) > 1:
        order = torch.argsort(index)
        plan, err, iters = plan[order], err[order], iters[order]
    return plan, SinkhornInfo(iterations=iters, marginal_error=err.detach(), converged=err.detach() < tol)
