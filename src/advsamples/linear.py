r"""The L-infinity attack on a linear score, solved three ways.

For a score :math:`w^\top x'` that is linear in the input, the L-infinity attack

.. math::

    \max_{x'} \; w^\top x' \quad \text{s.t.} \quad \|x' - x\|_\infty \le \epsilon,
    \quad a \le x' \le b

is a linear programme over a box, so it separates by coordinate: each :math:`x'_i` moves to
the end of its feasible interval :math:`[\max(x_i-\epsilon, a), \min(x_i+\epsilon, b)]` in
the direction of :math:`\operatorname{sign}(w_i)`. That is exactly what FGSM does (with
:math:`w` the input gradient), which the "formulation" chapter checks against a brute-force
enumeration of the box's corners and against :func:`scipy.optimize.linprog`.

On coordinates with :math:`w_i = 0` every feasible value is optimal; all three functions
return :math:`x_i` there, so their results can be compared exactly.

The L2 counterpart for a linear (softmax) classifier: :func:`linear_min_distortion` is the exact
minimum distortion that moves an input into a target class inside the box (a convex quadratic
programme, the yardstick of the L-BFGS chapter), and :func:`nearest_target_min_distortion` the
smallest of those over every class but the true one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.optimize
import torch
from scipy.optimize import linprog

from advsamples.attacks._blas import single_threaded_blas
from advsamples.attacks._validate import check_clip, check_finite_nonneg, check_inputs

__all__ = [
    "MAX_BRUTE_FORCE_DIM",
    "brute_force_linf_optimum",
    "linear_min_distortion",
    "linf_box_optimum",
    "lp_linf_optimum",
    "nearest_target_min_distortion",
]

MAX_BRUTE_FORCE_DIM = 16
"""Largest dimension :func:`brute_force_linf_optimum` accepts (it visits ``2**n`` corners)."""


def _box(
    w: torch.Tensor, x: torch.Tensor, eps: float, clip: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the problem and return the per-coordinate feasible interval ``[lower, upper]``."""
    eps = check_finite_nonneg("eps", eps)
    lo, hi = check_clip(clip)
    if not isinstance(w, torch.Tensor) or not isinstance(x, torch.Tensor) or w.shape != x.shape:
        raise ValueError(
            f"w and x must be tensors of the same shape, got w: {tuple(getattr(w, 'shape', ()))}, "
            f"x: {tuple(getattr(x, 'shape', ()))}"
        )
    if x.numel() == 0:
        raise ValueError("x must have at least one coordinate, got an empty tensor")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("w must be finite")
    check_inputs(x.reshape(1, -1), (lo, hi))
    lower = (x - eps).clamp_min(lo)
    upper = (x + eps).clamp_max(hi)
    return lower, upper


