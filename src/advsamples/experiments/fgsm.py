r"""The computations of the FGSM chapter (Goodfellow et al., 2015).

- :func:`attack_sets`: each model with a seeded sample of its own evaluation set;
- :func:`attack_stats`, :func:`error_curves`, :func:`stats_at`, :func:`eps_for_error` and
  :func:`crossing_eps`: error rate and mean confidence on the wrong label after FGSM, for one
  :math:`\epsilon` or along a range of them;
- :func:`weight_decay_sweep`: the same on softmax regression trained with several weight decays;
- :func:`correct_per_class`, :func:`targeted_success_matrix` and :func:`extreme_pairs`: targeted
  FGSM from every source class to every target class (the first "hardness matrix");
- :func:`linear_logit_shift`: how far FGSM moves a linear model's score, against its margins;
- figures: :func:`fig2_figure` (Goodfellow et al.'s Fig. 2), :func:`error_confidence_figure`
  and :func:`sample_grid_figure`.

Everything that draws samples takes a ``seed`` and uses its own :class:`torch.Generator`, so a
rerun gives the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from advsamples import models as M
from advsamples.attacks.fgsm import fgsm
from advsamples.data import MNIST, load_mnist
from advsamples.experiments.common import (
    correct_per_class,
    extreme_pairs,
    sample_indices,
)
from advsamples.experiments.common import predict as _predict
from advsamples.plotting import digit_grid, finish

__all__ = [
    "AttackStats",
    "DecayRow",
    "LinearShift",
    "attack_sets",
    "attack_stats",
    "correct_per_class",
    "crossing_eps",
    "error_confidence_figure",
    "eps_for_error",
    "extreme_pairs",
    "error_curves",
    "fig2_figure",
    "linear_logit_shift",
    "sample_grid_figure",
    "sample_indices",
    "stats_at",
    "targeted_success_matrix",
    "weight_decay_sweep",
]

_BATCH = 1000


def attack_sets(
    names: Sequence[str], schedule: str, n_samples: int, seed: int, *, mnist: MNIST | None = None
) -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """Each model ``name`` (trained on ``schedule``) with a seeded sample of its test set.

    The sample is ``n_samples`` images (at most the whole evaluation set) of
    :func:`advsamples.models.evaluation_set`: the whole MNIST test set for the ten-class models,
    its 3s and 7s (labelled 0 and 1) for ``logreg_3v7``. The same ``seed`` draws the same sample
    of a given evaluation set whatever the other models. ``mnist`` saves loading the data again.
    """
    mnist = mnist or load_mnist()
    out: dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}
    for name in names:
        x, y = M.evaluation_set(name, mnist.x_test, mnist.y_test)
        idx = sample_indices(len(x), n_samples, seed)
        out[name] = (M.get_model(name, schedule, progress=False), x[idx], y[idx])
    return out


@dataclass(frozen=True)
class AttackStats:
    """What FGSM does to a model at one budget ``eps``.

    Attributes:
        eps: the L-infinity budget.
        error: fraction of the samples misclassified after the attack (clean errors included,
            as in Goodfellow et al.).
        confidence: mean softmax probability of the predicted (wrong) label over the
            misclassified samples; NaN when none is misclassified.
        n: number of samples.
    """

    eps: float
    error: float
    confidence: float
    n: int


def _fgsm_batched(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, targeted: bool = False
) -> torch.Tensor:
    return torch.cat(
        [
            fgsm(model, x[i : i + _BATCH], y[i : i + _BATCH], eps, targeted=targeted)
            for i in range(0, len(x), _BATCH)
        ]
    )


def attack_stats(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> AttackStats:
    """Untargeted FGSM at ``eps`` on ``(x, y)``: error rate and mean confidence of the errors.

    At ``eps = 0`` the inputs are unchanged, so the error is the clean error.
    """
    if len(x) == 0:
        raise ValueError("x must hold at least one sample")
    pred, conf = _predict(model, _fgsm_batched(model, x, y, eps))
    wrong = pred != y.to(pred.device)
    confidence = float(conf[wrong].mean()) if bool(wrong.any()) else math.nan
    return AttackStats(float(eps), int(wrong.sum()) / len(x), confidence, len(x))


def error_curves(
    sets: Mapping[str, tuple[nn.Module, torch.Tensor, torch.Tensor]], eps_values: Sequence[float]
) -> dict[str, list[AttackStats]]:
    """:func:`attack_stats` of every model of ``sets`` (as :func:`attack_sets` returns) at every
    budget of ``eps_values``."""
    if not eps_values:
        raise ValueError("eps_values must hold at least one budget")
    return {
        name: [attack_stats(model, x, y, eps) for eps in eps_values] for name, (model, x, y) in sets.items()
    }


def stats_at(
    curves: Mapping[str, Sequence[AttackStats]],
    sets: Mapping[str, tuple[nn.Module, torch.Tensor, torch.Tensor]],
    eps: float,
) -> dict[str, AttackStats]:
    """Each model's :class:`AttackStats` at ``eps``: taken from ``curves`` where it holds that
    budget, computed on the model's sample of ``sets`` otherwise."""
    out = {}
    for name, (model, x, y) in sets.items():
        known = [s for s in curves.get(name, ()) if s.eps == eps]
        out[name] = known[0] if known else attack_stats(model, x, y, eps)
    return out


