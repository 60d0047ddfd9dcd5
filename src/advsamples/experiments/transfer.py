r"""The transferability chapter (Szegedy et al., 2014, Tables 2-4; FGSM and JSMA across models).

The chapter: :class:`Params` (the notebook's parameters, validated), :func:`run` (every
computation, cached; each attack saved in chunks so that a killed run resumes) returning a
:class:`Result` of transfer matrices, :func:`glue_values` (the numbers and phrases the prose
quotes), the figures (:func:`table2_figure`, :func:`matched_figure`, :func:`fgsm_jsma_figure`,
:func:`disjoint_figure`) and tables (:func:`noise_table`, :func:`disjoint_table`).

Its pieces:

- :func:`base_sample`: the seeded images (training or test split) every attack starts from, with
  one random target class each;
- :func:`craft_fgsm` and :func:`noise_rows`: FGSM samples of every model, and Gaussian noise
  (the L-BFGS and JSMA rows are the attacks themselves, chunked by the run);
- :class:`TransferMatrix` and :func:`transfer_matrix`: the error every crafted set causes on every
  model (Szegedy's definition: the fraction misclassified with respect to the true label), and
  for targeted attacks the fraction classified as the attack's target;
- :func:`rescale_perturbation`: perturbations scaled to a given per-pixel standard deviation (or
  root mean square), for the "amplified" rows of Szegedy's Table 4 and a distortion-matched Table 2;
- :func:`paper_table2` and :func:`matrix_figure`: the paper's matrix aligned with ours, and
  heatmaps side by side; :func:`paper_noise_vs_errors`: the paper's noise row against its own
  training and test errors (which split its base images most likely came from); :func:`noise_gaps`:
  our noise rows against the paper's on the whole of each split;
- the phrases of the prose (:func:`success_phrase`, :func:`noise_verdict`, :func:`clip_vs_split`,
  :func:`jsma_verdict`, :func:`factor_verdict`, :func:`amplification_phrase`,
  :func:`disjoint_verdict`).

Rows are crafted sets, columns are models. Every row is built from the *same* base images, so a
row's error on a column model counts that model's clean mistakes on those images too (as the
paper's noise rows do); the noise rows are the baseline that separates the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler
from torch import nn
from tqdm.auto import tqdm

from advsamples import models as M
from advsamples import papers
from advsamples.attacks._validate import check_finite_nonneg
from advsamples.attacks.fgsm import fgsm
from advsamples.attacks.jsma import jsma
from advsamples.attacks.lbfgs import gaussian_noise, lbfgs_trace
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, chunked, param
from advsamples.data import load_mnist
from advsamples.experiments.common import (
    Gap,
    check_search,
    known,
    random_targets,
    rate_interval,
    relation,
    search_settings,
)
from advsamples.models import DISJOINT_MODELS
from advsamples.params import (
    check_bool,
    check_choice,
    check_choices,
    check_count,
    check_int,
    check_number,
    check_numbers,
)
from advsamples.plotting import finish

__all__ = [
    "CHUNK",
    "DISJOINT_MODELS",
    "DISJOINT_ROWS",
    "MAX_NOISE_ROWS",
    "MAX_SEED",
    "NOISE_MODES",
    "NOISE_SPLITS",
    "Params",
    "Result",
    "TransferMatrix",
    "amplification_phrase",
    "base_sample",
    "clip_vs_split",
    "combo_phrase",
    "compare",
    "craft_fgsm",
    "disjoint_figure",
    "disjoint_rows",
    "disjoint_table",
    "disjoint_verdict",
    "factor_verdict",
    "fgsm_jsma_figure",
    "glue_values",
    "jsma_verdict",
    "matched_figure",
    "fidelity",
    "matrix_figure",
    "matrix_from_dict",
    "matrix_to_dict",
    "mean_abs",
    "noise_gaps",
    "noise_key",
    "noise_rows",
    "noise_table",
    "noise_verdict",
    "paper_noise_vs_errors",
    "paper_table2",
    "rescale_perturbation",
    "run",
    "success_phrase",
    "table2_figure",
    "transfer_matrix",
]

_BATCH = 1000


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


# =========================================================================== the chapter
#: Largest accepted seed (base draws use ``seed``, ``seed + 1`` and ``seed + 7919 * i``).
MAX_SEED = 2**31 - 1
#: Most noise rows a run may ask for (each is a full row of every matrix).
MAX_NOISE_ROWS = 8
#: Samples per saved chunk of an attack (a killed run loses at most one chunk per model).
CHUNK = 50
#: Format version of the chapter's cache entries.
_VERSION = 2  # 2: disjoint_matched
#: The two splits and two noise modes of the noise table, in the order the chapter reads them.
NOISE_SPLITS: tuple[str, ...] = ("train", "test")
NOISE_MODES: tuple[str, ...] = ("clipped", "unclipped")
#: Where the disjoint-halves rows of the paper (:data:`papers.SZEGEDY_DISJOINT`) sit: label, which
#: matrix (``"plain"`` or ``"amplified"``), column index among the disjoint models, paper key.
DISJOINT_ROWS: tuple[tuple[str, str, int, str], ...] = (
    ("to FC123-456-10 (same half, other architecture)", "plain", 1, "to_same_half_other_arch"),
    ("to FC100-100-10' (other half, same architecture)", "plain", 2, "to_other_half_same_arch"),
    ("amplified, to FC123-456-10", "amplified", 1, "amplified_to_same_half_other_arch"),
    ("amplified, to FC100-100-10'", "amplified", 2, "amplified_to_other_half_same_arch"),
)


@dataclass(frozen=True)
class Params(ChapterParams):
    """The transferability chapter's parameters (the notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "transferability"

    lbfgs_models: list[str] = param(list(M.SZEGEDY_KEYS), "Table 2 rows, columns")
    models: list[str] = param(list(M.MODEL_KEYS), "rows and columns of the FGSM and JSMA matrices")
    split: str = param(
        "train", 'MNIST split of the base images of Table 2 and the FGSM/JSMA matrices: "train" or "test"'
    )
    n_samples: int = param(20, "base images; every row of a matrix is crafted from the same ones")
    seed: int = param(0, "draws the base images, their targets and the noise")
    noise_sigmas: list[float] = param(
        [0.1, 0.3], "standard deviations of the Gaussian-noise rows of Table 2 (the prose quotes two)"
    )
    noise_clip: bool = param(
        False, "clip noisy images to the pixel range [0, 1]; the paper does not say (see the text)"
    )
    c_init: float = param(0.1, "L-BFGS: first penalty weight c of the search")
    search_steps: int = param(6, "L-BFGS: bisections of c after bracketing")
    bracket_steps: int = param(6, "L-BFGS: at most this many ×10 / ÷10 moves of c")
    max_iter: int = param(100, "L-BFGS: L-BFGS-B iterations per optimisation")
    eps: float = param(0.25, "FGSM: L∞ budget (Goodfellow et al. use 0.25 on MNIST)")
    jsma_gamma: float = param(0.145, "JSMA: largest fraction of pixels changed (Papernot et al.)")
    jsma_theta: float = param(1.0, "JSMA: change applied to each chosen pixel")
    amplified_std: float = param(
        0.1, "disjoint halves: per-pixel standard deviation of the amplified perturbations"
    )
    disjoint_sigma: float = param(0.1, "disjoint halves: standard deviation of the Gaussian-noise baseline")

    def validate(self) -> None:
        super().validate()
        check_choices("lbfgs_models", self.lbfgs_models, M.MODEL_KEYS, min_len=2)
        check_choices("models", self.models, M.MODEL_KEYS, min_len=2)
        check_choice("split", self.split, ["train", "test"])
        check_count("n_samples", self.n_samples, 10_000, "test images (the disjoint halves use the test set)")
        check_int("seed", self.seed, 0, MAX_SEED, "a 31-bit seed")
        check_numbers("noise_sigmas", self.noise_sigmas, lo=0, hi=10, max_len=MAX_NOISE_ROWS)
        if len(self.noise_sigmas) < 2:
            raise ValueError(
                f"parameter noise_sigmas={self.noise_sigmas!r} must list at least 2 standard deviations "
                "(the chapter compares two noise rows)"
            )
        if len({noise_key(s) for s in self.noise_sigmas}) != len(self.noise_sigmas):
            raise ValueError(f"parameter noise_sigmas={self.noise_sigmas!r} holds a duplicate row")
        check_bool("noise_clip", self.noise_clip)
        check_search(self)
        check_number("eps", self.eps, lo=0, hi=1)
        check_number("jsma_gamma", self.jsma_gamma, lo=0, lo_open=True, hi=1)
        check_number("jsma_theta", self.jsma_theta, lo=-1, hi=1)
        if self.jsma_theta == 0:
            raise ValueError(f"parameter jsma_theta={self.jsma_theta!r} must not be 0")
        check_number("amplified_std", self.amplified_std, lo=0, lo_open=True, hi=1)
        check_number("disjoint_sigma", self.disjoint_sigma, lo=0, hi=10)

    def search(self) -> dict[str, Any]:
        """The L-BFGS c search's settings, as keyword arguments of :func:`lbfgs_trace`."""
        return search_settings(self)

    def clip(self) -> tuple[float, float] | None:
        """The box the noise rows are clipped to, or ``None`` (:attr:`noise_clip`)."""
        return (0.0, 1.0) if self.noise_clip else None


