r"""The computations of the L-BFGS chapter (Szegedy et al., 2014, Sec. 4.1 and Table 1).

- :data:`MODEL_KEYS`, :func:`model_spec`, :func:`load_model`: the chapter's models by key, with
  Szegedy's FC10(λ) variants written ``"fc10(λ)"`` (the keys of :mod:`advsamples.papers`);
- :func:`random_targets` and :func:`correct_indices`: the attacked images and their targets;
- :func:`attack` and :func:`attack_models`: the box-constrained L-BFGS attack with a progress bar,
  and one run per model (:class:`ModelAttack`), summarised by :func:`table1_row` (the attack keeps
  SciPy's BLAS on one thread: :mod:`advsamples.attacks._blas`);
- :func:`search_refinement`: how the "minimum" distortion depends on the length of the c search;
- :func:`linear_min_distortion`: the exact minimum distortion of a linear (softmax) model, the
  yardstick that tells how far the c search's minimum is from the true one;
- :func:`rate_interval`, :func:`mean_interval` and :func:`relation`: sampling error, and a
  sentence fragment saying where the paper's number lies relative to ours;
- :func:`sample_grid_figure`: originals, perturbations and adversarial samples.

Everything random takes a ``seed`` and uses its own :class:`torch.Generator`, so that a rerun
gives identical numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from advsamples.attacks._blas import single_threaded_blas
from advsamples.attacks.lbfgs import LBFGSResult, lbfgs_trace
from advsamples.experiments.common import (
    correct_indices,
    error_rate,
    mean_interval,
    random_targets,
    rate_interval,
    relation,
)
from advsamples.models import MODEL_KEYS, SZEGEDY_KEYS, fc10_key, model_spec, slug
from advsamples.models import info as _info
from advsamples.models import load as load_model
from advsamples.plotting import finish


def test_error(key: str, schedule: str) -> float:
    """MNIST test error (all 10,000 images) of ``key``, as recorded in its checkpoint."""
    return 1.0 - _info(key, schedule).test_accuracy


__all__ = [
    "MODEL_KEYS",
    "SZEGEDY_KEYS",
    "ModelAttack",
    "Table1Row",
    "attack",
    "attack_models",
    "correct_indices",
    "error_rate",
    "fc10_key",
    "linear_min_distortion",
    "load_model",
    "mean_interval",
    "model_spec",
    "random_targets",
    "rate_interval",
    "relation",
    "sample_grid_figure",
    "search_refinement",
    "single_threaded_blas",
    "slug",
    "table1_row",
    "test_error",
]


_BATCH = 2000


# --------------------------------------------------------------------------- models by key


# --------------------------------------------------------------------------- samples and targets


# --------------------------------------------------------------------------- BLAS threads
# --------------------------------------------------------------------------- the attack
def attack(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    c_init: float = 0.1,
    search_steps: int = 8,
    bracket_steps: int = 6,
    max_iter: int = 100,
    progress: bool = True,
    desc: str = "L-BFGS",
) -> LBFGSResult:
    """:func:`advsamples.attacks.lbfgs.lbfgs_trace` one sample at a time, with a progress bar.

    The attack optimises every sample on its own, so the result is the same as one call on the
    whole batch; this only adds the progress bar (the attack itself keeps SciPy's BLAS on one thread).
    """
    parts = []
    for i in tqdm(range(len(x)), desc=desc, unit="sample", disable=not progress, leave=False):
        parts.append(
            lbfgs_trace(
                model,
                x[i : i + 1],
                target[i : i + 1],
                c_init=c_init,
                search_steps=search_steps,
                bracket_steps=bracket_steps,
                max_iter=max_iter,
            )
        )
    if not parts:
        raise ValueError("x must hold at least one sample")
    return LBFGSResult(
        x_adv=torch.cat([p.x_adv for p in parts]),
        success=torch.cat([p.success for p in parts]),
        c=torch.cat([p.c for p in parts]),
        distortion=torch.cat([p.distortion for p in parts]),
        already_target=torch.cat([p.already_target for p in parts]),
        tried=tuple(t for p in parts for t in p.tried),
    )


@dataclass(frozen=True)
class ModelAttack:
    """One model's L-BFGS run on ``n`` test images it classifies correctly.

    Attributes:
        key: the model's key (:data:`MODEL_KEYS`).
        x, y, target: the attacked images, their labels and the targets.
        result: the attack's outcome, per sample.
        seconds: wall time of the attack.
    """

    key: str
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor
    result: LBFGSResult
    seconds: float


def attack_models(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    n_samples: int,
    seed: int,
    *,
    c_init: float = 0.1,
    search_steps: int = 8,
    bracket_steps: int = 6,
    max_iter: int = 100,
    progress: bool = True,
) -> dict[str, ModelAttack]:
    """Attack each model on ``n_samples`` images of ``(x, y)`` it classifies correctly.

    The images are the first correctly classified ones of one seeded permutation (so models that
    agree get the same images) and each image's target is drawn once, uniformly among the nine
    other classes (:func:`random_targets` with ``seed``), whatever the model.
    """
    targets = random_targets(y, seed)
    out: dict[str, ModelAttack] = {}
    for key, model in models.items():
        idx = correct_indices(model, x, y, n_samples, seed)
        start = time.perf_counter()
        res = attack(
            model,
            x[idx],
            targets[idx],
            c_init=c_init,
            search_steps=search_steps,
            bracket_steps=bracket_steps,
            max_iter=max_iter,
            progress=progress,
            desc=f"L-BFGS {key}",
        )
        out[key] = ModelAttack(key, x[idx], y[idx], targets[idx], res, time.perf_counter() - start)
    return out


@dataclass(frozen=True)
class Table1Row:
    """Szegedy et al.'s Table 1 measures for one model.

    Attributes:
        key: model key.
        n: samples attacked.
        success_rate: fraction of them the attack moved to the target class.
        distortion: mean of ``sqrt(sum(r**2) / n_pixels)`` over the successful samples (NaN if none).
        distortion_low, distortion_high: its 95 % interval (normal approximation).
        optimisations: L-BFGS-B runs per sample (the length of the c search).
        seconds_per_sample: wall time per sample.
    """

    key: str
    n: int
    success_rate: float
    distortion: float
    distortion_low: float
    distortion_high: float
    optimisations: float
    seconds_per_sample: float


def table1_row(run: ModelAttack) -> Table1Row:
    """The Table 1 summary of one model's run."""
    res = run.result
    n = len(res.success)
    mean, lo, hi = mean_interval(res.distortion[res.success].tolist())
    return Table1Row(
        run.key,
        n,
        float(res.success.double().mean()),
        mean,
        lo,
        hi,
        res.optimisations / n,
        run.seconds / n,
    )


def search_refinement(result: LBFGSResult, search_steps: int) -> np.ndarray:
    """Mean best distortion over the successful samples had the c search stopped after
    ``0, 1, …, search_steps`` bisections (the last entry is the run's own result).

    The search is deterministic and sequential, so a shorter search is a prefix of a longer one:
    its bracketing phase (×10 / ÷10 until a success and a failure have been seen) is the same,
    followed by fewer bisections. Samples without a successful optimisation are left out (the
    bisections never change whether a sample succeeds: they start after the first success).

    Raises:
        ValueError: if ``search_steps`` is negative or there is no successful sample.
    """
    if isinstance(search_steps, bool) or not isinstance(search_steps, int) or search_steps < 0:
        raise ValueError(f"search_steps must be an integer >= 0, got search_steps={search_steps!r}")
    curves = []
    for trials in result.tried:
        if not any(ok for _, ok, _ in trials):
            continue
        seen_ok = seen_bad = False
        end = len(trials)
        for j, (_, ok, _) in enumerate(trials):
            seen_ok, seen_bad = seen_ok or ok, seen_bad or not ok
            if seen_ok and seen_bad:
                end = j + 1
                break
        curves.append([min(d for _, ok, d in trials[: end + k] if ok) for k in range(search_steps + 1)])
    if not curves:
        raise ValueError("result has no successful optimisation to measure")
    return np.asarray(curves).mean(axis=0)


# --------------------------------------------------------------------------- exact minimum (linear)
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


# --------------------------------------------------------------------------- sampling error


# --------------------------------------------------------------------------- figures
@torch.no_grad()
def sample_grid_figure(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    title: str = "",
) -> Figure:
    """Three rows: originals, perturbations ``x_adv - x`` (diverging colormap, symmetric range set by
    the largest change shown, i.e. magnified) and adversarial samples, each digit titled with the
    model's prediction and probability; columns are headed "label → target"."""
    if not (x.shape == x_adv.shape and len(x) == len(y) == len(target) and len(x) > 0):
        raise ValueError("x, x_adv, y and target must describe the same non-empty batch")
    k = len(x)
    p_clean = model(x).softmax(1)
    p_adv = model(x_adv).softmax(1)
    r = (x_adv - x).reshape(k, 28, 28).cpu().numpy()
    lim = float(np.abs(r).max()) or 1.0
    fig, axes = plt.subplots(3, k, figsize=(1.25 * k, 4.3), squeeze=False)
    for j in range(k):
        c_conf, c_pred = p_clean[j].max(0)
        a_conf, a_pred = p_adv[j].max(0)
        panels = [
            (x[j].reshape(28, 28).cpu().numpy(), "gray", (0.0, 1.0), f"{int(c_pred)} ({float(c_conf):.0%})"),
            (r[j], "RdBu_r", (-lim, lim), f"‖r‖={math.sqrt(float((r[j] ** 2).mean())):.3f}"),
            (
                x_adv[j].reshape(28, 28).cpu().numpy(),
                "gray",
                (0.0, 1.0),
                f"{int(a_pred)} ({float(a_conf):.0%})",
            ),
        ]
        for i, (img, cmap, (vmin, vmax), label) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=7, labelpad=2)
        axes[0, j].set_title(f"{int(y[j])} → {int(target[j])}", fontsize=8)
    for i, label in enumerate(["original", f"r (±{lim:.2f})", "adversarial"]):
        axes[i, 0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, despine=False)
