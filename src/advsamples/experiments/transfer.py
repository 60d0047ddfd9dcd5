r"""The computations of the transferability chapter (Szegedy et al., 2014, Tables 2-4).

- :func:`base_sample`: the seeded images (training or test split) every attack starts from, with
  one random target class each;
- :func:`craft_lbfgs`, :func:`craft_fgsm`, :func:`craft_jsma` and :func:`noise_rows`: the samples
  each source model (or Gaussian noise) produces from them;
- :class:`TransferMatrix` and :func:`transfer_matrix`: the error every crafted set causes on every
  model (Szegedy's definition: the fraction misclassified with respect to the true label), and
  for targeted attacks the fraction classified as the attack's target;
- :func:`rescale_perturbation`: perturbations scaled to a given per-pixel standard deviation (or
  root mean square), for the "amplified" rows of Szegedy's Table 4 and a distortion-matched Table 2;
- :data:`DISJOINT_MODELS` and :func:`load_disjoint`: the disjoint-halves models;
- :func:`paper_table2` and :func:`matrix_figure`: the paper's matrix aligned with ours, and
  heatmaps side by side; :func:`paper_noise_vs_errors`: the paper's noise row against its own
  training and test errors (which split its base images most likely came from).

Rows are crafted sets, columns are models. Every row is built from the *same* base images, so a
row's error on a column model counts that model's clean mistakes on those images too (as the
paper's noise rows do); the noise rows are the baseline that separates the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from advsamples import models as M
from advsamples import papers
from advsamples.attacks._validate import check_finite_nonneg
from advsamples.attacks.fgsm import fgsm
from advsamples.attacks.jsma import jsma
from advsamples.attacks.lbfgs import LBFGSResult, gaussian_noise, lbfgs_trace
from advsamples.data import load_mnist
from advsamples.experiments.common import random_targets
from advsamples.models import DISJOINT_MODELS
from advsamples.plotting import finish

__all__ = [
    "DISJOINT_MODELS",
    "TransferMatrix",
    "base_sample",
    "craft_fgsm",
    "craft_jsma",
    "craft_lbfgs",
    "load_disjoint",
    "matrix_figure",
    "mean_abs",
    "noise_key",
    "noise_rows",
    "paper_noise_vs_errors",
    "paper_table2",
    "rescale_perturbation",
    "transfer_matrix",
]

_BATCH = 1000


def load_disjoint(schedule: str) -> dict[str, nn.Module]:
    """The three models of :data:`DISJOINT_MODELS`, trained on ``schedule`` (cached checkpoints)."""
    return {
        label: M.get_model(name, schedule, progress=False, **overrides)
        for label, (name, overrides) in DISJOINT_MODELS.items()
    }


# --------------------------------------------------------------------------- base images
def base_sample(
    split: Literal["train", "test"], n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, target)``: ``n`` images of the MNIST ``split`` drawn with ``seed``, their labels and
    a target per image, uniform over the nine other classes.

    Raises:
        ValueError: for an unknown split or ``n`` outside ``[1, len(split)]``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got split={split!r}")
    mnist = load_mnist()
    x, y = (mnist.x_train, mnist.y_train) if split == "train" else (mnist.x_test, mnist.y_test)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(x):
        raise ValueError(f"n must be an integer in [1, {len(x)}], got n={n!r}")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x[idx], y[idx], random_targets(y[idx], seed + 1)


# --------------------------------------------------------------------------- crafted sets
def craft_lbfgs(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    c_init: float = 0.1,
    search_steps: int = 8,
    bracket_steps: int = 6,
    max_iter: int = 100,
    progress: bool = True,
) -> dict[str, LBFGSResult]:
    """Targeted L-BFGS samples of ``x`` toward ``target`` for every model (Szegedy's Table 2 rows)."""
    return {
        key: lbfgs_trace(
            model,
            x,
            target,
            c_init=c_init,
            search_steps=search_steps,
            bracket_steps=bracket_steps,
            max_iter=max_iter,
            progress=progress,
            desc=f"L-BFGS {key}",
        )
        for key, model in models.items()
    }


def craft_fgsm(
    models: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor, eps: float, *, progress: bool = True
) -> dict[str, torch.Tensor]:
    """Untargeted FGSM samples of ``(x, y)`` at budget ``eps`` for every model."""
    out = {}
    for key, model in tqdm(models.items(), desc="FGSM", unit="model", disable=not progress, leave=False):
        out[key] = torch.cat(
            [fgsm(model, x[i : i + _BATCH], y[i : i + _BATCH], eps) for i in range(0, len(x), _BATCH)]
        )
    return out


def craft_jsma(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 0.145,
    theta: float = 1.0,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Targeted JSMA samples of ``x`` toward ``target`` for every model (where JSMA fails within its
    budget the sample is the last one it reached, as Papernot et al. count it)."""
    out = {}
    for key, model in tqdm(models.items(), desc="JSMA", unit="model", disable=not progress, leave=False):
        out[key] = jsma(model, x, target, theta=theta, gamma=gamma)
    return out


def noise_key(sigma: float) -> str:
    """Row label of Gaussian noise of standard deviation ``sigma``, as in :data:`papers.SZEGEDY_TABLE2`."""
    return f"noise({sigma:g})"


def noise_rows(
    x: torch.Tensor,
    sigmas: Sequence[float],
    seed: int,
    *,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> dict[str, torch.Tensor]:
    """``x`` plus Gaussian noise for each standard deviation (one seeded generator per row, so that a
    row does not depend on which other rows are drawn), clipped to ``clip`` or, with ``clip=None``,
    left unclipped (the same noise draws either way).

    Clipping to the pixel range is not neutral: on MNIST's black background half of the noise is cut
    away, so the clipped noise adds a positive haze of mean about ``0.4 * sigma`` there.

    Raises:
        ValueError: if ``sigmas`` is empty or holds a negative or non-finite value, or repeats one.
    """
    if len(sigmas) == 0:
        raise ValueError("sigmas must hold at least one standard deviation")
    keys = [noise_key(s) for s in sigmas]
    if len(set(keys)) != len(keys):
        raise ValueError(f"sigmas must be distinct, got {list(sigmas)}")
    out = {}
    for i, (key, s) in enumerate(zip(keys, sigmas, strict=True)):
        g = torch.Generator().manual_seed(seed + 7919 * i)
        if clip is None:
            sd = check_finite_nonneg("sigma", s)
            out[key] = x.detach() + sd * torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
        else:
            out[key] = gaussian_noise(x, s, generator=g, clip=clip)
    return out


def rescale_perturbation(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    size: float | torch.Tensor,
    *,
    measure: Literal["std", "rms"] = "std",
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    r"""Scale each sample's perturbation :math:`r = x_{adv} - x` to a given size, then clip.

    ``measure="std"`` makes the per-pixel standard deviation of :math:`r` (over the pixels of one
    sample, :math:`\sqrt{\overline{r^2} - \bar r^2}`) equal to ``size``; ``measure="rms"`` makes its
    root mean square :math:`\sqrt{\overline{r^2}}` (Szegedy's Table 1 "distortion") equal to it.
    The result is clipped to the box, so its actual size can end up smaller. Samples with
    :math:`r = 0` are returned unchanged.

    Args:
        x, x_adv: ``(N, ...)`` clean and adversarial samples.
        size: the target size, a number or one per sample ``(N,)``, finite and ``>= 0``.
        measure: ``"std"`` or ``"rms"``.
        clip: the box ``(lo, hi)``.

    Raises:
        ValueError: for mismatched shapes, an unknown measure or a bad size.
    """
    if x.shape != x_adv.shape or x.dim() < 2:
        raise ValueError(
            f"x and x_adv must have the same shape (N, ...), got {tuple(x.shape)} and {tuple(x_adv.shape)}"
        )
    if measure not in ("std", "rms"):
        raise ValueError(f"measure must be 'std' or 'rms', got measure={measure!r}")
    s = torch.as_tensor(size, dtype=torch.float64).reshape(-1)
    if s.numel() == 1:
        s = s.expand(len(x))
    if s.numel() != len(x) or not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError(f"size must be a finite number >= 0 or {len(x)} of them, got {size!r}")
    r = (x_adv - x).double().reshape(len(x), -1)
    now = r.std(dim=1, unbiased=False) if measure == "std" else r.square().mean(dim=1).sqrt()
    factor = torch.where(now > 0, s / now.clamp_min(1e-300), torch.ones_like(now))
    out = x.double().reshape(len(x), -1) + factor[:, None] * r
    return out.clamp(*clip).reshape(x.shape).to(x.dtype)


# --------------------------------------------------------------------------- matrices
@dataclass(frozen=True)
class TransferMatrix:
    """Error that each crafted set (row) causes on each model (column).

    Attributes:
        rows, cols: row labels (source model or noise) and column labels (models).
        error: ``(R, C)`` fraction of the row's samples the column model misclassifies with respect
            to the true label (Szegedy et al.'s "error"). Where the row's source model is the
            column model, this is the attack's white-box error rate (the paper's 100 % diagonal).
        target_rate: ``(R, C)`` fraction classified as the attack's target, or ``None`` for an
            untargeted attack.
        n: samples per row.
    """

    rows: tuple[str, ...]
    cols: tuple[str, ...]
    error: np.ndarray
    target_rate: np.ndarray | None
    n: int

    def cell(self, row: str, col: str) -> float:
        """``error`` at ``(row, col)``."""
        return float(self.error[self.rows.index(row), self.cols.index(col)])

    def diagonal(self) -> np.ndarray:
        """``error`` where the row's label is also a column's (white-box), in row order."""
        return np.array([self.cell(r, r) for r in self.rows if r in self.cols])

    def off_diagonal(self, values: np.ndarray | None = None) -> np.ndarray:
        """Entries of ``values`` (default ``error``) whose row is a model other than the column
        (the black-box transfers); noise rows are left out."""
        v = self.error if values is None else values
        return np.array(
            [
                v[i, j]
                for i, r in enumerate(self.rows)
                if r in self.cols
                for j, c in enumerate(self.cols)
                if r != c
            ]
        )


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i : i + _BATCH]).argmax(1) for i in range(0, len(x), _BATCH)])


def transfer_matrix(
    samples: Mapping[str, torch.Tensor],
    models: Mapping[str, nn.Module],
    y: torch.Tensor,
    target: torch.Tensor | None = None,
) -> TransferMatrix:
    """Evaluate every crafted set on every model.

    Args:
        samples: row label -> ``(N, ...)`` samples (all rows built from the same ``N`` images).
        models: column label -> model.
        y: ``(N,)`` true labels; target: ``(N,)`` the attack's targets (``None`` if untargeted).

    Raises:
        ValueError: for empty inputs or a row whose length differs from ``y``.
    """
    if not samples or not models:
        raise ValueError("need at least one row of samples and one model")
    n = len(y)
    for key, xs in samples.items():
        if len(xs) != n:
            raise ValueError(f"row {key!r} holds {len(xs)} samples but y holds {n}")
    if target is not None and len(target) != n:
        raise ValueError(f"target holds {len(target)} labels but y holds {n}")
    rows, cols = tuple(samples), tuple(models)
    err = np.empty((len(rows), len(cols)))
    hit = np.empty((len(rows), len(cols))) if target is not None else None
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            pred = _predict(models[c], samples[r])
            err[i, j] = float((pred != y).double().mean())
            if hit is not None and target is not None:
                hit[i, j] = float((pred == target).double().mean())
    return TransferMatrix(rows, cols, err, hit, n)


def paper_table2(rows: Sequence[str], cols: Sequence[str]) -> np.ndarray:
    """Szegedy et al.'s Table 2 at our rows and columns (model keys, ``"noise(σ)"``); NaN where the
    paper has no such row or column."""
    out = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        values = papers.SZEGEDY_TABLE2.get(r)
        if values is None:
            continue
        for j, c in enumerate(cols):
            if c in papers.SZEGEDY_TABLE2_COLUMNS:
                out[i, j] = values[papers.SZEGEDY_TABLE2_COLUMNS.index(c)]
    return out


def paper_noise_vs_errors(sigma: float = 0.1) -> dict[str, float]:
    """How far the paper's own noise row (Table 2) is from its own training and test errors (Table 1).

    Small noise hardly changes a prediction, so a noise row is close to the clean error of the images
    it was drawn on; comparing the paper's row with the paper's two error columns (over the models in
    both tables) suggests which split its base images came from, independently of our models.

    Returns:
        ``{"train": mean |noise - train error|, "test": mean |noise - test error|}``.
    """
    row = papers.SZEGEDY_TABLE2[noise_key(sigma)]
    gaps: dict[str, list[float]] = {"train": [], "test": []}
    for j, col in enumerate(papers.SZEGEDY_TABLE2_COLUMNS):
        t1 = papers.SZEGEDY_TABLE1.get(col)
        if t1 is None:
            continue
        gaps["train"].append(abs(row[j] - t1["train_error"]))
        gaps["test"].append(abs(row[j] - t1["test_error"]))
    return {k: float(np.mean(v)) for k, v in gaps.items()}


def matrix_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    rows: Sequence[str],
    cols: Sequence[str],
    *,
    diverging: Sequence[bool] | None = None,
    xlabel: str = "evaluated on",
    ylabel: str = "crafted on",
) -> Figure:
    """Annotated heatmaps side by side, sharing ``rows`` and ``cols`` (NaN cells blank).

    ``panels`` are ``(title, matrix)``; a panel marked in ``diverging`` is a signed difference,
    drawn with a diverging colormap centred on zero, the others as rates in [0, 1].
    """
    if not panels:
        raise ValueError("panels must hold at least one matrix")
    div = list(diverging) if diverging is not None else [False] * len(panels)
    k = len(panels)
    width = 1.0 + 0.62 * len(cols)
    fig, axes = plt.subplots(1, k, figsize=(width * k, 0.5 * len(rows) + 1.8), squeeze=False)
    for ax, (title, m), d in zip(axes[0], panels, div, strict=True):
        m = np.asarray(m, dtype=float)
        if m.shape != (len(rows), len(cols)):
            raise ValueError(f"panel {title!r} is {m.shape}, expected {(len(rows), len(cols))}")
        lim = float(np.nanmax(np.abs(m))) if d and np.isfinite(m).any() else 1.0
        sns.heatmap(
            m,
            mask=np.isnan(m),
            annot=True,
            fmt="+.0%" if d else ".0%",
            cmap="RdBu_r" if d else "rocket_r",
            vmin=-lim if d else 0.0,
            vmax=lim,
            ax=ax,
            cbar=False,
            xticklabels=list(cols),
            yticklabels=list(rows),
            annot_kws={"fontsize": 7},
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel if ax is axes[0, 0] else "")
        ax.tick_params(axis="x", labelrotation=40, labelsize=7)
        ax.tick_params(axis="y", labelrotation=0, labelsize=7)
        if ax is not axes[0, 0]:
            ax.set_yticklabels([])
    return finish(fig, despine=False)


def mean_abs(a: np.ndarray) -> float:
    """Mean of ``|a|`` over its finite entries (NaN if none)."""
    v = np.abs(np.asarray(a, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan
