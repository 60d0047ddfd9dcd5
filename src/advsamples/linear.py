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
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import linprog

from advsamples.attacks._validate import check_clip, check_finite_nonneg, check_inputs

__all__ = ["linf_box_optimum", "brute_force_linf_optimum", "lp_linf_optimum", "MAX_BRUTE_FORCE_DIM"]

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