def eps_for_error(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: float, grid: Sequence[float]
) -> float:
    """The smallest budget of ``grid`` (sorted ascending) at which FGSM's error rate reaches
    ``target``; NaN if none does."""
    for eps in sorted(grid):
        if attack_stats(model, x, y, eps).error >= target:
            return float(eps)
    return math.nan


def crossing_eps(stats: Sequence[AttackStats], level: float = 0.5) -> float:
    """The budget at which the error rate first reaches ``level``, interpolated linearly between
    the budgets of ``stats`` (sorted by ``eps``); NaN if it never does."""
    points = sorted(stats, key=lambda s: s.eps)
    for i, s in enumerate(points):
        if s.error >= level:
            if i == 0:
                return s.eps
            a = points[i - 1]
            return a.eps + (level - a.error) * (s.eps - a.eps) / (s.error - a.error)
    return math.nan


@dataclass(frozen=True)
class DecayRow:
    r"""FGSM on softmax regression (``fc10``) trained with weight decay ``weight_decay``.

    Attributes:
        weight_decay: the training's λ.
        weight_l1: mean over classes of :math:`\|w_c\|_1`, the L1 norm of a class's weights
            (FGSM moves that class's logit by at most :math:`\epsilon \|w_c\|_1`).
        clean_error: error rate without attack.
        stats: the attack's :class:`AttackStats`.
    """

    weight_decay: float
    weight_l1: float
    clean_error: float
    stats: AttackStats


def weight_decay_sweep(
    decays: Sequence[float], schedule: str, x: torch.Tensor, y: torch.Tensor, eps: float
) -> list[DecayRow]:
    """FGSM at ``eps`` on ``fc10`` trained (or loaded) with each weight decay of ``decays``."""
    rows = []
    for wd in decays:
        model = M.get_model("fc10", schedule, progress=False, weight_decay=wd)
        assert isinstance(model, M.MLP)
        l1 = float(model.out.weight.abs().sum(1).mean())
        clean = attack_stats(model, x, y, 0.0).error
        rows.append(DecayRow(float(wd), l1, clean, attack_stats(model, x, y, eps)))
    return rows


def targeted_success_matrix(model: nn.Module, x: torch.Tensor, eps: float) -> np.ndarray:
    """Success rate of targeted FGSM from every source class to every target class.

    Arguments:
        model: classifier with ``classes`` logits.
        x: samples shaped ``(classes, n, ...)``: row ``s`` holds ``n`` samples of class ``s``
            (for example ``x[correct_per_class(...)]``).
        eps: the L-infinity budget.

    Returns:
        ``(classes, classes)`` array whose entry ``[s, t]`` is the fraction of row ``s`` that
        targeted FGSM toward ``t`` gets classified as ``t``; the diagonal is NaN.
    """
    if x.dim() < 3 or x.shape[1] == 0:
        raise ValueError(f"x must be shaped (classes, n, ...) with n >= 1, got {tuple(x.shape)}")
    classes, n = x.shape[0], x.shape[1]
    flat = x.reshape(classes * n, *x.shape[2:])
    source = torch.arange(classes).repeat_interleave(n)
    out = np.full((classes, classes), np.nan)
    for t in range(classes):
        keep = source != t
        target = torch.full((int(keep.sum()),), t, dtype=torch.long)
        pred, _ = _predict(model, _fgsm_batched(model, flat[keep], target, eps, targeted=True))
        hit = (pred == t).float()
        src = source[keep]
        for s in range(classes):
            if s != t:
                out[s, t] = float(hit[src == s].mean())
    return out


@dataclass(frozen=True)
class LinearShift:
    r"""How far FGSM moves a binary linear model's score ``z = w·x + b`` toward the wrong class.

    Attributes:
        eps_l1: :math:`\epsilon \|w\|_1`, the largest possible move (no clipping).
        mean_shift: mean actual move :math:`|w \cdot (x' - x)|` (clipping to [0, 1] lowers it).
        median_margin: median :math:`|z|` of the clean samples.
        flipped: fraction of correctly classified samples whose label the attack flips.
    """

    eps_l1: float
    mean_shift: float
    median_margin: float
    flipped: float