# --------------------------------------------------------------------------- matrices as data
def matrix_to_dict(m: TransferMatrix) -> dict[str, Any]:
    """``m`` as plain JSON values (floats round-trip exactly)."""
    return {
        "rows": list(m.rows),
        "cols": list(m.cols),
        "error": m.error.tolist(),
        "target_rate": None if m.target_rate is None else m.target_rate.tolist(),
        "n": m.n,
    }


def matrix_from_dict(d: Mapping[str, Any]) -> TransferMatrix:
    """The inverse of :func:`matrix_to_dict`."""
    hit = d["target_rate"]
    return TransferMatrix(
        tuple(d["rows"]),
        tuple(d["cols"]),
        np.array(d["error"], dtype=float),
        None if hit is None else np.array(hit, dtype=float),
        int(d["n"]),
    )


# --------------------------------------------------------------------------- result
@dataclass(frozen=True)
class Result(ChapterResult):
    """Everything the transferability chapter shows.

    Attributes:
        settings: the parameters the run used (without ``profile``).
        n_pixels: input values per image; n_train: training images the halves split.
        matrices: the transfer matrices (:func:`matrix_to_dict`): ``table2`` (L-BFGS rows, noise
            rows, clean), ``matched`` (L-BFGS rows scaled to the paper's distortions), ``fgsm`` and
            ``jsma`` (with clean rows), ``disjoint_plain`` (L-BFGS rows of the disjoint models,
            the noise row, clean), ``disjoint_amplified`` (amplified rows, noise row),
            ``disjoint_rms`` (the root-mean-square reading), ``disjoint_factor`` (the source's
            samples scaled by the paper's factor), ``disjoint_matched`` (the source's samples
            scaled to the paper's FC100-100-10 distortion, Table 1), and ``noise_<split>_<mode>``
            (clean and noise rows on the whole split, clipped or not).
        lbfgs_distortion: per Table 2 model, the mean distortion of its successful samples.
        noise_rms: per noise row of Table 2, the mean root mean square of the noise.
        disjoint_plain_std, disjoint_amp_std: per disjoint model, the mean per-pixel standard
            deviation of its perturbations, as found and amplified (after clipping).
        disjoint_test_error: per disjoint model, its test error.
    """

    settings: dict[str, Any]
    n_pixels: int
    n_train: int
    matrices: dict[str, dict[str, Any]]
    lbfgs_distortion: dict[str, float]
    noise_rms: dict[str, float]
    disjoint_plain_std: dict[str, float]
    disjoint_amp_std: dict[str, float]
    disjoint_test_error: dict[str, float]

    def matrix(self, name: str) -> TransferMatrix:
        """The transfer matrix ``name`` (see :attr:`matrices`)."""
        return matrix_from_dict(self.matrices[name])


