r"""The FGSM chapter (Goodfellow et al., 2015): its parameters, its computations and its views.

The chapter's shape (see :mod:`advsamples.chapter`):

- :class:`Params`: the notebook's ``parameters`` cell, validated on construction;
- :func:`run`: all the chapter's work, cached by its parameters and its models' checkpoints,
  giving a :class:`Result`;
- :func:`glue_values`: the numbers and phrases the prose quotes (:func:`compared`,
  :func:`inside_word`, :func:`paper_reading` pick the words);
- views of a :class:`Result`: :func:`figure_fig2`, :func:`figure_error_confidence`,
  :func:`figure_targeted_matrix`, :func:`figure_sample_grid`, :func:`table_logreg`,
  :func:`table_models` and :func:`table_weight_decay`.

The computations it is built from:

- :func:`attack_sets`: each model with a seeded sample of its own evaluation set;
- :func:`attack_stats`, :func:`error_curves`, :func:`stats_at`, :func:`eps_for_error` and
  :func:`crossing_eps`: error rate and mean confidence on the wrong label after FGSM, for one
  :math:`\epsilon` or along a range of them;
- :func:`weight_decay_sweep`: the same on softmax regression trained with several weight decays;
- :func:`targeted_success_matrix`: targeted FGSM from every source class to every target class
  (the first "hardness matrix"; :func:`advsamples.experiments.common.extreme_pairs` names its
  extremes);
- :func:`linear_logit_shift`: how far FGSM moves a linear model's score, against its margins;
- figures: :func:`fig2_figure` (Goodfellow et al.'s Fig. 2), :func:`error_confidence_figure`
  and :func:`sample_grid_figure`.

Everything that draws samples takes a ``seed`` and uses its own :class:`torch.Generator`, so a
rerun gives the same numbers.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler
from torch import nn

from advsamples import models as M
from advsamples import papers, plotting
from advsamples.attacks.fgsm import fgsm
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, chunked, param
from advsamples.data import MNIST, load_mnist
from advsamples.experiments.common import correct_per_class, extreme_pairs, sample_indices
from advsamples.experiments.common import predict as _predict
from advsamples.params import (
    check_choice,
    check_choices,
    check_count,
    check_int,
    check_number,
    check_numbers,
)
from advsamples.plotting import digit_grid, finish

__all__ = [
    "BATCH",
    "sample_outcome",
    "FINE_GRID",
    "MAX_SEED",
    "AttackStats",
    "DecayRow",
    "LinearShift",
    "Params",
    "Result",
    "attack_sets",
    "attack_stats",
    "attacked_names",
    "compared",
    "crossing_eps",
    "curves_of",
    "eps_for_error",
    "error_confidence_figure",
    "error_curves",
    "fig2_figure",
    "figure_error_confidence",
    "figure_fig2",
    "figure_sample_grid",
    "figure_targeted_matrix",
    "glue_values",
    "inside_word",
    "linear_logit_shift",
    "max_error_gap",
    "model_keys",
    "paper_inside",
    "paper_reading",
    "pct",
    "run",
    "sample_grid_figure",
    "stats_at",
    "table_logreg",
    "table_models",
    "table_weight_decay",
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
    sub: Any = fig.subfigures(1, 4, width_ratios=[1.0, 1.0, 0.45 * cols, 0.45 * cols])
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
    return _grid_figure(x, x_adv, y, pred, conf, eps, title)


def _grid_titles(pred: torch.Tensor, conf: torch.Tensor, y: torch.Tensor) -> list[str]:
    """``"✓ 7 (98%)"`` per prediction of the clean row then the adversarial row (labels ``y``)."""
    n = len(y)
    return [
        f"{'✓' if int(p) == int(y[i % n]) else '✗'} {int(p)} ({float(c):.0%})"
        for i, (p, c) in enumerate(zip(pred, conf, strict=True))
    ]


def _grid_figure(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    pred: torch.Tensor,
    conf: torch.Tensor,
    eps: float,
    title: str,
) -> Figure:
    return digit_grid(
        torch.cat([x, x_adv]),
        rows=2,
        cols=len(x),
        titles=_grid_titles(pred, conf, y),
        row_labels=["clean", f"FGSM ε={eps:g}"],
        suptitle=title or None,
        cell=1.25,
    )


# =========================================================================== the chapter
#: Largest seed accepted (torch seeds; every draw of the chapter uses ``seed`` itself).
MAX_SEED = 2**31 - 1
#: Budgets searched for the logistic regression's ε at the paper's error: 0, 0.005, ..., 0.3.
FINE_GRID: tuple[float, ...] = tuple(round(0.005 * k, 3) for k in range(0, 61))
_TEST_DIGITS = 10000
_MAX_BUDGETS = 51
_MAX_DECAYS = 8
_MAX_DECAY = 100.0
_TEN_CLASS = [m for m in M.MODEL_NAMES if m != "logreg_3v7"]
_VERSION = 2  # 2: per-sample predictions at the table's budget (the audit's record)
G = papers.GOODFELLOW


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the FGSM chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "fgsm"

    models: list[str] = param(
        ["lenet_paper", "lenet_relu", "fc10", "fc100_100_10", "fc200_200_10", "logreg_3v7"], "attacked"
    )
    eps_values: list[float] = param(
        [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], "budgets of the error and confidence curves"
    )
    table_eps: float = param(0.25, "budget of Fig. 2 and of the comparison table (the paper's 0.25)")
    n_samples: int = param(2000, "test images attacked per model (capped at the size of a model's test set)")
    fig2_per_class: int = param(5, "3s and 7s shown in Fig. 2")
    fc10_weight_decays: list[float] = param(
        [0.0001, 0.01, 1.0], "weight decays of the softmax-regression experiment"
    )
    maxout_stand_ins: list[str] = param(
        ["lenet_relu", "fc200_200_10"], "our models set beside the paper's maxout network"
    )
    targeted_model: str = param("lenet_paper", "model of the targeted source-by-target matrix")
    targeted_eps: float = param(0.25, "budget of the targeted attack")
    n_per_class: int = param(50, "correctly classified test digits per source class in the targeted matrix")
    grid_model: str = param("lenet_paper", "model of the grid of clean and adversarial samples")
    grid_samples: int = param(8, "digits in that grid")
    seed: int = param(0, "seed of every random draw of the chapter")

    def validate(self) -> None:
        super().validate()
        check_choices("models", self.models, M.MODEL_NAMES)
        check_numbers("eps_values", self.eps_values, lo=0, hi=1, increasing=True, max_len=_MAX_BUDGETS)
        check_number("table_eps", self.table_eps, lo=0, hi=1)
        check_count("n_samples", self.n_samples, _TEST_DIGITS, "test images")
        check_count("fig2_per_class", self.fig2_per_class, 20, "digits a row of Fig. 2 can show")
        check_numbers(
            "fc10_weight_decays",
            self.fc10_weight_decays,
            lo=0,
            hi=_MAX_DECAY,
            increasing=True,
            max_len=_MAX_DECAYS,
        )
        check_choices("maxout_stand_ins", self.maxout_stand_ins, _TEN_CLASS)
        check_choice("targeted_model", self.targeted_model, _TEN_CLASS)
        check_number("targeted_eps", self.targeted_eps, lo=0, lo_open=True, hi=1)
        check_count(
            "n_per_class",
            self.n_per_class,
            800,
            "test digits of the rarest class (892 fives) kept for a margin",
        )
        check_choice("grid_model", self.grid_model, _TEN_CLASS)
        check_count("grid_samples", self.grid_samples, 16, "columns of the grid")
        check_int("seed", self.seed, 0, MAX_SEED, "a 31-bit torch seed")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}


@dataclass(frozen=True)
class Result(ChapterResult):
    """Everything the FGSM chapter shows.

    Attributes:
        schedule, eps_values, table_eps, maxout_stand_ins, targeted_model, targeted_eps,
            n_per_class, grid_model: the parameters the views and the prose quote.
        names: the attacked models (``models``, then ``fc10``, ``logreg_3v7`` and the maxout
            stand-ins if missing), the rows of the per-model arrays.
        n_logreg / n_samples_10class: digits attacked on the logistic regression / on ``fc10``.
        logreg_*: the logistic regression at ``table_eps`` (clean and FGSM error, confidence of
            the errors, :class:`LinearShift`, the budget of :data:`FINE_GRID` that reaches the
            paper's error).
        curve_error / curve_confidence: ``(models, budgets)``: :func:`attack_stats` along
            ``eps_values``.
        clean_error / table_error / table_confidence: ``(models,)``: at ε = 0 and ``table_eps``.
        decay_*: :func:`weight_decay_sweep` on ``fc10_weight_decays`` (one entry per λ).
        success_matrix: :func:`targeted_success_matrix` (NaN diagonal).
        untargeted_same_digits: untargeted FGSM's error on the matrix's digits at ``targeted_eps``.
        fig2_*: the logistic regression's weights and Fig. 2's clean and adversarial digits.
        grid_*: the sample grid's digits, labels, and the model's predictions and confidences
            (clean row then adversarial row).
    """

    schedule: str
    names: list[str]
    eps_values: list[float]
    table_eps: float
    maxout_stand_ins: list[str]
    targeted_model: str
    targeted_eps: float
    n_per_class: int
    grid_model: str
    n_logreg: int
    n_samples_10class: int
    logreg_clean_error: float
    logreg_adv_error: float
    logreg_adv_confidence: float
    logreg_eps_l1: float
    logreg_mean_shift: float
    logreg_median_margin: float
    logreg_flipped: float
    logreg_eps_at_paper_error: float
    curve_error: np.ndarray
    curve_confidence: np.ndarray
    clean_error: np.ndarray
    table_error: np.ndarray
    table_confidence: np.ndarray
    decay_lambdas: list[float]
    decay_l1: np.ndarray
    decay_clean_error: np.ndarray
    decay_error: np.ndarray
    decay_confidence: np.ndarray
    success_matrix: np.ndarray
    untargeted_same_digits: float
    fig2_weights: np.ndarray
    fig2_clean: np.ndarray
    fig2_adv: np.ndarray
    grid_clean: np.ndarray
    grid_adv: np.ndarray
    grid_labels: np.ndarray
    grid_pred: np.ndarray
    grid_conf: np.ndarray
    sample_pred: np.ndarray
    sample_conf: np.ndarray

    def __post_init__(self) -> None:
        # The JSON of a result writes a non-finite float as a string ("nan"); read it back as one.
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            if hints.get(f.name) is float and isinstance(value, str):
                object.__setattr__(self, f.name, float(value))
        super().__post_init__()

    def row(self, name: str) -> int:
        """The index of model ``name`` in the per-model arrays."""
        return self.names.index(name)


def attacked_names(params: Params) -> list[str]:
    """The models attacked along the curves: ``models``, then ``fc10``, ``logreg_3v7`` and the
    maxout stand-ins that it lacks, each once, in that order."""
    return list(dict.fromkeys([*params.models, "fc10", "logreg_3v7", *params.maxout_stand_ins]))


def model_keys(params: Params) -> list[str]:
    """The checkpoint keys of every model the chapter uses (the cache's key)."""
    s = params.schedule
    keys = [M.model_info(name, s).key for name in attacked_names(params)]
    keys += [M.model_info("fc10", s, weight_decay=wd).key for wd in params.fc10_weight_decays]
    keys += [M.model_info(params.targeted_model, s).key, M.model_info(params.grid_model, s).key]
    return sorted(set(keys))


def run(params: Params, *, progress: bool = True) -> Result:
    """All the chapter's work, read from the cache when these parameters and models have run."""
    models = model_keys(params)
    return cached(params, Result, lambda: _compute(params, models, progress), version=_VERSION, models=models)


def _curve_arrays(
    params: Params,
    sets: Mapping[str, tuple[nn.Module, torch.Tensor, torch.Tensor]],
    names: Sequence[str],
    models: Sequence[str],
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`error_curves` of every model, one model a chunk (a killed run resumes)."""

    def compute(a: int, b: int) -> dict[str, np.ndarray]:
        part = error_curves({n: sets[n] for n in names[a:b]}, params.eps_values)
        return {
            "error": np.array([[s.error for s in part[n]] for n in names[a:b]], dtype=float),
            "confidence": np.array([[s.confidence for s in part[n]] for n in names[a:b]], dtype=float),
        }

    out = chunked(
        params,
        len(names),
        1,
        compute,
        version=_VERSION,
        models=models,
        step="curves",
        progress=progress,
        desc="FGSM curves",
        unit="model",
    )
    return out["error"], out["confidence"]


def curves_of(result: Result) -> dict[str, list[AttackStats]]:
    """The error curves of ``result`` as :class:`AttackStats`, per model."""
    n_of = {
        name: (result.n_logreg if name == "logreg_3v7" else result.n_samples_10class) for name in result.names
    }
    return {
        name: [
            AttackStats(float(eps), float(err), float(conf), n_of[name])
            for eps, err, conf in zip(
                result.eps_values, result.curve_error[i], result.curve_confidence[i], strict=True
            )
        ]
        for i, name in enumerate(result.names)
    }


def _compute(params: Params, models: Sequence[str], progress: bool) -> Result:
    p = params
    mnist = load_mnist()
    names = attacked_names(p)
    sets = attack_sets(names, p.schedule, p.n_samples, p.seed, mnist=mnist)
    # Fig. 2 and the logistic regression
    logreg, lx, ly = sets["logreg_3v7"]
    assert isinstance(logreg, M.BinaryLogistic)
    shown = correct_per_class(logreg, lx, ly, p.fig2_per_class, p.seed, classes=2)
    fig2_clean = lx[shown]
    fig2_adv = fgsm(logreg, fig2_clean.flatten(0, 1), ly[shown].flatten(), p.table_eps).reshape(
        fig2_clean.shape
    )
    logreg_clean = attack_stats(logreg, lx, ly, 0.0)
    logreg_adv = attack_stats(logreg, lx, ly, p.table_eps)
    shift = linear_logit_shift(logreg, lx, fgsm(logreg, lx, ly, p.table_eps), ly, p.table_eps)
    eps_at_paper = eps_for_error(logreg, lx, ly, G["logreg_adv_error"], FINE_GRID)
    # error and confidence against ε, and at the table's budget
    curve_error, curve_confidence = _curve_arrays(p, sets, names, models, progress)
    partial = {
        name: [
            AttackStats(float(e), float(err), float(c), len(sets[name][1]))
            for e, err, c in zip(p.eps_values, curve_error[i], curve_confidence[i], strict=True)
        ]
        for i, name in enumerate(names)
    }
    at = stats_at(partial, sets, p.table_eps)
    clean = stats_at(partial, sets, 0.0)
    # weight decay
    decay_rows = weight_decay_sweep(p.fc10_weight_decays, p.schedule, *sets["fc10"][1:], p.table_eps)
    # targeted matrix
    target_net = M.get_model(p.targeted_model, p.schedule, progress=False)
    idx = correct_per_class(target_net, mnist.x_test, mnist.y_test, p.n_per_class, p.seed)
    success = targeted_success_matrix(target_net, mnist.x_test[idx], p.targeted_eps)
    sources = mnist.x_test[idx].flatten(0, 1)
    true = mnist.y_test[idx].flatten()
    untargeted = attack_stats(target_net, sources, true, p.targeted_eps).error
    # sample grid
    grid_net, gx, gy = attack_sets([p.grid_model], p.schedule, p.grid_samples, p.seed, mnist=mnist)[
        p.grid_model
    ]
    gadv = fgsm(grid_net, gx, gy, p.table_eps)
    gpred, gconf = _predict(grid_net, torch.cat([gx, gadv]))
    return Result(
        schedule=p.schedule,
        names=names,
        eps_values=list(p.eps_values),
        table_eps=p.table_eps,
        maxout_stand_ins=list(p.maxout_stand_ins),
        targeted_model=p.targeted_model,
        targeted_eps=p.targeted_eps,
        n_per_class=p.n_per_class,
        grid_model=p.grid_model,
        n_logreg=len(lx),
        n_samples_10class=len(sets["fc10"][1]),
        logreg_clean_error=logreg_clean.error,
        logreg_adv_error=logreg_adv.error,
        logreg_adv_confidence=logreg_adv.confidence,
        logreg_eps_l1=shift.eps_l1,
        logreg_mean_shift=shift.mean_shift,
        logreg_median_margin=shift.median_margin,
        logreg_flipped=shift.flipped,
        logreg_eps_at_paper_error=eps_at_paper,
        curve_error=curve_error,
        curve_confidence=curve_confidence,
        clean_error=np.array([clean[n].error for n in names], dtype=float),
        table_error=np.array([at[n].error for n in names], dtype=float),
        table_confidence=np.array([at[n].confidence for n in names], dtype=float),
        decay_lambdas=[r.weight_decay for r in decay_rows],
        decay_l1=np.array([r.weight_l1 for r in decay_rows], dtype=float),
        decay_clean_error=np.array([r.clean_error for r in decay_rows], dtype=float),
        decay_error=np.array([r.stats.error for r in decay_rows], dtype=float),
        decay_confidence=np.array([r.stats.confidence for r in decay_rows], dtype=float),
        success_matrix=success,
        untargeted_same_digits=untargeted,
        fig2_weights=logreg.linear.weight.detach().reshape(-1).cpu().numpy(),
        fig2_clean=fig2_clean.cpu().numpy(),
        fig2_adv=fig2_adv.detach().cpu().numpy(),
        grid_clean=gx.cpu().numpy(),
        grid_adv=gadv.detach().cpu().numpy(),
        grid_labels=gy.cpu().numpy(),
        grid_pred=gpred.cpu().numpy(),
        grid_conf=gconf.cpu().numpy(),
        **_sample_record(sets, names, p.table_eps),
    )


def _sample_record(
    sets: Mapping[str, tuple[nn.Module, torch.Tensor, torch.Tensor]], names: Sequence[str], eps: float
) -> dict[str, np.ndarray]:
    """``sample_pred`` and ``sample_conf``: each model's prediction and its confidence on the FGSM
    sample of each of its digits at ``eps`` (rows: ``names``; -1 and NaN past a model's own digits),
    the per-attack record that ``make audit`` re-crafts."""
    width = max(len(sets[n][1]) for n in names)
    pred = np.full((len(names), width), -1, dtype=np.int16)
    conf = np.full((len(names), width), np.nan, dtype=np.float32)
    for i, n in enumerate(names):
        pr, cf = sample_outcome(*sets[n], eps)
        pred[i, : len(pr)] = pr.cpu().numpy()
        conf[i, : len(cf)] = cf.cpu().numpy()
    return {"sample_pred": pred, "sample_conf": conf}


def sample_outcome(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and confidence of ``model`` on the untargeted FGSM samples of ``(x, y)`` at
    ``eps``, computed in the chapter's batches (the audit recomputes a whole batch, so that its
    answer is bit for bit the chapter's)."""
    return _predict(model, _fgsm_batched(model, x, y, eps))


#: Samples per FGSM batch (the unit the audit recomputes).
BATCH = _BATCH


# --------------------------------------------------------------------------- phrases
def compared(ours: float, paper: float) -> str:
    """How our number stands to the paper's, as words for the prose: ``"higher than"``,
    ``"lower than"`` or ``"equal to"``."""
    return "higher than" if ours > paper else "lower than" if ours < paper else "equal to"


def paper_inside(values: Sequence[float], paper: float) -> bool:
    """Whether ``paper`` lies in ``[min(values), max(values)]`` (Python's ``min``/``max``)."""
    return min(values) <= paper <= max(values)


def inside_word(inside: bool) -> str:
    """``"inside"`` or ``"outside"``."""
    return "inside" if inside else "outside"


def paper_reading(inside: bool) -> str:
    """What the paper's softmax confidence says of its regularisation, given whether it lies inside
    the range of our weight-decay experiment."""
    if inside:
        return (
            "consistent with a softmax classifier whose weights were of a size between those of our weakly "
            "and strongly regularised ones"
        )
    return "so the paper's classifier was regularised outside the range we tried"


def pct(v: float | None) -> str:
    """A table cell: ``"12.3%"``, or ``"—"`` for a missing value (None or NaN)."""
    return "—" if v is None or pd.isna(v) else f"{v:.1%}"


def max_error_gap(result: Result) -> float:
    """The largest absolute difference between an error rate of ours and the paper's that the
    chapter compares: the logistic regression's clean and FGSM errors, ``fc10``'s FGSM error."""
    return max(
        abs(result.logreg_clean_error - G["logreg_clean_error"]),
        abs(result.logreg_adv_error - G["logreg_adv_error"]),
        abs(float(result.table_error[result.row("fc10")]) - G["softmax_adv_error"]),
    )


# --------------------------------------------------------------------------- glue
def glue_values(result: Result) -> dict[str, Any]:
    """Glue key -> value: every number and phrase the chapter's prose quotes."""
    r = result
    out: dict[str, Any] = {
        "table_eps": r.table_eps,
        "n_logreg": r.n_logreg,
        "logreg_clean_error": r.logreg_clean_error,
        "logreg_adv_error": r.logreg_adv_error,
        "logreg_adv_confidence": r.logreg_adv_confidence,
        "paper_logreg_clean_error": G["logreg_clean_error"],
        "paper_logreg_adv_error": G["logreg_adv_error"],
        "paper_eps": G["eps"],
        "logreg_eps_l1": r.logreg_eps_l1,
        "logreg_mean_shift": r.logreg_mean_shift,
        "logreg_median_margin": r.logreg_median_margin,
        "logreg_flipped": r.logreg_flipped,
        "logreg_eps_at_paper_error": r.logreg_eps_at_paper_error,
        "paper_logreg_survivors": 1 - G["logreg_adv_error"],
        "logreg_survivors": 1 - r.logreg_adv_error,
        "logreg_clean_vs_paper": compared(r.logreg_clean_error, G["logreg_clean_error"]),
        "logreg_adv_vs_paper": compared(r.logreg_adv_error, G["logreg_adv_error"]),
        "n_samples_10class": r.n_samples_10class,
        "maxout_names": ", ".join(r.maxout_stand_ins),
    }
    for i, name in enumerate(r.names):
        out[f"clean_error_{name}"] = float(r.clean_error[i])
        out[f"adv_error_{name}"] = float(r.table_error[i])
        out[f"adv_confidence_{name}"] = float(r.table_confidence[i])
    for key in ("softmax_adv_error", "softmax_adv_confidence", "maxout_adv_error", "maxout_adv_confidence"):
        out[f"paper_{key}"] = G[key]
    stand = [r.row(m) for m in r.maxout_stand_ins]
    out["standin_error_min"] = min(float(r.table_error[i]) for i in stand)
    out["standin_error_max"] = max(float(r.table_error[i]) for i in stand)
    out["standin_confidence_min"] = min(float(r.table_confidence[i]) for i in stand)
    out["standin_confidence_max"] = max(float(r.table_confidence[i]) for i in stand)
    half = {name: crossing_eps(curve, 0.5) for name, curve in curves_of(r).items()}
    for name, e in half.items():
        out[f"eps_half_{name}"] = e
    conv = [half[m] for m in half if m.startswith("lenet")] or [math.nan]
    flat = [half[m] for m in half if not m.startswith("lenet")] or [math.nan]
    out["eps_half_conv_min"] = min(conv)
    out["eps_half_conv_max"] = max(conv)
    out["eps_half_fc_min"] = min(flat)
    out["eps_half_fc_max"] = max(flat)
    out["table_min_error"] = min(float(v) for v in r.table_error)
    confs = [float(c) for c in r.decay_confidence]
    out["wd_lambda_first"] = r.decay_lambdas[0]
    out["wd_lambda_last"] = r.decay_lambdas[-1]
    out["wd_l1_first"] = float(r.decay_l1[0])
    out["wd_l1_last"] = float(r.decay_l1[-1])
    out["wd_conf_first"] = confs[0]
    out["wd_conf_last"] = confs[-1]
    out["wd_error_last"] = float(r.decay_error[-1])
    out["wd_error_first"] = float(r.decay_error[0])
    inside = paper_inside(confs, G["softmax_adv_confidence"])
    out["wd_paper_inside"] = inside_word(inside)
    out["wd_paper_reading"] = paper_reading(inside)
    success = r.success_matrix
    out["n_per_class"] = r.n_per_class
    out["targeted_eps"] = r.targeted_eps
    out["targeted_model"] = r.targeted_model
    out["targeted_mean"] = float(np.nanmean(success))
    easiest_rate, easiest = extreme_pairs(success, "max")
    hardest_rate, hardest = extreme_pairs(success, "min")
    out["targeted_easiest"] = easiest
    out["targeted_easiest_rate"] = easiest_rate
    out["targeted_hardest"] = hardest
    out["targeted_hardest_rate"] = hardest_rate
    row_mean = np.nanmean(success, axis=1)
    col_mean = np.nanmean(success, axis=0)
    out["targeted_hardest_source"] = int(np.argmin(row_mean))
    out["targeted_hardest_source_rate"] = float(row_mean.min())
    out["targeted_easiest_target"] = int(np.argmax(col_mean))
    out["targeted_easiest_target_rate"] = float(col_mean.max())
    out["success_matrix"] = success
    out["untargeted_same_digits"] = r.untargeted_same_digits
    out["grid_model"] = r.grid_model
    out["max_error_gap"] = max_error_gap(r)
    return out


# --------------------------------------------------------------------------- views
def figure_fig2(result: Result) -> Figure:
    """Goodfellow et al.'s Fig. 2 from ``result`` (:func:`fig2_figure`)."""
    r = result
    return fig2_figure(
        torch.from_numpy(r.fig2_weights),
        torch.from_numpy(r.fig2_clean),
        torch.from_numpy(r.fig2_adv),
        r.table_eps,
    )


def figure_error_confidence(result: Result) -> Figure:
    """Error and confidence against ε, with the paper's points (:func:`error_confidence_figure`)."""
    r = result
    return error_confidence_figure(
        curves_of(r),
        marks={
            "paper: shallow softmax": (G["eps"], G["softmax_adv_error"], G["softmax_adv_confidence"]),
            "paper: maxout network": (G["eps"], G["maxout_adv_error"], G["maxout_adv_confidence"]),
        },
        title=f"FGSM on MNIST ({r.schedule} schedule, {r.n_samples_10class} test digits per model)",
    )


def figure_targeted_matrix(result: Result) -> Figure:
    """The targeted source-by-target success matrix, as a heatmap."""
    r = result
    return plotting.heatmap(
        r.success_matrix,
        title=(
            f"Targeted FGSM success, {r.targeted_model}, ε = {r.targeted_eps:g} "
            f"({r.n_per_class} digits per source)"
        ),
        vmin=0,
        vmax=1,
        mask_diagonal=True,
    )


def figure_sample_grid(result: Result) -> Figure:
    """Clean digits above their FGSM versions against ``grid_model`` (:func:`sample_grid_figure`)."""
    r = result
    return _grid_figure(
        torch.from_numpy(r.grid_clean),
        torch.from_numpy(r.grid_adv),
        torch.from_numpy(r.grid_labels),
        torch.from_numpy(r.grid_pred),
        torch.from_numpy(r.grid_conf),
        r.table_eps,
        r.grid_model,
    )


def table_logreg(result: Result) -> Styler:
    """The logistic regression's clean and FGSM errors beside the paper's."""
    r = result
    frame = pd.DataFrame(
        {
            "this study": [r.logreg_clean_error, r.logreg_adv_error],
            "Goodfellow et al. (Fig. 2)": [G["logreg_clean_error"], G["logreg_adv_error"]],
        },
        index=pd.Index(["clean", f"FGSM, ε = {r.table_eps:g}"], name="error on the test 3s and 7s"),
    )
    return frame.style.format("{:.1%}")


def _paper_of(result: Result) -> dict[str, tuple[str, str | None]]:
    paper_of: dict[str, tuple[str, str | None]] = {
        "fc10": ("shallow softmax", "softmax"),
        "logreg_3v7": ("logistic regression, 3 vs 7", "logreg"),
    }
    for m in result.maxout_stand_ins:
        paper_of[m] = ("maxout network (not trained here)", "maxout")
    return paper_of


def table_models(result: Result) -> Styler:
    """Every attacked model at ε = 0 and ``table_eps``, beside the paper's model it stands for."""
    r = result
    paper_of = _paper_of(r)
    rows = []
    for i, name in enumerate(r.names):
        label, key = paper_of.get(name, ("—", None))
        rows.append(
            {
                "model": name,
                "clean error": float(r.clean_error[i]),
                f"error at ε = {r.table_eps:g}": float(r.table_error[i]),
                "mean confidence": float(r.table_confidence[i]),
                "paper's model": label,
                "paper's error": G.get(f"{key}_adv_error") if key else None,
                "paper's confidence": G.get(f"{key}_adv_confidence") if key else None,
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    return table.style.format({c: pct for c in table.columns if c != "paper's model"})


def table_weight_decay(result: Result) -> Styler:
    """``fc10`` trained with each weight decay: weight size, clean error, FGSM error, confidence."""
    r = result
    err = f"error at ε = {r.table_eps:g}"
    decay = pd.DataFrame(
        [
            {
                "weight decay λ": wd,
                "mean ‖w_c‖₁": float(r.decay_l1[i]),
                "clean error": float(r.decay_clean_error[i]),
                err: float(r.decay_error[i]),
                "mean confidence": float(r.decay_confidence[i]),
            }
            for i, wd in enumerate(r.decay_lambdas)
        ]
    ).set_index("weight decay λ")
    return decay.style.format(
        {"mean ‖w_c‖₁": "{:.1f}", "clean error": "{:.1%}", err: "{:.1%}", "mean confidence": "{:.1%}"}
    )


def headline(result: Result) -> Headline:
    """The chapter's opening box: Goodfellow et al.'s error rates under FGSM beside ours."""
    g = glue_values(result)
    stand_ins = g["maxout_names"]
    return Headline(
        "Goodfellow et al. (2015), Sec. 4 and Fig. 2",
        (
            (
                "logistic regression, 3 vs 7: clean error",
                f"{G['logreg_clean_error']:.1%}",
                f"{g['logreg_clean_error']:.1%}",
            ),
            (
                "logistic regression, 3 vs 7: FGSM error",
                f"{G['logreg_adv_error']:.0%}",
                f"{g['logreg_adv_error']:.2%}",
            ),
            (
                "shallow softmax: FGSM error (confidence)",
                f"{G['softmax_adv_error']:.1%} ({G['softmax_adv_confidence']:.1%})",
                f"{g['adv_error_fc10']:.2%} ({g['adv_confidence_fc10']:.1%})",
            ),
            (
                "maxout network: FGSM error",
                f"{G['maxout_adv_error']:.1%}",
                f"{g['standin_error_min']:.1%} to {g['standin_error_max']:.1%} (stand-ins: {stand_ins})",
            ),
        ),
        f"ε = {G['eps']:g} on MNIST's test set",
        f"ε = {g['table_eps']:g} on {g['n_samples_10class']:,} test digits per model "
        f"({g['n_logreg']:,} 3s and 7s for the logistic regression)",
    )