def linf_box_optimum(
    w: torch.Tensor, x: torch.Tensor, eps: float, clip: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    r"""Exact maximiser of :math:`w^\top x'` over :math:`\{\|x'-x\|_\infty\le\epsilon\}\cap[a,b]^n`.

    .. math::

        x'_i = \begin{cases} \min(x_i + \epsilon, b) & w_i > 0 \\
                             \max(x_i - \epsilon, a) & w_i < 0 \\
                             x_i & w_i = 0 \end{cases}

    Arguments:
        w: weights, any shape.
        x: the centre of the box, same shape as ``w``, floating point, inside ``clip``.
        eps: L-infinity radius, finite and ``>= 0``.
        clip: the valid input range ``(a, b)``, ``a < b``.

    Returns:
        ``x'`` with the shape and dtype of ``x``.

    Examples::

        >>> linf_box_optimum(torch.tensor([2.0, -1.0, 0.0]), torch.tensor([0.5, 0.05, 0.5]), 0.1)
        tensor([0.6000, 0.0000, 0.5000])
    """
    lower, upper = _box(w, x, eps, clip)
    return torch.where(w > 0, upper, torch.where(w < 0, lower, x))


def brute_force_linf_optimum(
    w: torch.Tensor, x: torch.Tensor, eps: float, clip: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    r"""Maximiser of :math:`w^\top x'` found by visiting all :math:`2^n` corners of the box.

    A linear function attains its maximum over a box at a corner, so enumerating the corners
    of :math:`\prod_i [\max(x_i-\epsilon,a), \min(x_i+\epsilon,b)]` (in float64) solves the
    problem without using the closed form. Coordinates with :math:`w_i = 0`, where any value is
    optimal, are then reset to :math:`x_i` (the convention of :func:`linf_box_optimum`).

    Arguments:
        w, x, eps, clip: as in :func:`linf_box_optimum`, with ``n = x.numel() <= 16``.

    Returns:
        ``x'`` with the shape and dtype of ``x``.

    Raises:
        ValueError: if ``n > 16`` (65,536 corners), besides the checks of
            :func:`linf_box_optimum`.
    """
    lower, upper = _box(w, x, eps, clip)
    n = x.numel()
    if n > MAX_BRUTE_FORCE_DIM:
        raise ValueError(f"n = x.numel() must be <= {MAX_BRUTE_FORCE_DIM} for brute force, got n={n}")
    lo64, up64, w64 = (t.reshape(-1).double() for t in (lower, upper, w))
    bits = torch.tensor(list(itertools.product((False, True), repeat=n)), dtype=torch.bool)
    corners = torch.where(bits, up64, lo64)  # (2**n, n)
    best = corners[int(torch.argmax(corners @ w64))]
    best = torch.where(w64 == 0, x.reshape(-1).double(), best)
    return best.to(x.dtype).reshape(x.shape)


def lp_linf_optimum(
    w: torch.Tensor, x: torch.Tensor, eps: float, clip: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    r"""Maximiser of :math:`w^\top x'` over the box, solved as a linear programme.

    Calls :func:`scipy.optimize.linprog` (HiGHS) on :math:`\min_{x'} -w^\top x'` with the
    box as variable bounds, in float64. Coordinates with :math:`w_i = 0`, where the solver may
    return any feasible value, are reset to :math:`x_i` (the convention of
    :func:`linf_box_optimum`).

    Arguments:
        w, x, eps, clip: as in :func:`linf_box_optimum`.

    Returns:
        ``x'`` with the shape and dtype of ``x``.

    Raises:
        RuntimeError: if the solver does not report success.
    """
    lower, upper = _box(w, x, eps, clip)
    w64 = w.detach().reshape(-1).double().cpu().numpy()
    bounds = np.stack(
        [
            lower.detach().reshape(-1).double().cpu().numpy(),
            upper.detach().reshape(-1).double().cpu().numpy(),
        ],
        axis=1,
    )
    res = linprog(c=-w64, bounds=bounds, method="highs")
    if not res.success:
        raise RuntimeError(f"linprog failed: {res.message}")
    sol = np.where(w64 == 0, x.detach().reshape(-1).double().cpu().numpy(), res.x)
    return torch.as_tensor(sol, dtype=x.dtype, device=x.device).reshape(x.shape)


# --------------------------------------------------------------------------- L2, linear softmax
@single_threaded_blas()
def linear_min_distortion(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    target: torch.Tensor,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    r"""Exact minimum distortion ``sqrt(sum(r**2) / n)`` that makes a linear model score the target
    at least as high as every other class, with ``x + r`` inside the box ``clip``.

    For logits :math:`z = W x + b` the problem is the convex quadratic programme

    .. math::

        \min_r \lVert r\rVert_2^2 \;\text{s.t.}\; (w_t - w_j)\cdot(x + r) + b_t - b_j \ge 0
        \;(j \ne t),\quad lo \le x + r \le hi.

    It is solved through its dual, a concave function of the ``classes - 1`` multipliers
    :math:`\mu \ge 0`: for fixed :math:`\mu` the box-constrained minimiser over :math:`r` is
    :math:`r_k = \operatorname{clip}((A^\top\mu)_k / 2, lo_k - x_k, hi_k - x_k)` with
    :math:`A` the rows :math:`w_t - w_j`, and the dual's gradient is minus the constraint values.
    L-BFGS-B maximises it; by weak duality the value returned is a certified *lower bound* on
    the minimum, equal to it at convergence. Samples for which the target cannot be reached inside
    the box (the dual is unbounded) return ``inf``; samples already at the target return 0.

    Args:
        weight: ``(classes, n)`` weights; bias: ``(classes,)``.
        x: ``(N, ...)`` inputs with ``n`` values each, inside ``clip``.
        target: ``(N,)`` target classes.
        clip: the box ``(lo, hi)``.

    Returns:
        float64 ``(N,)`` minimum distortions (in the units of Szegedy et al.'s Table 1).
    """
    w = weight.detach().double().cpu().numpy()
    b = bias.detach().double().cpu().numpy()
    classes, n = w.shape
    xs = x.detach().double().reshape(len(x), -1).cpu().numpy()
    if xs.shape[1] != n:
        raise ValueError(f"x has {xs.shape[1]} values per sample but weight expects {n}")
    ts = torch.as_tensor(target).long().tolist()
    if len(ts) != len(xs) or any(not 0 <= t < classes for t in ts):
        raise ValueError(f"target must hold {len(xs)} classes in [0, {classes})")
    lo, hi = float(clip[0]), float(clip[1])
    out = np.empty(len(xs))
    for i, (xi, t) in enumerate(zip(xs, ts, strict=True)):
        others = [j for j in range(classes) if j != t]
        a = w[t] - w[others]
        c = a @ xi + b[t] - b[others]
        if (c >= 0).all():
            out[i] = 0.0
            continue
        lower, upper = lo - xi, hi - xi
        norm = float(np.abs(a).sum(axis=1).max())
        scale = 1.0 / norm if norm > 0 else 1.0

        def neg_dual(
            mu: np.ndarray, a=a, c=c, lower=lower, upper=upper, scale=scale
        ) -> tuple[float, np.ndarray]:
            m = mu * scale  # optimise a scaled multiplier: conditioning
            r = np.clip(a.T @ m / 2.0, lower, upper)
            g = r @ r - m @ (a @ r + c)
            return -g, (a @ r + c) * scale

        res = scipy.optimize.minimize(
            neg_dual,
            np.zeros(len(others)),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * len(others),
            options={"maxiter": 10_000, "maxfun": 20_000, "ftol": 1e-15, "gtol": 1e-12},
        )
        m = res.x * scale
        r = np.clip(a.T @ m / 2.0, lower, upper)
        value = -float(res.fun)
        if (a @ r + c).min() < -1e-6 * max(1.0, float(np.abs(c).max())) and not _reachable(
            a, c, lower, upper
        ):
            out[i] = math.inf
            continue
        out[i] = math.sqrt(max(value, 0.0) / n)
    return torch.from_numpy(out)


def _reachable(a: np.ndarray, c: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> bool:
    """Whether some ``r`` in the box satisfies ``a @ r + c >= 0`` (a linear programme: maximise the
    smallest slack ``s`` subject to ``a @ r + c >= s``)."""
    k, n = a.shape
    res = scipy.optimize.linprog(
        np.r_[np.zeros(n), -1.0],
        A_ub=np.c_[-a, np.ones(k)],
        b_ub=c,
        bounds=[*zip(lower, upper, strict=True), (None, 1.0)],
        method="highs",
    )
    return bool(res.status == 0 and -res.fun >= 0)


def nearest_target_min_distortion(
    weight: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """Per sample, the smallest :func:`linear_min_distortion` over every target class but the
    sample's label ``y`` (the exact minimum distortion of an untargeted attack on a linear model).

    Args:
        weight: ``(classes, n)`` weights; bias: ``(classes,)``.
        x: ``(N, ...)`` inputs with ``n`` values each, inside ``clip``.
        y: ``(N,)`` true labels in ``[0, classes)`` (never a target).
        clip: the box ``(lo, hi)``.

    Returns:
        float64 ``(N,)``; ``inf`` where no other class can be reached inside the box.
    """
    classes = weight.shape[0]
    labels = torch.as_tensor(y).long().reshape(-1)
    if len(labels) != len(x) or bool(((labels < 0) | (labels >= classes)).any()):
        raise ValueError(f"y must hold {len(x)} labels in [0, {classes})")
    every = np.stack(
        [
            linear_min_distortion(weight, bias, x, torch.full((len(x),), t), clip).numpy()
            for t in range(classes)
        ]
    )
    every[labels.numpy(), np.arange(len(x))] = np.inf  # the true class is not a target
    return torch.from_numpy(every.min(axis=0))