# --------------------------------------------------------------------------- the run
def _lbfgs_rows(
    params: Params,
    nets: Mapping[str, nn.Module],
    checkpoints: Mapping[str, str],
    x: torch.Tensor,
    target: torch.Tensor,
    step: str,
    progress: bool,
) -> dict[str, dict[str, torch.Tensor]]:
    """Targeted L-BFGS samples (``x_adv``, ``success``, ``distortion`` per model), saved in
    chunks of :data:`CHUNK` samples per model, so that a killed run resumes."""
    out = {}
    for key, net in nets.items():

        def compute(a: int, b: int, net: nn.Module = net, key: str = key) -> dict[str, np.ndarray]:
            r = lbfgs_trace(
                net, x[a:b], target[a:b], **params.search(), progress=progress, desc=f"L-BFGS {key}"
            )
            return {
                "x_adv": r.x_adv.numpy(),
                "success": r.success.numpy(),
                "distortion": r.distortion.numpy(),
            }

        arrays = chunked(
            params,
            len(x),
            CHUNK,
            compute,
            version=_VERSION,
            models=[checkpoints[key]],
            step=f"{step}-{M.slug(key)}",
        )
        out[key] = {k: torch.from_numpy(v) for k, v in arrays.items()}
    return out


def _jsma_rows(
    params: Params,
    nets: Mapping[str, nn.Module],
    checkpoints: Mapping[str, str],
    x: torch.Tensor,
    target: torch.Tensor,
    progress: bool,
) -> dict[str, torch.Tensor]:
    """Targeted JSMA samples of every model (where JSMA fails within its budget, the last sample it
    reached, as Papernot et al. count it), saved per model (resumable)."""
    out = {}
    for key, net in tqdm(nets.items(), desc="JSMA", unit="model", disable=not progress, leave=False):

        def compute(a: int, b: int, net: nn.Module = net) -> dict[str, np.ndarray]:
            x_adv = jsma(net, x[a:b], target[a:b], theta=params.jsma_theta, gamma=params.jsma_gamma)
            return {"x_adv": x_adv.numpy()}

        arrays = chunked(
            params,
            len(x),
            len(x),
            compute,
            version=_VERSION,
            models=[checkpoints[key]],
            step=f"jsma-{M.slug(key)}",
        )
        out[key] = torch.from_numpy(arrays["x_adv"])
    return out


def _rms(noise: torch.Tensor, x: torch.Tensor) -> float:
    return float((noise - x).square().mean(dim=(1, 2, 3)).sqrt().mean())


def _std(x_adv: torch.Tensor, x: torch.Tensor) -> float:
    return float((x_adv - x).reshape(len(x), -1).std(dim=1, unbiased=False).mean())