@torch.no_grad()
def linear_logit_shift(
    model: M.BinaryLogistic, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, eps: float
) -> LinearShift:
    """Compare FGSM's move of a :class:`~advsamples.models.BinaryLogistic` score with its margins."""
    w = model.linear.weight.reshape(-1)
    z = model.linear(x.flatten(1)).reshape(-1)
    z_adv = model.linear(x_adv.flatten(1)).reshape(-1)
    correct = (z > 0).long() == y
    flipped = ((z_adv > 0).long() != y) & correct
    return LinearShift(
        eps_l1=float(eps * w.abs().sum()),
        mean_shift=float((z_adv - z).abs().mean()),
        median_margin=float(z.abs().median()),
        flipped=float(flipped.sum() / correct.sum().clamp_min(1)),
    )


# --------------------------------------------------------------------------- figures
def fig2_figure(weights: torch.Tensor, clean: torch.Tensor, adv: torch.Tensor, eps: float) -> Figure:
    """Goodfellow et al.'s Fig. 2: (a) the weights of a 3-versus-7 logistic regression,
    (b) their sign, (c) clean digits, (d) their FGSM versions at ``eps``.

    ``clean`` and ``adv`` are shaped ``(rows, cols, 1, 28, 28)`` (e.g. a row of 3s, a row of 7s).
    """
    if clean.shape != adv.shape or clean.dim() != 5:
        raise ValueError(
            f"clean and adv must be equal shapes (rows, cols, 1, 28, 28), got {tuple(clean.shape)}"
        )
    rows, cols = clean.shape[:2]
    w = weights.detach().reshape(28, 28).cpu().numpy()
    fig = plt.figure(figsize=(2.2 * 2 + 2 * 0.9 * cols, 2.6))
    sub = fig.subfigures(1, 4, width_ratios=[1.0, 1.0, 0.45 * cols, 0.45 * cols])
    lim = float(np.abs(w).max())
    panels = [
        ("(a) weights w", w, "RdBu_r", (-lim, lim)),
        ("(b) sign(w)", np.sign(w), "gray", (-1.0, 1.0)),
    ]
    for sf, (title, img, cmap, (vmin, vmax)) in zip(sub[:2], panels, strict=True):
        ax = sf.subplots()
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for sf, images, title in (
        (sub[2], clean, "(c) clean 3s and 7s"),
        (sub[3], adv, f"(d) FGSM, ε = {eps:g}"),
    ):
        axes = sf.subplots(rows, cols, squeeze=False)
        for ax, img in zip(axes.flat, images.reshape(rows * cols, 28, 28), strict=True):
            ax.imshow(img.cpu().numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        sf.suptitle(title, fontsize=9)
    plt.close(fig)
    return fig


def error_confidence_figure(
    curves: Mapping[str, Sequence[AttackStats]],
    *,
    marks: Mapping[str, tuple[float, float, float]] | None = None,
    title: str = "",
) -> Figure:
    """Error rate (left) and mean confidence on the wrong label (right) against ε, one line per
    model; ``marks`` adds a paper's points as ``label -> (eps, error, confidence)``."""
    fig, (ax_err, ax_conf) = plt.subplots(1, 2, figsize=(10.0, 3.8), sharex=True)
    for name, stats in curves.items():
        eps = [s.eps for s in stats]
        ax_err.plot(eps, [s.error for s in stats], marker="o", ms=3, label=name)
        ax_conf.plot(eps, [s.confidence for s in stats], marker="o", ms=3, label=name)
    for (label, (e, err, conf)), marker in zip((marks or {}).items(), "*PXD^", strict=False):
        ax_err.scatter([e], [err], marker=marker, s=110, color="black", zorder=5, label=label)
        ax_conf.scatter([e], [conf], marker=marker, s=110, color="black", zorder=5, label=label)
    pct = plt.FuncFormatter(lambda v, _: f"{v:.0%}")
    for ax, ylabel in ((ax_err, "error rate"), (ax_conf, "mean confidence (wrong label)")):
        ax.set_xlabel("ε (L∞ budget, pixels in [0, 1])")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(pct)
        ax.set_ylim(0, 1.02)
    ax_conf.legend(frameon=False, fontsize=8, loc="lower right")
    return finish(fig, suptitle=title)


def sample_grid_figure(
    model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, eps: float, title: str = ""
) -> Figure:
    """Clean samples (top row) above their FGSM versions (bottom row), each titled with the
    model's prediction and its probability; the true labels head the columns."""
    pred, conf = _predict(model, torch.cat([x, x_adv]))
    n = len(x)
    titles = [
        f"{'✓' if int(p) == int(y[i % n]) else '✗'} {int(p)} ({float(c):.0%})"
        for i, (p, c) in enumerate(zip(pred, conf, strict=True))
    ]
    return digit_grid(
        torch.cat([x, x_adv]),
        rows=2,
        cols=n,
        titles=titles,
        row_labels=["clean", f"FGSM ε={eps:g}"],
        suptitle=title or None,
        cell=1.25,
    )
