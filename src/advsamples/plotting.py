"""Figures for the book. Every function returns a :class:`matplotlib.figure.Figure`; none shows or saves."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure

__all__ = ["digit_grid", "heatmap", "paired_bars", "curves", "finish"]


def finish(fig: Figure, *, suptitle: str | None = None, despine: bool = True) -> Figure:
    """The common end of every figure: optional overall title, no top/right spines, tight layout,
    and closed (so a notebook shows it once, where the cell returns it)."""
    if suptitle:
        fig.suptitle(suptitle)
    if despine:
        sns.despine(fig)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _images(x: torch.Tensor | np.ndarray) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return a.reshape(a.shape[0], 28, 28) if a.ndim != 3 else a


def digit_grid(
    images: torch.Tensor | np.ndarray,
    *,
    rows: int,
    cols: int,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    cmap: str = "gray",
    vrange: tuple[float, float] = (0.0, 1.0),
    cell: float = 1.1,
    suptitle: str | None = None,
) -> Figure:
    """``rows × cols`` digits in row-major order (blank where an image is all NaN)."""
    imgs = _images(images)
    if len(imgs) != rows * cols:
        raise ValueError(f"digit_grid needs rows*cols={rows * cols} images, got {len(imgs)}")
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * cell, rows * cell + (0.4 if suptitle else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if not np.isnan(imgs[i]).all():
            ax.imshow(imgs[i], cmap=cmap, vmin=vrange[0], vmax=vrange[1], interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(label, fontsize=9)
    if col_labels is not None:
        for c, label in enumerate(col_labels):
            axes[0, c].set_title(label, fontsize=9)
    return finish(fig, suptitle=suptitle, despine=False)


def heatmap(
    matrix: np.ndarray | torch.Tensor,
    *,
    title: str,
    xlabel: str = "target class",
    ylabel: str = "source class",
    fmt: str = ".0%",
    cmap: str = "rocket_r",
    vmin: float | None = None,
    vmax: float | None = None,
    xticklabels: Sequence[str] | str = "auto",
    yticklabels: Sequence[str] | str = "auto",
    mask_diagonal: bool = False,
    size: tuple[float, float] = (6.0, 5.0),
) -> Figure:
    """An annotated seaborn heatmap (NaN cells are left blank)."""
    m = matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix, dtype=float)
    mask = np.isnan(m)
    if mask_diagonal and m.shape[0] == m.shape[1]:
        mask = mask | np.eye(m.shape[0], dtype=bool)
    fig, ax = plt.subplots(figsize=size)
    sns.heatmap(
        m,
        mask=mask,
        annot=True,
        fmt=fmt,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        ax=ax,
        square=m.shape[0] == m.shape[1],
        xticklabels=xticklabels,
        yticklabels=yticklabels,
        annot_kws={"fontsize": 7},
        cbar_kws={"shrink": 0.8},
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return finish(fig, despine=False)


def paired_bars(
    labels: Sequence[str],
    ours: Sequence[float],
    paper: Sequence[float | None],
    *,
    ylabel: str,
    title: str,
    log: bool = False,
    percent: bool = True,
) -> Figure:
    """Ours beside the paper's, one pair of bars per label (a missing paper value is left out)."""
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 3.6))
    ax.bar(x - 0.2, ours, 0.4, label="this study")
    pv = [np.nan if p is None else p for p in paper]
    ax.bar(x + 0.2, pv, 0.4, label="paper", color="0.6")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    if percent:
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.1%}" if v < 0.1 else f"{v:.0%}"))
    ax.legend(frameon=False)
    return finish(fig)


def curves(
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    percent: bool = True,
    marks: dict[str, tuple[float, float]] | None = None,
) -> Figure:
    """One line per series over a shared x; ``marks`` adds labelled points (e.g. a paper's figure)."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", ms=3, label=name)
    for name, (mx, my) in (marks or {}).items():
        ax.scatter([mx], [my], marker="*", s=120, zorder=5, label=name, color="black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if percent:
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(frameon=False, fontsize=8)
    return finish(fig)