def _compute(params: Params, progress: bool, checkpoints: Mapping[str, str]) -> Result:
    mats: dict[str, dict[str, Any]] = {}
    x, y, target = base_sample(params.split, params.n_samples, params.seed)  # type: ignore[arg-type]
    nets = {
        key: M.load(key, params.schedule) for key in dict.fromkeys([*params.lbfgs_models, *params.models])
    }
    t2_nets = {k: nets[k] for k in params.lbfgs_models}
    # Table 2: L-BFGS rows, noise rows and the clean images on the Table 2 models.
    noise = noise_rows(x, params.noise_sigmas, params.seed, clip=params.clip())
    lbfgs_runs = _lbfgs_rows(params, t2_nets, checkpoints, x, target, "lbfgs", progress)
    t2_rows = {k: r["x_adv"] for k, r in lbfgs_runs.items()} | noise | {"clean": x}
    mats["table2"] = matrix_to_dict(transfer_matrix(t2_rows, t2_nets, y, target))
    # The same rows scaled to the paper's Table 1 distortion of their source model.
    matched = {
        k: rescale_perturbation(x, r["x_adv"], papers.SZEGEDY_TABLE1[k]["distortion"], measure="rms")
        for k, r in lbfgs_runs.items()
        if k in papers.SZEGEDY_TABLE1
    }
    if matched:
        mats["matched"] = matrix_to_dict(transfer_matrix(matched, t2_nets, y, target))
    # Noise and clean rows on the whole of each split, clipped and unclipped (the same draws).
    for sp in NOISE_SPLITS:
        xs, ys, _ = base_sample(sp, 60_000 if sp == "train" else 10_000, params.seed)  # type: ignore[arg-type]
        for mode, clip in zip(NOISE_MODES, ((0.0, 1.0), None), strict=True):
            rows = noise_rows(xs, params.noise_sigmas, params.seed, clip=clip)
            if mode == "clipped":
                rows = {"clean": xs} | rows
            mats[f"noise_{sp}_{mode}"] = matrix_to_dict(transfer_matrix(rows, t2_nets, ys))
            del rows
        del xs
    # FGSM and JSMA across every model of the study.
    cols = {k: nets[k] for k in params.models}
    fgsm_rows = craft_fgsm(cols, x, y, params.eps, progress=progress) | {"clean": x}
    mats["fgsm"] = matrix_to_dict(transfer_matrix(fgsm_rows, cols, y))
    jsma_rows = _jsma_rows(params, cols, checkpoints, x, target, progress) | {"clean": x}
    mats["jsma"] = matrix_to_dict(transfer_matrix(jsma_rows, cols, y, target))
    # Disjoint halves: L-BFGS samples of the three models from test images, amplified and not.
    disjoint = {label: M.load(label, params.schedule) for label in DISJOINT_MODELS}
    xd, yd, td = base_sample("test", params.n_samples, params.seed)
    d_runs = _lbfgs_rows(params, disjoint, checkpoints, xd, td, "disjoint", progress)
    d_plain = {k: r["x_adv"] for k, r in d_runs.items()}
    d_std = {k: rescale_perturbation(xd, v, params.amplified_std, measure="std") for k, v in d_plain.items()}
    d_rms = {k: rescale_perturbation(xd, v, params.amplified_std, measure="rms") for k, v in d_plain.items()}
    d_noise = noise_rows(xd, [params.disjoint_sigma], params.seed, clip=params.clip())
    mats["disjoint_plain"] = matrix_to_dict(
        transfer_matrix(d_plain | d_noise | {"clean": xd}, disjoint, yd, td)
    )
    mats["disjoint_amplified"] = matrix_to_dict(transfer_matrix(d_std | d_noise, disjoint, yd, td))
    mats["disjoint_rms"] = matrix_to_dict(transfer_matrix(d_rms, disjoint, yd, td))
    src = next(iter(disjoint))
    factor = params.amplified_std / papers.SZEGEDY_TABLE1["fc100_100_10"]["distortion"]
    r_std = (d_plain[src] - xd).reshape(len(xd), -1).std(dim=1, unbiased=False)
    scaled = rescale_perturbation(xd, d_plain[src], factor * r_std, measure="std")
    mats["disjoint_factor"] = matrix_to_dict(transfer_matrix({src: scaled}, disjoint, yd, td))
    matched_src = rescale_perturbation(
        xd, d_plain[src], papers.SZEGEDY_TABLE1["fc100_100_10"]["distortion"], measure="rms"
    )
    mats["disjoint_matched"] = matrix_to_dict(transfer_matrix({src: matched_src}, disjoint, yd, td))
    return Result(
        settings={k: v for k, v in params.as_dict().items() if k != "profile"},
        n_pixels=int(x[0].numel()),
        n_train=len(M.training_data(M.config_for("fc100_100_10", params.schedule))[0]),
        matrices=mats,
        lbfgs_distortion={k: float(r["distortion"][r["success"]].mean()) for k, r in lbfgs_runs.items()},
        noise_rms={k: _rms(v, x) for k, v in noise.items()},
        disjoint_plain_std={k: _std(v, xd) for k, v in d_plain.items()},
        disjoint_amp_std={k: _std(v, xd) for k, v in d_std.items()},
        disjoint_test_error={k: 1 - M.info(k, params.schedule).test_accuracy for k in DISJOINT_MODELS},
    )


def run(params: Params, *, progress: bool = True) -> Result:
    """The chapter's every computation (cached by ``params`` and the models' checkpoints; the
    attacks are saved in chunks, so that a killed run resumes where it stopped)."""
    keys = list(dict.fromkeys([*params.lbfgs_models, *params.models, *DISJOINT_MODELS]))
    checkpoints = {key: M.info(key, params.schedule).key for key in keys}
    return cached(
        params,
        Result,
        lambda: _compute(params, progress, checkpoints),
        version=_VERSION,
        models=list(checkpoints.values()),
    )


# --------------------------------------------------------------------------- phrases
def success_phrase(white_min: float) -> str:
    """How often the attack reached its target on its own model (the white-box diagonal)."""
    if white_min == 1:
        return "on every image for every source model"
    return f"on at least {white_min:.0%} of the images for every source model"


def noise_verdict(black_mean: float, noise_error: float) -> str:
    """Crafted samples against a larger noise row, by the error they cause on other models."""
    if black_mean > noise_error:
        return "the crafted samples cause more error on other models than larger noise does"
    return "at this size the crafted samples cause no more error on other models than larger noise does"


def clip_vs_split(gaps: Mapping[tuple[str, str], float]) -> str:
    """Whether clipping the noise or the split of the images moves the noise rows more (``gaps``:
    mean |ours − paper| by ``(split, mode)``)."""
    clip_effect = np.mean([gaps[(sp, "clipped")] - gaps[(sp, "unclipped")] for sp in NOISE_SPLITS])
    split_effect = np.mean([abs(gaps[("train", c)] - gaps[("test", c)]) for c in NOISE_MODES])
    return (
        "Clipping matters more than the split"
        if abs(clip_effect) > split_effect
        else "The split matters more than clipping"
    )


def combo_phrase(split: str, mode: str) -> str:
    """``("train", "unclipped")`` -> ``"training images with unclipped noise"``."""
    return f"{'training' if split == 'train' else 'test'} images with {mode} noise"


def jsma_verdict(target_mean: float, black_mean: float) -> str:
    """How many of JSMA's samples reach the attack's target on another model, as a phrase."""
    if target_mean < black_mean / 2:
        return f"only {target_mean:.1%} of JSMA's samples reach the intended target on another model"
    return f"{target_mean:.1%} of JSMA's samples reach the intended target on another model too"


def compare(a: float, b: float) -> str:
    """``"more than"``, ``"less than"`` or ``"as much as"``."""
    return "more than" if a > b else "less than" if a < b else "as much as"


def factor_verdict(within: Sequence[bool], noise_sensitivity: str) -> str:
    """Whether amplifying by the paper's factor brings both disjoint rates within sampling error."""
    if all(within):
        return "amplified by the paper's factor, ours agree with the paper within sampling error"
    return (
        "the size of the amplification alone does not account for the difference; our models are "
        f"{noise_sensitivity} sensitive to noise than the paper's (Table 2's noise rows above)"
    )


