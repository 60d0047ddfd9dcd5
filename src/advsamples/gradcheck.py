r"""Check a model's input gradient against central finite differences.

Every gradient-based attack trusts :func:`torch.autograd.grad`; a custom layer with a wrong
``backward`` would silently give FGSM a wrong direction. :func:`input_gradient_error`
compares the autograd input gradient of the cross-entropy loss with central differences,

.. math::

    g^{\mathrm{fd}}_i = \frac{L(x + h e_i) - L(x - h e_i)}{2h}, \qquad
    \mathrm{err} = \frac{\|g^{\mathrm{ad}}_S - g^{\mathrm{fd}}_S\|_2}
                        {\max(\|g^{\mathrm{fd}}_S\|_2,\ \mathrm{tiny})},

on a set :math:`S` of input coordinates, in float64.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from advsamples.attacks._validate import check_finite_nonneg, check_labels, num_classes

__all__ = ["input_gradient_error"]

_CHUNK = 256  # perturbed samples per forward pass


def input_gradient_error(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    h: float = 1e-6,
    n_coords: int | None = None,
    generator: torch.Generator | None = None,
) -> float:
    r"""Max relative error between autograd's and finite differences' input gradient.

    With :math:`L(x) = \sum_j \mathrm{CE}(f(x)_j, y_j)` (summed over the batch),

    .. math::

        \mathrm{err} = \frac{\|g^{\mathrm{ad}}_S - g^{\mathrm{fd}}_S\|_2}
                            {\max(\|g^{\mathrm{fd}}_S\|_2,\ \mathrm{tiny})}, \qquad
        g^{\mathrm{fd}}_i = \frac{L(x + h e_i) - L(x - h e_i)}{2h},

    where :math:`g^{\mathrm{ad}} = \nabla_x L` from autograd, :math:`S` is the set of checked
    coordinates and ``tiny`` the smallest positive float64. The model is deep-copied, cast to
    float64 and put in eval mode (dropout off), so the caller's model is never changed. Since
    coordinate :math:`i` of sample :math:`j` only moves that sample's loss, each difference is
    taken on :math:`\mathrm{CE}(f(x_j), y_j)` alone, the perturbed samples being stacked into
    batches; this assumes samples do not interact in eval mode (true of ordinary layers).

    Central differences in float64 have truncation error :math:`O(h^2)` and rounding error
    about :math:`10^{-16}\,|L|/h`, so with the default ``h = 1e-6`` a correct gradient gives a
    relative error of order :math:`10^{-8}` or less (depending on the gradient's size), while a
    wrong ``backward`` typically gives :math:`10^{-1}` or more.

    Arguments:
        model: classifier returning logits shaped ``(N, C)``.
        x: inputs shaped ``(N, ...)``, floating point.
        y: int64-compatible labels shaped ``(N,)`` in ``[0, C)``.
        h: finite-difference step, finite and ``> 0``.
        n_coords: number of input coordinates (over the whole batch) drawn at random without
            replacement to check; ``None`` checks them all.
        generator: random generator for the choice of coordinates.

    Returns:
        The relative error as a Python float (``0.0`` when both gradients vanish).

    Raises:
        ValueError: naming the argument, for a bad ``h``, ``n_coords``, ``x`` or ``y``.
    """
    h = check_finite_nonneg("h", h)
    if h == 0:
        raise ValueError(f"h must be > 0, got h={h!r}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or x.shape[0] == 0:
        desc = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty floating-point batch shaped (N, ...), got {desc}")
    total = x.numel()
    if n_coords is None:
        n_coords = total
    if isinstance(n_coords, bool) or not isinstance(n_coords, int) or not 1 <= n_coords <= total:
        raise ValueError(f"n_coords must be an int in [1, {total}] or None, got n_coords={n_coords!r}")

    m = copy.deepcopy(model).double().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    x64 = x.detach().to(torch.float64).clone()

    with torch.enable_grad():
        x_in = x64.clone().requires_grad_(True)
        logits = m(x_in)
        labels = check_labels("y", y, x.shape[0], num_classes(logits)).to(logits.device)
        loss = F.cross_entropy(logits, labels, reduction="sum")
        (g_ad,) = torch.autograd.grad(loss, x_in)

    if n_coords == total:
        coords = torch.arange(total)
    else:
        coords = torch.randperm(total, generator=generator)[:n_coords]
    per_sample = total // x.shape[0]
    samples = (coords // per_sample).to(x64.device)
    offsets = (coords % per_sample).to(x64.device)
    flat = x64.reshape(x.shape[0], per_sample)

    g_fd = torch.empty(n_coords, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, n_coords, _CHUNK):
            s = samples[start : start + _CHUNK]
            o = offsets[start : start + _CHUNK]
            k = torch.arange(len(s), device=x64.device)
            plus, minus = flat[s].clone(), flat[s].clone()
            plus[k, o] += h
            minus[k, o] -= h
            batch = torch.cat([plus, minus]).reshape(2 * len(s), *x.shape[1:])
            ce = F.cross_entropy(m(batch), labels[s].repeat(2), reduction="none")
            step = plus[k, o] - minus[k, o]  # the step actually represented, about 2h
            g_fd[start : start + len(s)] = ((ce[: len(s)] - ce[len(s) :]) / step).cpu()

    g_ad_s = g_ad.reshape(-1)[coords.to(g_ad.device)].cpu()
    denom = max(float(torch.linalg.vector_norm(g_fd)), torch.finfo(torch.float64).tiny)
    err = float(torch.linalg.vector_norm(g_ad_s - g_fd)) / denom
    return err if math.isfinite(err) else math.inf
