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

The chapter itself: :class:`Params` (the notebook's parameters, validated), :func:`run` (every
computation, cached) returning a :class:`Result`, :func:`glue_values` (the numbers the prose
quotes) and the three tables (:func:`gradcheck_table`, :func:`chain_rule_table`,
:func:`linear_table`).

Everything random takes a ``seed`` and uses its own :class:`torch.Generator`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pandas.io.formats.style import Styler
from torch import nn

from advsamples import models as M
from advsamples import papers
from advsamples.attacks.fgsm import fgsm
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, param
from advsamples.data import MNIST, load_mnist
from advsamples.experiments.common import sample_indices
from advsamples.gradcheck import input_gradient_error
from advsamples.linear import MAX_BRUTE_FORCE_DIM, brute_force_linf_optimum, linf_box_optimum, lp_linf_optimum
from advsamples.params import check_choice, check_choices, check_count, check_int, check_number

__all__ = [
    "MAX_RANDOM_CORNERS",
    "MAX_SEED",
    "GradCheck",
    "Params",
    "Result",
    "chain_rule_table",
    "glue_values",
    "gradcheck_table",
    "linear_table",
    "run",
    "summarise_checks",
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


_Activation = Callable[[torch.Tensor], torch.Tensor]
_DERIVATIVES: dict[_Activation, _Activation] = {
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
        hidden = [cast(nn.Linear, layer) for layer in model.hidden]
        for layer in hidden:
            a = h @ layer.weight.double().T + layer.bias.double()
            pre.append(a)
            h = model.act(a)
        z = h @ model.out.weight.double().T + model.out.bias.double()
        delta = z.softmax(1) - F.one_hot(y.long(), z.shape[1]).double()
        delta = delta @ model.out.weight.double()  # gradient w.r.t. h_K
        for layer, a in zip(reversed(hidden), reversed(pre), strict=True):
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


# --------------------------------------------------------------------------- the chapter
#: Most random corners of the box tried per digit: they are held in memory at once
#: (10,000 x 784 float64 values are 63 MB).
MAX_RANDOM_CORNERS = 10_000
#: Largest seed: the chapter seeds its draws with ``seed`` up to ``seed + linear_instances - 1``.
MAX_SEED = 2**31 - 1
#: Most random linear models and test digits compared.
MAX_LINEAR_INSTANCES = 1000
#: The fully connected models whose input gradient can be written out by hand.
CHAIN_RULE_MODELS = ("fc10", "fc100_100_10", "fc200_200_10")
_PIXELS = 28 * 28
_TEST_IMAGES = 10000


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the formulation chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "formulation"

    models: list[str] = param(list(M.MODEL_NAMES), "gradient-checked")
    n_grad_samples: int = param(4, "test digits per model for the gradient check")
    n_grad_coords: int = param(3136, "input coordinates checked per model (capped at n_grad_samples * 784)")
    fd_step: float = param(1e-7, "central-difference step h (float64)")
    jitter_delta: float = param(
        0.01, "size of the uniform noise that moves the digits off the max-pooling ties"
    )
    chain_rule_model: str = param(
        "fc100_100_10", "fully connected model whose gradient is also written out by hand"
    )
    linear_n: int = param(
        12, "features of the random linear models (at most 16: brute force visits all corners)"
    )
    linear_instances: int = param(20, "random linear models (and test digits for logreg_3v7) compared")
    linear_eps: float = param(
        0.25, "L-infinity budget of the linear comparisons (Goodfellow et al.'s MNIST value)"
    )
    n_random_corners: int = param(1000, "random corners of the box tried as a gradient-free baseline")
    seed: int = param(0, "seed of every random draw of the chapter")

    def validate(self) -> None:
        super().validate()
        check_choices("models", self.models, M.MODEL_NAMES)
        check_count("n_grad_samples", self.n_grad_samples, _TEST_IMAGES, "test images")
        check_count(
            "n_grad_coords",
            self.n_grad_coords,
            self.n_grad_samples * _PIXELS,
            "input coordinates of n_grad_samples digits",
        )
        check_number("fd_step", self.fd_step, lo=0, lo_open=True, hi=1e-2)
        check_number("jitter_delta", self.jitter_delta, lo=0, lo_open=True, hi=0.1)
        check_choice("chain_rule_model", self.chain_rule_model, CHAIN_RULE_MODELS)
        check_count("linear_n", self.linear_n, MAX_BRUTE_FORCE_DIM, "features brute force can enumerate")
        check_count("linear_instances", self.linear_instances, MAX_LINEAR_INSTANCES, "instances allowed")
        check_number("linear_eps", self.linear_eps, lo=0, lo_open=True, hi=1)
        check_int(
            "n_random_corners",
            self.n_random_corners,
            1,
            MAX_RANDOM_CORNERS,
            "the corners of one digit are held in memory at once",
        )
        check_int("seed", self.seed, 0, MAX_SEED, "torch seeds; the chapter also uses seed + instance")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}


@dataclass(frozen=True)
class Result(ChapterResult):
    """Everything the formulation chapter shows.

    Attributes:
        check_models: the gradient-checked models, in order.
        piecewise: whether each has kinks (max-pooling or ReLU).
        raw_errors: relative error of autograd at the test digits, per model.
        jittered_errors: the same at the digits plus noise, per model.
        n_coords_checked: input coordinates checked per model.
        random_methods / random_losses: the methods and their losses (instances x methods) on the
            random linear models; random_clean: the clean losses.
        digit_methods / digit_losses / digit_clean / digit_best_random: the same on the test
            digits of ``logreg_3v7``, with the best random corner's loss.
        max_loss_diffs / max_point_diffs: per comparison (random models first, then digits).
    """

    n_grad_samples: int
    fd_step: float
    jitter_delta: float
    check_models: list[str]
    piecewise: np.ndarray
    raw_errors: np.ndarray
    jittered_errors: np.ndarray
    n_coords_checked: int
    tie_fraction: float
    tie_fraction_off: float
    chain_rule_model: str
    chain_rule_error: float
    chain_rule_fd_error: float
    linear_n: int
    linear_instances: int
    linear_eps: float
    n_random_corners: int
    n_pixels: int
    paper_eps: float
    random_methods: list[str]
    random_clean: np.ndarray
    random_losses: np.ndarray
    digit_methods: list[str]
    digit_clean: np.ndarray
    digit_losses: np.ndarray
    digit_best_random: np.ndarray
    max_loss_diffs: np.ndarray
    max_point_diffs: np.ndarray


def _sample(
    name: str, schedule: str, n: int, seed: int, mnist: MNIST
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Model ``name`` with ``n`` test images of its evaluation set drawn with ``seed`` (the draw of
    the FGSM chapter's attack sets: the same seed gives the same sample)."""
    x, y = M.evaluation_set(name, mnist.x_test, mnist.y_test)
    idx = sample_indices(len(x), n, seed)
    return M.get_model(name, schedule, progress=False), x[idx], y[idx]


def model_keys(params: Params) -> list[str]:
    """Checkpoint keys of every model the chapter uses (the cache is keyed by them)."""
    names = [*params.models, params.chain_rule_model, "lenet_paper", "logreg_3v7"]
    return sorted({M.config_for(name, params.schedule).key() for name in names})


def _stack(comparisons: Sequence[OptimaComparison]) -> tuple[list[str], np.ndarray, np.ndarray]:
    methods = list(comparisons[0].losses)
    losses = np.array([[c.losses[m] for m in methods] for c in comparisons], dtype=np.float64)
    clean = np.array([c.clean_loss for c in comparisons], dtype=np.float64)
    return methods, clean, losses


def _compute(params: Params) -> Result:
    p = params
    mnist = load_mnist()
    sets = {name: _sample(name, p.schedule, p.n_grad_samples, p.seed, mnist) for name in p.models}
    checks = gradient_checks(sets, n_coords=p.n_grad_coords, h=p.fd_step, delta=p.jitter_delta, seed=p.seed)
    lenet, lenet_x, _ = _sample("lenet_paper", p.schedule, p.n_grad_samples, p.seed, mnist)
    cr_model, cr_x, cr_y = _sample(p.chain_rule_model, p.schedule, p.n_grad_samples, p.seed, mnist)
    if not isinstance(cr_model, M.MLP):  # pragma: no cover - CHAIN_RULE_MODELS are MLPs
        raise TypeError(f"{p.chain_rule_model} is not a fully connected model")
    random_cmp = linear_comparisons(p.linear_n, p.linear_instances, p.linear_eps, p.seed)
    logreg, dx, dy = _sample("logreg_3v7", p.schedule, p.linear_instances, p.seed, mnist)
    digit_cmp = [
        compare_linf_optima(
            logreg, dx[i : i + 1], dy[i : i + 1], p.linear_eps, n_random=p.n_random_corners, seed=p.seed + i
        )
        for i in range(len(dx))
    ]
    everything = random_cmp + digit_cmp
    random_methods, random_clean, random_losses = _stack(random_cmp)
    digit_methods, digit_clean, digit_losses = _stack(digit_cmp)
    return Result(
        n_grad_samples=p.n_grad_samples,
        fd_step=p.fd_step,
        jitter_delta=p.jitter_delta,
        check_models=[c.model for c in checks],
        piecewise=np.array([c.piecewise for c in checks], dtype=bool),
        raw_errors=np.array([c.raw_error for c in checks], dtype=np.float64),
        jittered_errors=np.array([c.jittered_error for c in checks], dtype=np.float64),
        n_coords_checked=checks[0].n_coords,
        tie_fraction=pooling_tie_fraction(lenet, lenet_x),  # type: ignore[arg-type]
        tie_fraction_off=pooling_tie_fraction(lenet, jitter(lenet_x, p.jitter_delta, p.seed)),  # type: ignore[arg-type]
        chain_rule_model=p.chain_rule_model,
        chain_rule_error=chain_rule_check(cr_model, cr_x, cr_y),
        chain_rule_fd_error=input_gradient_error(cr_model, cr_x, cr_y, h=p.fd_step),
        linear_n=p.linear_n,
        linear_instances=p.linear_instances,
        linear_eps=p.linear_eps,
        n_random_corners=p.n_random_corners,
        n_pixels=int(dx[0].numel()),
        paper_eps=float(papers.GOODFELLOW["eps"]),
        random_methods=random_methods,
        random_clean=random_clean,
        random_losses=random_losses,
        digit_methods=digit_methods,
        digit_clean=digit_clean,
        digit_losses=digit_losses,
        digit_best_random=np.array([c.best_random_loss for c in digit_cmp], dtype=np.float64),
        max_loss_diffs=np.array([c.max_loss_diff for c in everything], dtype=np.float64),
        max_point_diffs=np.array([c.max_point_diff for c in everything], dtype=np.float64),
    )


def run(params: Params, *, progress: bool = True) -> Result:
    """The chapter's computations (gradient checks, chain rule, linear comparisons), cached by
    ``params`` and the checkpoint keys of the models used. ``progress`` is accepted for the shape
    every chapter shares; the steps here take seconds and show no bar."""
    del progress
    return cached(params, Result, lambda: _compute(params), version=1, models=model_keys(params))


def summarise_checks(
    piecewise: Sequence[bool], raw: Sequence[float], jittered: Sequence[float]
) -> dict[str, float]:
    """The worst and best gradient-check errors the prose quotes: ``gc_max_smooth`` (worst raw
    error of the models without kinks), ``gc_min_kinked_raw`` / ``gc_max_kinked_raw`` (range of the
    raw errors of the models with kinks) and ``gc_max_off`` (worst error off the kinks). A group
    without models gives NaN."""
    smooth = [float(e) for k, e in zip(piecewise, raw, strict=True) if not k] or [math.nan]
    kinked = [float(e) for k, e in zip(piecewise, raw, strict=True) if k] or [math.nan]
    return {
        "gc_max_smooth": max(smooth),
        "gc_min_kinked_raw": min(kinked),
        "gc_max_kinked_raw": max(kinked),
        "gc_max_off": max(float(e) for e in jittered),
    }


def glue_values(result: Result) -> dict[str, Any]:
    """Glue key -> value: every number the chapter's prose quotes."""
    r = result
    out: dict[str, Any] = {}
    for name, raw, off in zip(r.check_models, r.raw_errors, r.jittered_errors, strict=True):
        out[f"gc_raw_{name}"] = float(raw)
        out[f"gc_off_{name}"] = float(off)
    out["n_grad_samples"] = r.n_grad_samples
    out["n_grad_coords_checked"] = r.n_coords_checked
    out["fd_step"] = r.fd_step
    out["jitter_delta"] = r.jitter_delta
    out.update(summarise_checks([bool(k) for k in r.piecewise], list(r.raw_errors), list(r.jittered_errors)))
    out["tie_fraction"] = r.tie_fraction
    out["tie_fraction_off"] = r.tie_fraction_off
    out["chain_rule_error"] = r.chain_rule_error
    out["chain_rule_fd_error"] = r.chain_rule_fd_error
    fgsm_losses = r.digit_losses[:, r.digit_methods.index("FGSM")]
    out["n_pixels"] = r.n_pixels
    out["linear_n"] = r.linear_n
    out["linear_corners"] = 2**r.linear_n
    out["linear_instances"] = r.linear_instances
    out["linear_eps"] = r.linear_eps
    out["paper_eps"] = r.paper_eps
    out["linear_max_loss_diff"] = max(float(v) for v in r.max_loss_diffs)
    out["linear_max_point_diff"] = max(float(v) for v in r.max_point_diffs)
    out["n_random_corners"] = r.n_random_corners
    out["logreg_mean_clean_loss"] = float(np.mean([float(v) for v in r.digit_clean]))
    out["logreg_mean_fgsm_loss"] = float(np.mean([float(v) for v in fgsm_losses]))
    out["logreg_mean_random_loss"] = float(np.mean([float(v) for v in r.digit_best_random]))
    out["logreg_random_below"] = int(
        sum(b < f for b, f in zip(r.digit_best_random, fgsm_losses, strict=True))
    )
    return out


def gradcheck_table(result: Result) -> Styler:
    """The gradient check, one row per model: kinks or not, error at the digits and off the kinks."""
    r = result
    frame = pd.DataFrame(
        {
            "max-pooling or ReLU": ["yes" if k else "no" for k in r.piecewise],
            "at the test digits": [float(v) for v in r.raw_errors],
            "at the digits + noise δ": [float(v) for v in r.jittered_errors],
        },
        index=pd.Index(r.check_models, name="relative error of autograd"),
    )
    return frame.style.format({"at the test digits": "{:.1e}", "at the digits + noise δ": "{:.1e}"})


def chain_rule_table(result: Result) -> Styler:
    """The chain rule by hand against autograd, and autograd against finite differences."""
    return pd.DataFrame(
        {
            "by hand vs autograd": [result.chain_rule_error],
            "autograd vs finite differences (every pixel)": [result.chain_rule_fd_error],
        },
        index=pd.Index([result.chain_rule_model], name="relative error"),
    ).style.format("{:.1e}")


def linear_frame(result: Result) -> pd.DataFrame:
    """Mean loss at each method's point, per problem (random linear models, test digits)."""
    r = result
    rows: list[dict[str, Any]] = [
        {
            "problem": f"random linear model, n = {r.linear_n}",
            "clean": float(clean),
            **{m: float(v) for m, v in zip(r.random_methods, losses, strict=True)},
        }
        for clean, losses in zip(r.random_clean, r.random_losses, strict=True)
    ]
    rows += [
        {
            "problem": f"logreg_3v7 on a test digit, n = {r.n_pixels}",
            "clean": float(clean),
            **{m: float(v) for m, v in zip(r.digit_methods, losses, strict=True)},
            "best random corner": float(best),
        }
        for clean, losses, best in zip(r.digit_clean, r.digit_losses, r.digit_best_random, strict=True)
    ]
    return pd.DataFrame(rows).groupby("problem").mean()


def linear_table(result: Result) -> Styler:
    """:func:`linear_frame`, formatted (a method that does not apply shows a dash)."""
    return linear_frame(result).style.format("{:.4f}", na_rep="—")


def headline(result: Result) -> Headline:
    """The chapter's opening box: the two claims the formulation rests on, derived in the papers,
    measured here."""
    g = glue_values(result)
    return Headline(
        "Goodfellow et al. (2015), Sec. 3, and the end-to-end gradient flow the attacks assume",
        (
            (
                "FGSM's step maximises the linearised loss over the L∞ ball",
                "derived",
                f"exact on {g['linear_instances']} linear instances: largest gap to the best of "
                f"{g['linear_corners']:,} corners {g['linear_max_loss_diff']:.2g}",
            ),
            (
                "autograd's input gradient is the loss's derivative",
                "assumed",
                f"relative error to finite differences at most {g['gc_max_off']:.1e} "
                f"(off the kinks, {len(result.check_models)} models)",
            ),
            (
                "one FGSM step on the logistic regression: mean loss",
                "not reported",
                f"{g['logreg_mean_clean_loss']:.3f} → {g['logreg_mean_fgsm_loss']:.1f} "
                f"(best of {g['n_random_corners']:,} random corners {g['logreg_mean_random_loss']:.2f})",
            ),
        ),
        "derivations, no measurement",
        f"{g['n_grad_samples']} test digits and {g['n_grad_coords_checked']:,} gradient coordinates "
        f"checked; {g['linear_instances']} random {g['linear_n']}-dimensional linear models; "
        f"ε = {g['linear_eps']:g}",
    )