def amplification_phrase(amplified: Sequence[float], plain: Sequence[float]) -> str:
    """Whether amplifying raised every disjoint rate."""
    if all(a >= p for a, p in zip(amplified, plain, strict=True)):
        return (
            "the rates grow with the size of the samples, which is why the exact numbers depend on how "
            "each study sizes its samples"
        )
    return "amplifying does not raise every rate here"


def disjoint_verdict(same: float, other: float, noise_max: float) -> str:
    """Which of the two other disjoint models the FC100-100-10 samples fool more than noise does."""
    lead = "samples made for FC100-100-10 cause"
    if same > noise_max and other > noise_max:
        return f"{lead} more error than noise on both other models"
    if same > noise_max:
        return (
            f"{lead} more error than noise on the other architecture of the same half, but not on the "
            "same architecture trained on the other half"
        )
    if other > noise_max:
        return (
            f"{lead} more error than noise on the same architecture trained on the other half, but not "
            "on the other architecture"
        )
    return f"{lead} no more error than noise at their original size"


# --------------------------------------------------------------------------- numbers for the prose
def noise_gaps(result: Result) -> dict[tuple[str, str], float]:
    """Mean |ours − paper| of the noise rows the paper has, on the whole of each split and mode."""
    gaps = {}
    for sp in NOISE_SPLITS:
        for mode in NOISE_MODES:
            m = result.matrix(f"noise_{sp}_{mode}")
            rows = [r for r in m.rows if r in papers.SZEGEDY_TABLE2]
            ours = np.array([m.error[m.rows.index(r)] for r in rows])
            gaps[(sp, mode)] = mean_abs(ours - paper_table2(rows, m.cols))
    return gaps


def _interval(rate: float, n: int) -> tuple[float, float]:
    return rate_interval(round(rate * n), n)


def glue_values(result: Result) -> dict[str, Any]:
    """The values the chapter's prose quotes, by glue key (``profile`` and ``threads`` are
    recorded by :func:`advsamples.notebook.start`)."""
    s = result.settings
    sigmas = s["noise_sigmas"]
    g: dict[str, Any] = {"n_samples": s["n_samples"], "split": s["split"]}
    t2 = result.matrix("table2")
    paper2 = paper_table2(t2.rows, t2.cols)
    diff2 = t2.error - paper2
    for key in s["lbfgs_models"]:  # in the parameters' order (a saved Result's dicts are sorted)
        g[f"lbfgs_dist_{M.slug(key)}"] = result.lbfgs_distortion[key]
    g["t2_white_min"] = float(t2.diagonal().min())
    g["t2_success_phrase"] = success_phrase(g["t2_white_min"])
    g["t2_black_mean"] = float(t2.off_diagonal().mean())
    g["t2_black_paper_mean"] = float(
        np.nanmean(TransferMatrix(t2.rows, t2.cols, paper2, None, 0).off_diagonal())
    )
    g["t2_black_target_mean"] = float(t2.off_diagonal(t2.target_rate).mean())
    g["t2_mean_abs_diff"] = mean_abs(diff2)
    g["t2_max_abs_diff"] = float(np.nanmax(np.abs(diff2)))
    for j, sigma in enumerate(sigmas, 1):
        key = noise_key(sigma)
        i = t2.rows.index(key)
        g[f"sigma{j}"] = sigma
        g[f"t2_noise{j}_mean"] = float(t2.error[i].mean())
        g[f"t2_noise{j}_rms"] = result.noise_rms[key]
        g[f"t2_noise{j}_paper_mean"] = (
            float(np.nanmean(paper2[i])) if key in papers.SZEGEDY_TABLE2 else math.nan
        )
    g["paper_diag"] = min(papers.SZEGEDY_TABLE2[k][i] for i, k in enumerate(papers.SZEGEDY_TABLE2_COLUMNS))
    for k in ("fc100_100_10", "fc200_200_10"):
        g[f"paper_noise1_{k}"] = papers.SZEGEDY_TABLE2["noise(0.1)"][papers.SZEGEDY_TABLE2_COLUMNS.index(k)]
        g[f"paper_train_err_{k}"] = papers.SZEGEDY_TABLE1[k]["train_error"]
    g["t2_clean_mean"] = float(t2.error[t2.rows.index("clean")].mean())
    # Compare the transfers with the smallest noise row at least as large (rms) as the samples.
    g["t2_lbfgs_rms_mean"] = float(np.mean([result.lbfgs_distortion[k] for k in s["lbfgs_models"]]))
    larger = [j for j in range(1, len(sigmas) + 1) if g[f"t2_noise{j}_rms"] >= g["t2_lbfgs_rms_mean"]]
    if larger:
        j = min(larger, key=lambda j: g[f"t2_noise{j}_rms"])
        g["t2_ref_noise_rms"] = g[f"t2_noise{j}_rms"]
        g["t2_ref_noise_err"] = g[f"t2_noise{j}_mean"]
        g["t2_ref_noise_paper_err"] = g[f"t2_noise{j}_paper_mean"]
        g["t2_verdict"] = noise_verdict(g["t2_black_mean"], g["t2_ref_noise_err"])
    else:
        g["t2_ref_noise_rms"] = g["t2_ref_noise_err"] = g["t2_ref_noise_paper_err"] = math.nan
        g["t2_verdict"] = "no noise row here is as large as the crafted samples, so none is compared"
    g.update(_noise_values(result))
    g.update(_matched_values(result))
    g.update(_fgsm_jsma_values(result))
    g.update(_disjoint_values(result, g["noise_sensitivity"]))
    return g


