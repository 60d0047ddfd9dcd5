r"""The computations of the "cost-gradient formulation" chapter.

- :func:`gradient_checks`: autograd's input gradient against central finite differences, in
  float64, for every model of the study, at the test digits and off the kinks of max-pooling
  and ReLU (:func:`jitter`, :func:`pooling_tie_fraction`);
- :func:`chain_rule_input_gradient` and :func:`chain_rule_check`: the input gradient of a fully
  connected network written out layer by layer (the chain rule that autograd automates);
- :class:`LinearBinary`, :func:`random_linear_instance`, :func:`compare_linf_optima` and
  :func:`linear_comparisons`: on a binary linear model, FGSM's point against the exact optimum
  of the L-infinity attack found three other ways (closed form, brute force over the box's
  corners, linear programming).

Everything random takes a ``seed`` and uses its own :class:`torch.Generator`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from advsamples import models as M
from advsamples.attacks.fgsm import fgsm
from advsamples.gradcheck import input_gradient_error
from advsamples.linear import MAX_BRUTE_FORCE_DIM, brute_force_linf_optimum, linf_box_optimum, lp_linf_optimum

__all__ = [
    "GradCheck",
    "LinearBinary",
    "OptimaComparison",
    "chain_rule_input_gradient",
    "compare_linf_optima",
    "chain_rule_check",
    "gradient_checks",
    "linear_comparisons",
    "is_piecewise",
    "jitter",
    "pooling_tie_fraction",
    "random_linear_instance",
]


# --------------------------------------------------------------------------- gradient checks
@dataclass(frozen=True)
class GradCheck:
    """One model's gradient check: relative error of autograd against central finite differences,
    at the test digits and at the same digits moved off the kinks by noise (see :func:`jitter`)."""

    model: str
    piecewise: bool
    raw_error: float
    jittered_error: float
    n_samples: int
    n_coords: int


def gradient_checks(
    sets: Mapping[str, tuple[nn.Module, torch.Tensor, torch.Tensor]],
    *,
    n_coords: int,
    h: float,
    delta: float,
    seed: int,
) -> list[GradCheck]:
    """:func:`advsamples.gradcheck.input_gradient_error` of every model of ``sets``
    (``name -> (model, x, y)``) on ``min(n_coords, x.numel())`` input coordinates drawn with
    ``seed``, in float64 with step ``h``: once at ``x``, once at ``jitter(x, delta, seed)``."""
    rows = []
    for name, (model, x, y) in sets.items():
        k = min(n_coords, x.numel())
        errors = [
            input_gradient_error(model, xs, y, h=h, n_coords=k, generator=torch.Generator().manual_seed(seed))
            for xs in (x, jitter(x, delta, seed))
        ]
        rows.append(GradCheck(name, is_piecewise(model), errors[0], errors[1], len(x), k))
    return rows


_DERIVATIVES = {
    torch.sigmoid: lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    torch.tanh: lambda a: 1 - torch.tanh(a) ** 2,
    torch.relu: lambda a: (a > 0).to(a.dtype),
}


def chain_rule_input_gradient(model: M.MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The input gradient of the summed cross-entropy of an :class:`~advsamples.models.MLP`,
    by the chain rule written out, in float64 (no autograd).

    With :math:`h_0 = x`, :math:`a_l = W_l h_{l-1} + b_l`, :math:`h_l = \sigma(a_l)` and logits
    :math:`z = W_{\mathrm{out}} h_K + b_{\mathrm{out}}`:

    .. math::

        \delta_z = \operatorname{softmax}(z) - e_y, \quad
        \delta_K = (W_{\mathrm{out}}^\top \delta_z) \odot \sigma'(a_K), \quad
        \delta_{l-1} = (W_l^\top \delta_l) \odot \sigma'(a_{l-1}), \quad
        \nabla_x L = W_1^\top \delta_1.

    Returns:
        float64 tensor shaped like ``x``.
    """
    if not isinstance(model, M.MLP):
        raise ValueError(f"model must be an advsamples.models.MLP, got {type(model).__name__}")
    deriv = _DERIVATIVES[model.act]
    with torch.no_grad():
        h = x.detach().double().flatten(1)
        pre: list[torch.Tensor] = []
        for layer in model.hidden:
            a = h @ layer.weight.double().T + layer.bias.double()
            pre.append(a)
            h = model.act(a)
        z = h @ model.out.weight.double().T + model.out.bias.double()
        delta = z.softmax(1) - F.one_hot(y.long(), z.shape[1]).double()
        delta = delta @ model.out.weight.double()  # gradient w.r.t. h_K
        for layer, a in zip(reversed(model.hidden), reversed(pre), strict=True):
            delta = (delta * deriv(a)) @ layer.weight.double()  # through sigma, then W_l
    return delta.reshape(x.shape)