def _noise_values(result: Result) -> dict[str, Any]:
    s = result.settings
    sigmas = s["noise_sigmas"]
    g: dict[str, Any] = {"noise_clip": "clipped to the pixel range" if s["noise_clip"] else "not clipped"}
    if noise_key(sigmas[0]) in papers.SZEGEDY_TABLE2:
        pgap = paper_noise_vs_errors(sigmas[0])
        g["paper_gap_train"], g["paper_gap_test"] = pgap["train"], pgap["test"]
        g["paper_split"] = "training" if pgap["train"] < pgap["test"] else "test"
    else:
        g["paper_gap_train"] = g["paper_gap_test"] = math.nan
        g["paper_split"] = "(no paper row at this σ)"
    last = noise_key(sigmas[-1])
    for sp in NOISE_SPLITS:
        for mode in NOISE_MODES:
            m = result.matrix(f"noise_{sp}_{mode}")
            if "fc100_100_10" in m.cols:
                g[f"full_{sp}_{mode}_noise_last_fc100"] = m.cell(last, "fc100_100_10")
    gaps = noise_gaps(result)
    for (sp, mode), gap in gaps.items():
        g[f"gap_{sp}_{mode}"] = gap
    g["clip_vs_split"] = clip_vs_split(gaps)
    best = min(gaps, key=lambda k: gaps[k])
    g["best_combo"] = combo_phrase(*best)
    g["best_gap"] = gaps[best]
    g["sigma_last"] = sigmas[-1]
    own = f"full_{s['split']}_unclipped_noise_last_fc100"
    if "fc100_100_10" in s["lbfgs_models"] and last in papers.SZEGEDY_TABLE2:
        paper_last = papers.SZEGEDY_TABLE2[last][papers.SZEGEDY_TABLE2_COLUMNS.index("fc100_100_10")]
        g["paper_noise_last_fc100"] = paper_last
        g["noise_sensitivity"] = "more" if g[own] > paper_last else "no more"
    else:
        g["paper_noise_last_fc100"] = math.nan
        g["noise_sensitivity"] = "differently"
    return g


def _matched_values(result: Result) -> dict[str, Any]:
    if "matched" not in result.matrices:
        return {
            "matched_mean_abs_diff": math.nan,
            "unmatched_mean_abs_diff": math.nan,
            "matched_black_mean": math.nan,
            "matched_white_min": math.nan,
            "matched_verdict": "not comparable with",
        }
    m, t2 = result.matrix("matched"), result.matrix("table2")
    paper_m = paper_table2(m.rows, m.cols)
    own = np.array([t2.error[t2.rows.index(r)] for r in m.rows])
    g: dict[str, Any] = {
        "matched_mean_abs_diff": mean_abs(m.error - paper_m),
        "unmatched_mean_abs_diff": mean_abs(own - paper_m),
        "matched_black_mean": float(m.off_diagonal().mean()),
        "matched_white_min": float(m.diagonal().min()),
    }
    g["matched_verdict"] = (
        "closer to" if g["matched_mean_abs_diff"] < g["unmatched_mean_abs_diff"] else "no closer to"
    )
    return g


def _fgsm_jsma_values(result: Result) -> dict[str, Any]:
    s = result.settings
    g: dict[str, Any] = {"eps": s["eps"], "jsma_gamma": s["jsma_gamma"], "jsma_theta": s["jsma_theta"]}
    fgsm_m, jsma_m = result.matrix("fgsm"), result.matrix("jsma")
    for name, m in (("fgsm", fgsm_m), ("jsma", jsma_m)):
        g[f"{name}_white_mean"] = float(m.diagonal().mean())
        g[f"{name}_black_mean"] = float(m.off_diagonal().mean())
        g[f"{name}_black_min"] = float(m.off_diagonal().min())
        g[f"{name}_black_max"] = float(m.off_diagonal().max())
        g[f"{name}_clean_mean"] = float(m.error[m.rows.index("clean")].mean())
    g["jsma_black_target_mean"] = float(jsma_m.off_diagonal(jsma_m.target_rate).mean())
    g["jsma_verdict"] = jsma_verdict(g["jsma_black_target_mean"], g["jsma_black_mean"])
    g["fgsm_vs_jsma"] = compare(g["fgsm_black_mean"], g["jsma_black_mean"])
    conv = [k for k in s["models"] if k.startswith("lenet")]
    dense = [k for k in s["models"] if not k.startswith("lenet")]
    if conv and dense:
        g["fgsm_dense_to_conv"] = float(np.mean([fgsm_m.cell(a, b) for a in dense for b in conv]))
        g["fgsm_conv_to_dense"] = float(np.mean([fgsm_m.cell(a, b) for a in conv for b in dense]))
    else:
        g["fgsm_dense_to_conv"] = g["fgsm_conv_to_dense"] = math.nan
    return g


def disjoint_rows(result: Result) -> list[dict[str, Any]]:
    """The rows of the disjoint-halves table: our rate, its 95% interval, the paper's, and for the
    amplified rows the root-mean-square reading."""
    mats = {"plain": result.matrix("disjoint_plain"), "amplified": result.matrix("disjoint_amplified")}
    rms = result.matrix("disjoint_rms")
    labels = list(DISJOINT_MODELS)
    src = labels[0]
    out = []
    for label, which, j, key in DISJOINT_ROWS:
        m = mats[which]
        v = m.cell(src, labels[j])
        lo, hi = _interval(v, m.n)
        out.append(
            {
                "label": label,
                "key": key,
                "ours": v,
                "low": lo,
                "high": hi,
                "paper": papers.SZEGEDY_DISJOINT[key],
                "rms": rms.cell(src, labels[j]) if which == "amplified" else None,
            }
        )
    return out


def _disjoint_values(result: Result, noise_sensitivity: str) -> dict[str, Any]:
    s = result.settings
    D = papers.SZEGEDY_DISJOINT
    labels = list(DISJOINT_MODELS)
    src, same_half, other_half = labels
    g: dict[str, Any] = {
        "n_train": result.n_train,
        "n_pixels": result.n_pixels,
        "dj_paper_amp_std": D["amplified_stddev"],
        "disjoint_sigma": s["disjoint_sigma"],
        "amplified_std": s["amplified_std"],
    }
    for row in disjoint_rows(result):
        g[f"dj_{row['key']}"] = row["ours"]
        g[f"dj_paper_{row['key']}"] = row["paper"]
        g[f"dj_vs_{row['key']}"] = relation(row["paper"], row["low"], row["high"])
    dm, da, dr = (result.matrix(f"disjoint_{w}") for w in ("plain", "amplified", "rms"))
    noise_row = dm.error[dm.rows.index(noise_key(s["disjoint_sigma"]))]
    g["dj_noise_min"] = float(noise_row.min())
    g["dj_noise_max"] = float(noise_row.max())
    g["dj_paper_noise_low"] = D["noise_0.1_error_low"]
    g["dj_paper_noise_high"] = D["noise_0.1_error_high"]
    g["dj_clean_max"] = float(dm.error[dm.rows.index("clean")].max())
    plain_std = np.array([result.disjoint_plain_std[k] for k in labels])
    g["dj_plain_std"] = float(plain_std.mean())
    g["dj_amp_factor"] = float(s["amplified_std"] / plain_std.mean())
    g["dj_amp_std_after_clip"] = float(np.array([result.disjoint_amp_std[k] for k in labels]).mean())
    g["dj_amp_white_min"] = float(da.diagonal().min())
    paper_fc100 = papers.SZEGEDY_TABLE1["fc100_100_10"]["distortion"]
    g["dj_paper_fc100_dist"] = paper_fc100
    g["dj_paper_factor"] = s["amplified_std"] / paper_fc100
    df = result.matrix("disjoint_factor")
    g["dj_factor_to_same"] = df.cell(src, same_half)
    g["dj_factor_to_other"] = df.cell(src, other_half)
    for name, col, key in (
        ("same", same_half, "amplified_to_same_half_other_arch"),
        ("other", other_half, "amplified_to_other_half_same_arch"),
    ):
        g[f"dj_factor_vs_{name}"] = relation(D[key], *_interval(df.cell(src, col), df.n))
    g["dj_factor_verdict"] = factor_verdict(
        [g[f"dj_factor_vs_{n}"].startswith("within") for n in ("same", "other")], noise_sensitivity
    )
    g["dj_amp_phrase"] = amplification_phrase(
        [da.cell(src, same_half), da.cell(src, other_half)],
        [dm.cell(src, same_half), dm.cell(src, other_half)],
    )
    dmatch = result.matrix("disjoint_matched")
    g["dj_matched_to_same"] = dmatch.cell(src, same_half)
    g["dj_matched_to_other"] = dmatch.cell(src, other_half)
    g["dj_rms_to_same"] = dr.cell(src, same_half)
    g["dj_rms_to_other"] = dr.cell(src, other_half)
    g["dj_verdict"] = disjoint_verdict(
        g["dj_to_same_half_other_arch"], g["dj_to_other_half_same_arch"], g["dj_noise_max"]
    )
    for key in labels:
        g[f"dj_err_{M.slug(key)}"] = result.disjoint_test_error[key]
    return g


# --------------------------------------------------------------------------- figures and tables
def table2_figure(result: Result) -> Figure:
    """Our Table 2, the paper's, and their difference."""
    t2 = result.matrix("table2")
    paper2 = paper_table2(t2.rows, t2.cols)
    return matrix_figure(
        [
            ("this study: error", t2.error),
            ("Szegedy et al., Table 2", paper2),
            ("ours − paper", t2.error - paper2),
        ],
        t2.rows,
        t2.cols,
        diverging=[False, False, True],
    )


def matched_figure(result: Result) -> Figure | None:
    """Table 2 at the paper's distortions, and its difference from the paper's (``None`` when no
    Table 2 model is one of the paper's)."""
    if "matched" not in result.matrices:
        return None
    m = result.matrix("matched")
    paper_m = paper_table2(m.rows, m.cols)
    return matrix_figure(
        [("ours, paper's distortion", m.error), ("ours, matched − paper", m.error - paper_m)],
        m.rows,
        m.cols,
        diverging=[False, True],
    )


def fgsm_jsma_figure(result: Result) -> Figure:
    """FGSM and JSMA error across the study's models, and JSMA's rate of reaching its target."""
    s = result.settings
    fgsm_m, jsma_m = result.matrix("fgsm"), result.matrix("jsma")
    assert jsma_m.target_rate is not None  # a targeted attack
    return matrix_figure(
        [
            (f"FGSM ε = {s['eps']:g}: error", fgsm_m.error),
            (f"JSMA γ = {s['jsma_gamma']:g}: error", jsma_m.error),
            ("JSMA: classified as the target", jsma_m.target_rate),
        ],
        fgsm_m.rows,
        fgsm_m.cols,
    )


def disjoint_figure(result: Result) -> Figure:
    """The disjoint-halves matrices: the L-BFGS and noise rows as found, and amplified."""
    dm, da = result.matrix("disjoint_plain"), result.matrix("disjoint_amplified")
    return matrix_figure(
        [
            ("L-BFGS samples: error", dm.error[: len(DISJOINT_MODELS) + 1]),
            (f"amplified to std {result.settings['amplified_std']:g}: error", da.error),
        ],
        da.rows,
        da.cols,
    )


def _dash(fmt: str) -> Any:
    return lambda v: "—" if v is None or pd.isna(v) else fmt.format(v)