def chain_rule_check(model: M.MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Relative L2 difference between :func:`chain_rule_input_gradient` and autograd's input
    gradient (both float64) of the summed cross-entropy."""
    m64 = copy.deepcopy(model).double().eval()
    with torch.enable_grad():
        x_in = x.detach().double().requires_grad_(True)
        loss = F.cross_entropy(m64(x_in), y.long(), reduction="sum")
        (auto,) = torch.autograd.grad(loss, x_in)
    by_hand = chain_rule_input_gradient(model, x, y)
    return float((by_hand - auto).norm() / auto.norm().clamp_min(torch.finfo(torch.float64).tiny))


# --------------------------------------------------------------------------- the linear case
class LinearBinary(nn.Module):
    """Binary logistic regression on flat features, logits ``(0, w·x + b)``, as in
    :class:`advsamples.models.BinaryLogistic`; softmax cross-entropy on them is the logistic loss."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(w.detach().clone().reshape(-1), requires_grad=False)
        self.b = nn.Parameter(torch.tensor(float(b), dtype=w.dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(z), z], dim=1)


def random_linear_instance(n: int, seed: int) -> tuple[LinearBinary, torch.Tensor, torch.Tensor]:
    """A random binary linear model on ``n`` features (float64, weights N(0, 1), bias N(0, 1)),
    a random input in ``[0, 1]^n`` (shape ``(1, n)``) and its predicted label (shape ``(1,)``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got n={n!r}")
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, generator=g, dtype=torch.float64)
    b = float(torch.randn(1, generator=g, dtype=torch.float64))
    x = torch.rand(1, n, generator=g, dtype=torch.float64)
    model = LinearBinary(w, b)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


@dataclass(frozen=True)
class OptimaComparison:
    """The L-infinity attack on a binary linear model, solved by several methods.

    Attributes:
        points: method name -> attacked input ``x'`` (float64, shaped like ``x``).
        losses: method name -> cross-entropy loss at ``x'``.
        max_point_diff: largest coordinate difference between any method's point and FGSM's.
        max_loss_diff: largest difference between any two methods' losses.
        clean_loss: the loss at ``x``.
        best_random_loss: the largest loss over ``n_random`` random corners of the feasible box
            (NaN when ``n_random`` is 0): what a search without the gradient finds.
    """

    points: dict[str, torch.Tensor]
    losses: dict[str, float]
    max_point_diff: float
    max_loss_diff: float
    clean_loss: float
    best_random_loss: float


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(x), y.expand(len(x)), reduction="none")


def compare_linf_optima(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    clip: tuple[float, float] = (0.0, 1.0),
    n_random: int = 0,
    seed: int = 0,
) -> OptimaComparison:
    r"""FGSM against the exact maximiser of the loss of a binary linear model over the L-infinity
    ball of radius ``eps`` intersected with the box ``clip``.

    ``model`` returns logits :math:`(0, w^\top x + b)` (a :class:`LinearBinary` or
    :class:`~advsamples.models.BinaryLogistic`). Its cross-entropy for label :math:`y` is
    increasing in :math:`s\,w^\top x'` with :math:`s = +1` for :math:`y = 0` and :math:`-1` for
    :math:`y = 1`, so the attack maximises the linear score :math:`s\,w^\top x'`:
    :func:`~advsamples.linear.linf_box_optimum` (closed form), :func:`~advsamples.linear.lp_linf_optimum`
    (``linprog``) and, for at most 16 features, :func:`~advsamples.linear.brute_force_linf_optimum`.
    Everything is computed in float64 on a copy of the model.

    Arguments:
        model: the binary linear model.
        x: one input, shaped ``(1, ...)``, inside ``clip``.
        y: its label, shaped ``(1,)``, 0 or 1.
        eps: the L-infinity budget.
        clip: the valid input range.
        n_random: random corners of the feasible box to try as a gradient-free baseline.
        seed: seed of those random corners.
    """
    if x.dim() < 2 or x.shape[0] != 1:
        raise ValueError(f"x must be a single input shaped (1, ...), got {tuple(x.shape)}")
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random must be an integer >= 0, got n_random={n_random!r}")
    m = copy.deepcopy(model).double().eval()
    x64 = x.detach().double()
    y = y.long().reshape(1)
    w = _weights(m).reshape(x64.shape[1:])
    score = w if int(y) == 0 else -w
    points = {"FGSM": fgsm(m, x64, y, eps, clip=clip)}
    points["closed form"] = linf_box_optimum(score, x64[0], eps, clip)[None]
    if x64[0].numel() <= MAX_BRUTE_FORCE_DIM:
        points["brute force"] = brute_force_linf_optimum(score, x64[0], eps, clip)[None]
    points["linear programme"] = lp_linf_optimum(score, x64[0], eps, clip)[None]
    losses = {k: float(_loss(m, p, y)[0]) for k, p in points.items()}
    ref = points["FGSM"]
    max_point = max(float((p - ref).abs().max()) for p in points.values())
    vals = list(losses.values())
    best_random = math.nan
    if n_random:
        g = torch.Generator().manual_seed(seed)
        lo = (x64 - eps).clamp_min(clip[0])
        hi = (x64 + eps).clamp_max(clip[1])
        bits = torch.rand((n_random, *x64.shape[1:]), generator=g, dtype=torch.float64) < 0.5
        best_random = float(_loss(m, torch.where(bits, hi, lo), y).max())
    return OptimaComparison(
        points=points,
        losses=losses,
        max_point_diff=max_point,
        max_loss_diff=max(vals) - min(vals),
        clean_loss=float(_loss(m, x64, y)[0]),
        best_random_loss=best_random,
    )


def _weights(model: nn.Module) -> torch.Tensor:
    if isinstance(model, LinearBinary):
        return model.w.detach()
    if isinstance(model, M.BinaryLogistic):
        return model.linear.weight.detach().reshape(-1)
    raise ValueError(f"model must be a LinearBinary or BinaryLogistic, got {type(model).__name__}")


# --------------------------------------------------------------------------- kinks
def is_piecewise(model: nn.Module) -> bool:
    """Whether the model's loss has kinks (non-differentiable points) in its input: max-pooling
    (the LeNets) or ReLU units."""
    if isinstance(model, M.LeNet):
        return True
    return isinstance(model, M.MLP) and model.act is torch.relu


def jitter(x: torch.Tensor, delta: float, seed: int) -> torch.Tensor:
    """``x`` plus independent uniform noise in ``[-delta, delta]`` (float64, seeded): a point
    that lies on no tie of max-pooling and on no ReLU kink, with probability one."""
    if not math.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0, got delta={delta!r}")
    g = torch.Generator().manual_seed(seed)
    noise = 2 * torch.rand(x.shape, generator=g, dtype=torch.float64) - 1
    return x.double() + delta * noise


@torch.no_grad()
def pooling_tie_fraction(model: M.LeNet, x: torch.Tensor) -> float:
    """Fraction of the first max-pooling windows (2×2 over the first convolution's outputs) in
    which the maximum is attained more than once at the inputs ``x``."""
    if not isinstance(model, M.LeNet):
        raise ValueError(f"model must be an advsamples.models.LeNet, got {type(model).__name__}")
    c = model.conv1(x.to(model.conv1.weight.dtype))
    windows = F.unfold(c.flatten(0, 1)[:, None], kernel_size=2, stride=2)  # (N*channels, 4, positions)
    top = windows.max(dim=1, keepdim=True).values
    return float(((windows == top).sum(dim=1) > 1).double().mean())


def linear_comparisons(n: int, instances: int, eps: float, seed: int) -> list[OptimaComparison]:
    """:func:`compare_linf_optima` on ``instances`` random linear models of ``n`` features
    (:func:`random_linear_instance` with seeds ``seed, seed + 1, ...``)."""
    out = []
    for i in range(instances):
        model, x, y = random_linear_instance(n, seed + i)
        out.append(compare_linf_optima(model, x, y, eps))
    return out