def noise_table(result: Result) -> Styler:
    """Clean and noise rows on the whole of each split, clipped and not, beside the paper's rows."""
    out: list[dict[str, Any]] = []
    for sp in NOISE_SPLITS:
        for mode in NOISE_MODES:
            m = result.matrix(f"noise_{sp}_{mode}")
            for r in m.rows:
                paper = paper_table2([r], m.cols)[0] if r in papers.SZEGEDY_TABLE2 else None
                out.append(
                    {"split": sp, "noise": "—" if r == "clean" else mode, "row": r}
                    | {c: m.cell(r, c) for c in m.cols}
                    | {
                        "mean |ours − paper|": None
                        if paper is None
                        else mean_abs(m.error[m.rows.index(r)] - paper)
                    }
                )
    return pd.DataFrame(out).set_index(["split", "noise", "row"]).style.format(_dash("{:.2%}"))


def disjoint_table(result: Result) -> Styler:
    """Szegedy's Table 4 rows beside ours, with our 95% intervals."""
    rows: list[dict[str, Any]] = [
        {
            "FC100-100-10 (P1) samples": r["label"],
            "ours": r["ours"],
            "95% interval": f"{r['low']:.0%}–{r['high']:.0%}",
            "paper": r["paper"],
            "ours, rms reading": r["rms"],
        }
        for r in disjoint_rows(result)
    ]
    return (
        pd.DataFrame(rows)
        .set_index("FC100-100-10 (P1) samples")
        .style.format({"ours": "{:.1%}", "paper": "{:.1%}", "ours, rms reading": _dash("{:.1%}")})
    )


def headline(result: Result) -> Headline:
    """The chapter's opening box: how often L-BFGS samples crafted on one model fool another
    (Szegedy et al.'s Table 2, off its diagonal) and across disjoint training halves."""
    g = glue_values(result)
    D = papers.SZEGEDY_DISJOINT
    models = result.settings["lbfgs_models"]
    return Headline(
        "Szegedy et al. (2014), Tables 2 to 4",
        (
            (
                "Table 2: error on the other models (mean off the diagonal)",
                f"{g['t2_black_paper_mean']:.1%}",
                f"{g['t2_black_mean']:.1%}",
            ),
            (
                "crafted on FC100-100-10 (P1), error on FC123-456-10 (P1)",
                f"{D['to_same_half_other_arch']:.1%}",
                f"{g['dj_to_same_half_other_arch']:.1%}",
            ),
            (
                "crafted on FC100-100-10 (P1), error on FC100-100-10' (P2)",
                f"{D['to_other_half_same_arch']:.1%}",
                f"{g['dj_to_other_half_same_arch']:.1%}",
            ),
        ),
        "L-BFGS samples of the MNIST test set; how many is not given",
        f"L-BFGS samples of {g['n_samples']:,} {g['split']} images crafted on each of {len(models)} models",
    )


def fidelity(result: Result) -> list[Gap]:
    """The chapter's numbers beside Szegedy et al.'s (Tables 2 and 3), each with the experiment
    that tests a cause of the difference where one can be run:

    - Table 2's mean cross-model error, less our models' excess error over the paper's on the
      Gaussian noise row compared with the samples (our models err more on any perturbation of
      that size; the reading assumes that excess adds);
    - the disjoint halves' plain rows, the source's samples scaled to the paper's FC100-100-10
      distortion (Table 1: ours are smaller);
    - the amplified rows, the source's samples amplified by the paper's factor (amplifying to a
      standard deviation of 0.1 multiplies our smaller samples by more);
    - the noise row of Table 3, none (the note says so).
    """
    g = glue_values(result)
    D = papers.SZEGEDY_DISJOINT
    adjusted = g["t2_black_mean"] - (g["t2_ref_noise_err"] - g["t2_ref_noise_paper_err"])
    scale = f"scaled to the paper's distortion ({g['dj_paper_fc100_dist']:.3f})"
    factor = (
        f"amplified by the paper's factor ({g['dj_paper_factor']:.2f}, not ours {g['dj_amp_factor']:.2f})"
    )
    return known(
        Gap.maybe(
            "Table 2: mean error on the other models",
            "rate",
            g["t2_black_paper_mean"],
            g["t2_black_mean"],
            adjusted,
            f"less our excess error on Gaussian noise of rms {g['t2_ref_noise_rms']:.2f}",
            "our models err more than the paper's on noise too; the reading assumes that excess adds",
        ),
        Gap.maybe(
            "Table 3: to FC123-456-10 (same half, other architecture)",
            "rate",
            D["to_same_half_other_arch"],
            g["dj_to_same_half_other_arch"],
            g["dj_matched_to_same"],
            scale,
        ),
        Gap.maybe(
            "Table 3: to FC100-100-10' (other half, same architecture)",
            "rate",
            D["to_other_half_same_arch"],
            g["dj_to_other_half_same_arch"],
            g["dj_matched_to_other"],
            scale,
        ),
        Gap.maybe(
            "Table 3: amplified, to FC123-456-10",
            "rate",
            D["amplified_to_same_half_other_arch"],
            g["dj_amplified_to_same_half_other_arch"],
            g["dj_factor_to_same"],
            factor,
        ),
        Gap.maybe(
            "Table 3: amplified, to FC100-100-10'",
            "rate",
            D["amplified_to_other_half_same_arch"],
            g["dj_amplified_to_other_half_same_arch"],
            g["dj_factor_to_other"],
            factor,
        ),
        Gap.maybe(
            f"Table 3: Gaussian noise σ = {g['disjoint_sigma']:g}, largest error",
            "rate",
            D["noise_0.1_error_high"],
            g["dj_noise_max"],
            note="no experiment here isolates why our sigmoid networks are more sensitive to noise",
        ),
    )
