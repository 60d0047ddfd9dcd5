r"""The JSMA chapter (Papernot et al. 2016): success and distortion, θ = −1, per-pair matrices,
the Fig. 1 grid, saliency maps, and which setting reproduces the paper.

:class:`Params` holds the notebook's parameters (validated on construction); :func:`run` does all
the chapter's work (cached) and returns a :class:`Result`; :func:`glue_values` gives the numbers
and phrases the prose quotes; the ``*_figure`` and ``*_table`` functions draw from the result.

The JSMA runs themselves (:func:`craft`, its cache, :func:`truncate`, :func:`summarize`,
:func:`pair_matrix`, ...) live in :mod:`advsamples.experiments.jsma_runs`, which the hardness
chapter shares; they are re-exported here. Numbers that explain the differences from the paper:
:func:`logit_margin`, :func:`implied_failure_distortion`, :func:`first_step`,
:func:`run_setting`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler
from torch import nn

from advsamples import models as M
from advsamples import papers, plotting
from advsamples.attacks.jsma import best_pairs, forward_derivative, jsma_budget, saliency_map
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, param
from advsamples.experiments.common import (
    CLASSES,
    Gap,
    correct_per_class,
    explained_phrase,
    extreme_pairs,
    known,
    other_targets,
    sample_indices,
)
from advsamples.experiments.jsma_runs import (
    Crafted,
    Summary,
    budget_curves,
    cache_dir,
    cache_key,
    concat,
    craft,
    homogeneity_p,
    load_model,
    pair_matrix,
    summarize,
    truncate,
)
from advsamples.params import (
    check_choice,
    check_choices,
    check_count,
    check_int,
    check_number,
    check_numbers,
)
from advsamples.plotting import finish

__all__ = [
    "wasted_share",
    "MainRuns",
    "main_runs",
    "CLASSES",
    "MAX_EPOCHS",
    "MAX_EPOCHS_LIST",
    "MAX_SEED",
    "SET_NAMES",
    "SET_SIZES",
    "Crafted",
    "Params",
    "Result",
    "Setting",
    "Summary",
    "budget_curves",
    "cache_dir",
    "cache_key",
    "compared",
    "pair_noise_phrase",
    "training_length_phrase",
    "comparison_figure",
    "comparison_table",
    "concat",
    "craft",
    "decrease_table",
    "distortion_heatmap_figure",
    "fig1_figure",
    "fig11_table",
    "first_step",
    "glue_values",
    "grid_figure",
    "homogeneity_p",
    "implied_failure_distortion",
    "load_model",
    "logit_margin",
    "other_targets",
    "pair_grid",
    "pair_matrix",
    "plot_saliency",
    "run",
    "run_setting",
    "saliency_figure",
    "saliency_shares_text",
    "sets_phrases",
    "settings_figure",
    "success_heatmap_figure",
    "summarize",
    "truncate",
]

#: The paper's three sample sets and their sizes (:func:`advsamples.data.paper_sets`).
SET_NAMES = ["train", "validation", "test"]
SET_SIZES = {"train": 50000, "validation": 10000, "test": 10000}
#: Longest training compared (each length is one more model to train; the paper's is 200).
MAX_EPOCHS = 1000
#: Most training lengths compared (each is one more model to train and two attack runs).
MAX_EPOCHS_LIST = 10
#: Largest seed accepted (a 32-bit seed; torch accepts more, but no draw needs it).
MAX_SEED = 2**32 - 1
#: The ten-class models the chapter can attack.
TEN_CLASS = [m for m in M.MODEL_NAMES if m != "logreg_3v7"]
_VERSION = 3  # 2: the search-domain readings; 3: θ = −1 under both readings


# --------------------------------------------------------------------------- explanations
# --------------------------------------------------------------------------- explanations
@torch.no_grad()
def logit_margin(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Median over the samples of ``logit_y - max_{j != y} logit_j`` (negative when misclassified):
    how far, in logits, the model's decision is from the nearest other class."""
    z = torch.cat([model(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    true = z.gather(1, y.long()[:, None])[:, 0]
    other = z.scatter(1, y.long()[:, None], -math.inf).amax(dim=1)
    return float((true - other).median())


def implied_failure_distortion(success: float, distortion_all: float, distortion_success: float) -> float:
    """Mean distortion of the failed attacks implied by a success rate and the mean distortions
    over all and over successful attacks: ``(all - success * succ) / (1 - success)``."""
    if not 0.0 <= success < 1.0:
        raise ValueError(f"success must lie in [0, 1), got {success!r}")
    return (distortion_all - success * distortion_success) / (1.0 - success)


def first_step(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    use_logits: bool = True,
    batch_size: int = 900,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the attack's first iteration (θ = +1, clip [0, 1]) does to the logit gap it must close.

    For each row: the gap ``g = z_t - max_{j != t} z_j`` before the attack (negative while the model
    does not predict ``t``) and its change after the first pixel pair the attack picks (the same
    forward derivative, :func:`advsamples.attacks.jsma.forward_derivative`, and the same pair
    search, :func:`advsamples.attacks.jsma.best_pairs`) is set to 1. Rows without an admissible
    pair get a change of 0. Returns ``(gap, gain)``, float64 ``(N,)``.

    ``-gap / gain`` estimates how many pairs the attack needs at its first step's rate; it tells
    why a derivative or a model needs more or fewer iterations.
    """
    gaps, gains = [], []
    for a0 in range(0, len(x), batch_size):
        xb, tb = x[a0 : a0 + batch_size], target[a0 : a0 + batch_size].long()
        z, a, b = forward_derivative(model, xb, tb, use_logits=use_logits)
        r = len(xb)
        flat = xb.detach().reshape(r, -1)
        p, q, found = best_pairs(a, b, flat < 1.0, 1)
        x1 = flat.clone()
        rows = torch.arange(r)[found]
        x1[rows, p[found]] = 1.0
        x1[rows, q[found]] = 1.0
        with torch.no_grad():
            z1 = model(x1.reshape(xb.shape))
        gaps.append(_gap(z, tb))
        gains.append(torch.where(found, _gap(z1, tb) - _gap(z, tb), 0.0))
    return torch.cat(gaps).double(), torch.cat(gains).double()


def _gap(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    own = z.gather(1, t[:, None])[:, 0]
    return own - z.scatter(1, t[:, None], -math.inf).amax(dim=1)


@dataclass(frozen=True)
class Setting:
    """One way of running the attack, and what it gives on a sample of digits.

    Attributes:
        model: model name.
        epochs: its training length.
        test_accuracy: its accuracy on the MNIST test set.
        use_logits: forward derivative of the logits (True) or of the probabilities.
        summary: the attack's :class:`Summary` at the budget.
        margin: :func:`logit_margin` of the model on the attacked digits.
        first_gain: median over the attacks of the first pair's gain on the logit gap
            (:func:`first_step`).
        pairs_needed: median over the attacks of ``-gap / gain``, the pairs needed at the first
            step's rate (infinite where the first pair gains nothing).
    """

    model: str
    epochs: int
    test_accuracy: float
    use_logits: bool
    summary: Summary
    margin: float
    first_gain: float
    pairs_needed: float

    @property
    def label(self) -> str:
        """``"lenet_paper, 3 epochs, logits"``."""
        unit = "epoch" if self.epochs == 1 else "epochs"
        return f"{self.model}, {self.epochs} {unit}, {'logits' if self.use_logits else 'probabilities'}"

    def gap(self, paper_success: float, paper_distortion: float) -> float:
        """Distance to the paper's (success, distortion of successful samples), each gap relative
        to the paper's value: ``|Δs| / s + |Δd| / d``."""
        return (
            abs(self.summary.success - paper_success) / paper_success
            + abs(self.summary.distortion_success - paper_distortion) / paper_distortion
        )


def run_setting(
    name: str,
    schedule: str,
    epochs: int | None,
    use_logits: bool,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor,
    gamma: float,
    *,
    progress: bool = False,
) -> Setting:
    """Attack (cached) the digits ``x`` toward their other classes at ``gamma`` with model ``name``
    trained for ``epochs`` (default: the schedule's) and the given derivative."""
    model, info = load_model(name, schedule, epochs)
    c = craft(
        model,
        x,
        y,
        indices,
        gamma=gamma,
        use_logits=use_logits,
        model_key=info.key,
        progress=progress,
        desc=f"{name} ({info.config.epochs} ep., {'logits' if use_logits else 'probs'})",
    )
    rows, targets = other_targets(y)
    gap, gain = first_step(model, x[rows], targets, use_logits=use_logits)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = torch.where(gain > 0, -gap / gain, math.inf)
    open_ = gap < 0  # attacks that start away from their target
    return Setting(
        model=name,
        epochs=info.config.epochs,
        test_accuracy=info.test_accuracy,
        use_logits=use_logits,
        summary=summarize(c),
        margin=logit_margin(model, x, y),
        first_gain=float(gain[open_].median()),
        pairs_needed=float(need[open_].median()),
    )


def pair_grid(c: Crafted, classes: int = CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """From a run with ``x_adv`` kept on exactly one sample per class: ``adv`` shaped
    ``(classes, classes, ...)`` (row = source, column = target; the diagonal is zeros) and the bool
    ``(classes, classes)`` success matrix, for :func:`fig1_figure`."""
    if c.x_adv is None:
        raise ValueError("the run must keep its adversarial samples (craft(..., keep_adv=True))")
    if sorted(c.source.unique().tolist()) != list(range(classes)) or len(c) != classes * (classes - 1):
        raise ValueError("the run must hold exactly one sample of each class")
    adv = torch.zeros((classes, classes, *c.x_adv.shape[1:]), dtype=c.x_adv.dtype)
    ok = torch.zeros((classes, classes), dtype=torch.bool)
    adv[c.source, c.target] = c.x_adv
    ok[c.source, c.target] = c.success
    return adv, ok


# --------------------------------------------------------------------------- figures
def fig1_figure(clean: torch.Tensor, adv: torch.Tensor, success: torch.Tensor, title: str = "") -> Figure:
    """The paper's Fig. 1: a ``C x C`` grid, row ``s`` the adversarial versions of one digit of
    class ``s`` toward every target column ``t``, the clean digit on the diagonal.

    Args:
        clean: ``(C, 1, 28, 28)`` one digit per class, in class order.
        adv: ``(C, C, 1, 28, 28)`` ``adv[s, t]`` the digit of row ``s`` pushed toward ``t``
            (the diagonal is ignored).
        success: bool ``(C, C)`` whether ``adv[s, t]`` reached ``t`` (failures are marked ✗).
    """
    c = clean.shape[0]
    if adv.shape[:2] != (c, c) or success.shape != (c, c):
        raise ValueError(f"adv must be ({c}, {c}, ...) and success ({c}, {c})")
    grid = adv.clone().reshape(c, c, 28, 28)
    for s in range(c):
        grid[s, s] = clean[s].reshape(28, 28)
    fig, axes = plt.subplots(c, c, figsize=(0.75 * c, 0.75 * c + 0.5), squeeze=False)
    for s in range(c):
        for t in range(c):
            ax = axes[s, t]
            ax.imshow(grid[s, t].cpu().numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(s == t)
                spine.set_color("tab:blue")
            if s != t and not bool(success[s, t]):
                ax.text(26, 4, "✗", color="red", fontsize=9, ha="right", va="center")
            if s == 0:
                ax.set_title(str(t), fontsize=9)
            if t == 0:
                ax.set_ylabel(str(s), fontsize=9, rotation=0, labelpad=8, va="center")
    fig.supxlabel("target class", fontsize=9, y=0.995, va="top")
    fig.supylabel("source class", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=1.03)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    plt.close(fig)
    return fig


def settings_figure(
    labels: Sequence[str],
    success: Sequence[float],
    distortion: Sequence[float],
    paper_success: float,
    paper_distortion: float,
    title: str = "",
) -> Figure:
    """Success rate (left) and mean distortion of the successful samples (right) of several attack
    settings, each panel with the paper's value as a dashed line."""
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 0.45 * len(labels) + 1.6), sharey=True)
    ypos = np.arange(len(labels))
    pal = sns.color_palette("deep", 2)
    for ax, vals, ref, name, col in (
        (axes[0], success, paper_success, "success rate", pal[0]),
        (axes[1], distortion, paper_distortion, "distortion of successful samples", pal[1]),
    ):
        ax.barh(ypos, vals, color=col)
        ax.axvline(ref, color="black", ls="--", lw=1)
        for yv, v in zip(ypos, vals, strict=True):
            ax.text(v, yv, f" {v:.1%}", va="center", fontsize=8)
        ax.set_xlabel(f"{name}\n(dashed line: the paper's {ref:.2%})")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.set_xlim(0, max(max(vals), ref) * 1.2)
    axes[0].set_yticks(ypos, labels, fontsize=8)
    axes[0].invert_yaxis()
    return finish(fig, suptitle=title)


def plot_saliency(
    x: np.ndarray | torch.Tensor,
    source: int,
    targets: Sequence[int],
    maps: np.ndarray | torch.Tensor,
    *,
    use_logits: bool = True,
) -> Figure:
    """One digit ``x`` (``(1, 28, 28)``) and its first-iteration saliency maps S(X, t) (Eq. 8)
    ``maps`` (one per target of ``targets``), each titled with the share of features where it is
    positive."""
    k = len(targets)
    maps = np.asarray(maps)
    if maps.shape[0] != k:
        raise ValueError(f"maps must hold one map per target ({k}), got {maps.shape[0]}")
    fig, axes = plt.subplots(1, k + 1, figsize=(2.0 * (k + 1), 2.4))
    axes[0].imshow(np.asarray(x).reshape(28, 28), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"digit (class {source})", fontsize=9)
    for ax, t, m in zip(axes[1:], targets, maps, strict=True):
        img = m.reshape(28, 28)
        vmax = float(img.max()) or 1.0
        ax.imshow(img, cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"S(X, {t}): {float((img > 0).mean()):.0%} > 0", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"first-iteration saliency maps ({'logits' if use_logits else 'probabilities'})", fontsize=10
    )
    return finish(fig, despine=False)


# --------------------------------------------------------------------------- the chapter
@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the JSMA chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "jsma"

    schedule: str = param("quick", 'training schedule of the models: "quick" (CI-sized) or "paper"')
    model: str = param("lenet_paper", "the attacked model (the paper's LeNet)")
    compare_model: str = param("lenet_relu", "a second model for the comparison of settings")
    sets: list[str] = param(
        ["train", "validation", "test"], "the paper's sample sets attacked (the test set is required)"
    )
    n_samples: int = param(30, "digits drawn from each set, each attacked toward its 9 other classes")
    gamma: float = param(0.145, "the maximum distortion Υ (the paper's 14.5%)")
    run_gamma: float = param(
        0.383, "budget of the one run per set (the hardness chapter's largest Υ); gamma is read from it"
    )
    n_check: int = param(
        10, "test digits also attacked directly at gamma, to check the reading of the larger run"
    )
    n_compare: int = param(30, "test digits attacked in the comparison of settings")
    epochs_list: list[int] = param([1, 3], "training lengths of `model` compared (epochs)")
    saliency_source: int = param(1, "class of the digit whose saliency maps are shown")
    saliency_targets: list[int] = param([0, 4, 7], "targets of those saliency maps")
    seed: int = param(0, "seed of every random draw of the chapter")

    def validate(self) -> None:
        super().validate()
        check_choice("model", self.model, TEN_CLASS)
        check_choice("compare_model", self.compare_model, [m for m in TEN_CLASS if m != self.model])
        check_choices("sets", self.sets, SET_NAMES)
        if "test" not in self.sets:
            raise ValueError(
                f"parameter sets={self.sets!r} must include 'test' (θ = -1 and the comparisons use it)"
            )
        smallest = min(SET_SIZES[s] for s in self.sets)
        check_count("n_samples", self.n_samples, smallest, "digits in the smallest chosen set")
        check_number("gamma", self.gamma, lo=0, lo_open=True, hi=1)
        check_number("run_gamma", self.run_gamma, lo=self.gamma, hi=1)
        check_count("n_check", self.n_check, self.n_samples, "digits attacked per set (n_samples)")
        check_count("n_compare", self.n_compare, SET_SIZES["test"], "test digits")
        check_numbers(
            "epochs_list",
            self.epochs_list,
            lo=1,
            hi=MAX_EPOCHS,
            integer=True,
            increasing=True,
            max_len=MAX_EPOCHS_LIST,
        )
        check_choice("saliency_source", self.saliency_source, list(range(CLASSES)))
        check_choices(
            "saliency_targets",
            self.saliency_targets,
            [c for c in range(CLASSES) if c != self.saliency_source],
        )
        check_int("seed", self.seed, 0, MAX_SEED, "a 32-bit seed")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}

    def compared_epochs(self) -> list[int]:
        """The training lengths of ``model`` run besides its schedule's (in ``epochs_list`` order)."""
        own = M.SCHEDULES[self.schedule][self.model]
        return [e for e in self.epochs_list if e != own]


@dataclass(frozen=True)
class Result(ChapterResult):
    """What the JSMA chapter measured.

    Attributes:
        params: the chapter's parameters (:meth:`Params.as_dict`).
        values: every measured number and label the prose quotes (JSON values; NaN is stored as
            ``"nan"`` and read back by :func:`glue_values`).
        summaries: set name -> :class:`Summary` (as a dict) at ``gamma``, in ``sets`` order.
        decrease: ``"logits"`` / ``"probs"`` -> :class:`Summary` of θ = −1; ``"logits_all"``: the
            logits' θ = −1 with every feature in the search domain at the start.
        settings: one dict per setting of the comparison (:class:`Setting` fields, ``summary``
            as a dict), in run order.
        success_matrix, distortion_matrix: per (source, target) pair, the pooled sets.
        grid_clean, grid_adv, grid_ok: the Fig. 1 grid (:func:`pair_grid`).
        saliency_digit, saliency_maps: the digit and its maps toward ``saliency_targets``.
    """

    params: dict[str, Any]
    values: dict[str, Any]
    summaries: dict[str, dict[str, Any]]
    decrease: dict[str, dict[str, Any]]
    settings: list[dict[str, Any]]
    success_matrix: np.ndarray
    distortion_matrix: np.ndarray
    grid_clean: np.ndarray
    grid_adv: np.ndarray
    grid_ok: np.ndarray
    saliency_digit: np.ndarray
    saliency_maps: np.ndarray


def _model_keys(params: Params) -> list[str]:
    keys = [M.model_info(params.model, params.schedule).key]
    keys.append(M.model_info(params.compare_model, params.schedule).key)
    keys += [M.model_info(params.model, params.schedule, epochs=e).key for e in params.compared_epochs()]
    return keys


def run(params: Params, *, progress: bool = True) -> Result:
    """Every attack and statistic of the chapter (cached by the parameters and the models' keys)."""
    return cached(
        params, Result, lambda: _compute(params, progress), version=_VERSION, models=_model_keys(params)
    )


def _summary_dict(s: Summary) -> dict[str, Any]:
    return asdict(s)


def _setting_dict(s: Setting) -> dict[str, Any]:
    d = asdict(s)
    d["summary"] = asdict(s.summary)
    return d


def _restore(value: Any) -> Any:
    """A non-finite float saved as text (``"nan"``, ``"inf"``) read back as a float."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _summary(d: Mapping[str, Any]) -> Summary:
    return Summary(**_restore(dict(d)))


def _setting(d: Mapping[str, Any]) -> Setting:
    d = _restore(dict(d))
    return Setting(**{**d, "summary": Summary(**d["summary"])})


@dataclass(frozen=True)
class MainRuns:
    """The chapter's one run per set: the model, its checkpoint record, the digits drawn from each
    set (indices into it) and each set's :class:`Crafted` run at ``run_gamma`` (attack ``i`` is
    digit ``i // 9`` toward its ``i % 9``-th other class)."""

    model: nn.Module
    info: M.TrainedInfo
    indices: dict[str, torch.Tensor]
    runs: dict[str, Crafted]


def main_runs(params: Params, *, sets: Sequence[str] | None = None, progress: bool = False) -> MainRuns:
    """The chapter's one JSMA run per set (``sets``, default all of ``params.sets``), from the
    attack cache when it holds them."""
    from advsamples.data import paper_sets

    p = params
    data = paper_sets()
    net, info = load_model(p.model, p.schedule)
    idx = {s: sample_indices(len(data[s][0]), p.n_samples, p.seed) for s in (sets or p.sets)}
    runs = {
        s: craft(
            net,
            data[s][0][idx[s]],
            data[s][1][idx[s]],
            idx[s],
            gamma=p.run_gamma,
            model_key=info.key,
            progress=progress,
            desc=f"JSMA {s}",
        )
        for s in idx
    }
    return MainRuns(net, info, idx, runs)


def _compute(params: Params, progress: bool) -> Result:
    from advsamples.data import paper_sets

    p = params
    data = paper_sets()
    main = main_runs(p, progress=progress)
    net, info, idx, big = main.model, main.info, main.indices, main.runs
    v: dict[str, Any] = {"epochs": info.config.epochs, "test_accuracy": info.test_accuracy}
    n_features = math.prod(data["test"][0].shape[1:])
    v["n_features"] = n_features
    budget = jsma_budget(n_features, p.gamma)
    v["budget_pairs"] = budget
    runs = {s: truncate(big[s], p.gamma) for s in p.sets}
    summ = {s: summarize(runs[s]) for s in p.sets}
    pooled = concat([runs[s] for s in p.sets])
    v["pooled"] = _summary_dict(summarize(pooled))
    v["sets_p"] = homogeneity_p([runs[s] for s in p.sets])

    # the direct check of the reading of the larger run
    x_test, y_test = data["test"]
    head_idx = idx["test"][: p.n_check]
    direct = craft(net, x_test[head_idx], y_test[head_idx], head_idx, gamma=p.gamma, cache=False)
    head = runs["test"].select(torch.arange(len(runs["test"])) < len(direct))
    agree = (
        (direct.success == head.success)
        & (direct.iterations == head.iterations)
        & (direct.distortion == head.distortion)
    )
    v["check_attacks"] = len(direct)
    v["check_agree"] = int(agree.sum())
    if not bool(agree.all()):
        raise RuntimeError("the run read at a smaller budget differs from the direct run")
    fails = runs["test"].select(~runs["test"].success)
    v["our_failure_distortion"] = float(fails.distortion.double().mean()) if len(fails) else math.nan

    # θ = -1
    xt, yt, it = x_test[idx["test"]], y_test[idx["test"]], idx["test"]

    def decrease(use_logits: bool, domain: Literal["movable", "all"] = "movable") -> Crafted:
        derivative = "logits" if use_logits else "probs"
        return craft(
            net,
            xt,
            yt,
            it,
            theta=-1.0,
            gamma=p.gamma,
            use_logits=use_logits,
            domain=domain,
            model_key=info.key,
            progress=progress,
            desc=f"JSMA θ=-1 ({derivative}{', every feature' if domain == 'all' else ''})",
        )

    neg = {ul: summarize(decrease(ul)) for ul in (True, False)}
    # θ = −1 with every feature in the search domain at the start (Algorithm 3 read literally):
    # a pixel already at zero can be picked, changes nothing and spends its iteration
    neg_all = decrease(True, "all")
    v["decrease_all_wasted"] = wasted_share(neg_all)
    v["black_pixels_mean"] = float((xt <= 0).flatten(1).sum(1).double().mean())
    ink = (xt > 0).flatten(1).sum(1).double()
    v["ink_pixels_mean"] = float(ink.mean())

    # the search domain at the start: every feature (Algorithm 2 read literally) against ours
    every = craft(
        net,
        xt,
        yt,
        it,
        gamma=p.gamma,
        domain="all",
        model_key=info.key,
        progress=progress,
        desc="JSMA, every feature in the domain",
    )
    v["domain_all"] = _summary_dict(summarize(every))
    v["domain_all_wasted"] = wasted_share(every)
    v["domain_agree"] = float(
        ((every.success == runs["test"].success) & (every.iterations == runs["test"].iterations))
        .double()
        .mean()
    )
    v["saturated_pixels_mean"] = float((xt >= 1).flatten(1).sum(1).double().mean())

    # per pair
    count_m = pair_matrix(pooled, "count")
    v["pair_count_min"] = float(np.nanmin(count_m))
    v["pair_count_max"] = float(np.nanmax(count_m))
    succ_m = pair_matrix(pooled, "success")
    dist_m = pair_matrix(pooled, "distortion_success")

    # the Fig. 1 grid and the saliency maps
    gidx = correct_per_class(net, x_test, y_test, 1, p.seed).flatten()
    grid_run = craft(net, x_test[gidx], y_test[gidx], gidx, gamma=p.gamma, keep_adv=True, model_key=info.key)
    adv, ok = pair_grid(grid_run)
    off = ~torch.eye(CLASSES, dtype=torch.bool)
    v["grid_success"] = float(ok[off].double().mean())
    v["grid_distortion"] = float(grid_run.distortion[grid_run.success].double().mean())
    sal_digit = x_test[gidx[p.saliency_source]]
    sal_maps = saliency_map(
        net,
        sal_digit.expand(len(p.saliency_targets), *sal_digit.shape).contiguous(),
        torch.tensor(p.saliency_targets),
    )
    v["saliency_share_values"] = [float((m > 0).double().mean()) for m in sal_maps]

    # the comparison of settings
    cidx = sample_indices(len(x_test), p.n_compare, p.seed)
    xc, yc = x_test[cidx], y_test[cidx]
    settings = []
    for name in (p.model, p.compare_model):
        for ul in (True, False):
            settings.append(run_setting(name, p.schedule, None, ul, xc, yc, cidx, p.gamma, progress=progress))
    for e in p.compared_epochs():
        for ul in (True, False):
            settings.append(run_setting(p.model, p.schedule, e, ul, xc, yc, cidx, p.gamma, progress=progress))
    return Result(
        params=p.as_dict(),
        values=v,
        summaries={s: _summary_dict(summ[s]) for s in p.sets},
        decrease={
            "logits": _summary_dict(neg[True]),
            "probs": _summary_dict(neg[False]),
            "logits_all": _summary_dict(summarize(neg_all)),
        },
        settings=[_setting_dict(s) for s in settings],
        success_matrix=succ_m,
        distortion_matrix=dist_m,
        grid_clean=x_test[gidx].numpy(),
        grid_adv=adv.numpy(),
        grid_ok=ok.numpy(),
        saliency_digit=sal_digit.numpy(),
        saliency_maps=sal_maps.detach().numpy(),
    )


def wasted_share(c: Crafted) -> float:
    """Share of the pixels a run picked that did not change (already at the bound, clipped back):
    ``1 - changed / (2 * iterations)`` over the run's attacks that made at least one iteration."""
    picked = 2 * c.iterations.double()
    changed = (c.distortion.double() * c.n_features).round()
    made = picked > 0
    return float(1 - changed[made].sum() / picked[made].sum()) if bool(made.any()) else math.nan


# --------------------------------------------------------------------------- phrases
def compared(ours: float, paper: float) -> str:
    """How our number stands to the paper's, as words for the prose."""
    return "higher than" if ours > paper else "lower than" if ours < paper else "equal to"


def sets_phrases(p_value: float) -> tuple[str, str]:
    """``(sets_picture, sets_verdict)``: what the chi-square test of one success rate for all the
    sets says, at the 5% level."""
    if p_value >= 0.05:
        return (
            "the training, validation and test sets give the same picture: the attack exploits the way the "
            "network maps any digit, not memorised training digits",
            "consistent with one success rate for all sets",
        )
    return (
        "the sets differ somewhat, which our samples are too small to explain",
        "a difference between the sets beyond sampling noise",
    )


def pair_noise_phrase(n_min: float) -> str:
    """How far sampling noise goes in the per-pair matrices whose smallest cell holds ``n_min``
    attacks: the widest 95% interval of a cell's success rate (at a rate of one half)."""
    half = 1.96 * math.sqrt(0.25 / n_min) if n_min > 0 else math.inf
    if half > 0.05:
        return (
            f"with as few as {n_min:.0f} attacks in a cell, a cell's rate is known only to "
            f"±{half:.0%}: these cells are noisy"
        )
    return (
        f"with at least {n_min:,.0f} attacks in a cell, each cell's rate is known to ±{half:.1%} (95%), "
        "so these differences are real"
    )


def training_length_phrase(
    last_epochs: int,
    last_accuracy: float,
    prev_epochs: int,
    change: float,
    paper_epochs: int,
    paper_accuracy: float,
) -> str:
    """Whether the compared training lengths reach the paper's (``paper_epochs``), and how much
    the logits' success rate moved over the last step (``change``, from ``prev_epochs``)."""
    if last_epochs >= paper_epochs:
        return (
            f"The longest training compared is the paper's own {paper_epochs} epochs, where our LeNet "
            f"reaches {last_accuracy:.2%} test accuracy against the paper's {paper_accuracy:.2%}; from "
            f"{prev_epochs} to {last_epochs} epochs the logits' success rate moves by {change * 100:+.1f} "
            "points, so training further is not what would close the gap"
        )
    return (
        f"The paper's {paper_epochs}-epoch model at {paper_accuracy:.2%} lies further along this axis than "
        f"the lengths compared here; the paper profile trains it and compares {paper_profile_epochs()} epochs"
    )


def saliency_shares_text(targets: Sequence[int], shares: Sequence[float]) -> str:
    """``"toward 0: 48%, toward 4: 49%"``: the share of salient pixels per target."""
    return ", ".join(f"toward {t}: {s:.0%}" for t, s in zip(targets, shares, strict=True))


def paper_profile_epochs() -> str:
    """The training lengths the paper profile compares (``params/paper.yml``), as text."""
    from advsamples import runner

    return ", ".join(str(e) for e in runner.notebook_parameters("paper", "jsma").get("epochs_list", []))


def best_setting(settings: Sequence[Setting], paper_success: float, paper_distortion: float) -> Setting:
    """The setting closest to the paper's numbers (:meth:`Setting.gap`; the first on a tie)."""
    return min(settings, key=lambda s: s.gap(paper_success, paper_distortion))


def find_setting(settings: Sequence[Setting], name: str, epochs: int, use_logits: bool) -> Setting:
    """The setting of model ``name`` trained for ``epochs`` with the given derivative."""
    for s in settings:
        if (s.model, s.epochs, s.use_logits) == (name, epochs, use_logits):
            return s
    raise KeyError(f"no setting {name}, {epochs} epochs, use_logits={use_logits}")


def glue_values(result: Result) -> dict[str, Any]:
    """Every glue key the chapter's prose quotes, and its value (the notebook's ``rec`` calls)."""
    PN: dict[str, Any] = papers.PAPERNOT
    p = result.params
    v = _restore(result.values)
    sets = list(p["sets"])
    summ = {s: _summary(d) for s, d in result.summaries.items()}
    neg = {True: _summary(result.decrease["logits"]), False: _summary(result.decrease["probs"])}
    settings = [_setting(d) for d in result.settings]
    n_features = v["n_features"]
    budget = v["budget_pairs"]
    test = summ["test"]
    g: dict[str, Any] = {
        "model": p["model"],
        "epochs": v["epochs"],
        "test_accuracy": v["test_accuracy"],
        "paper_epochs": PN["epochs"],
        "paper_test_accuracy": PN["test_accuracy"],
        "n_features": n_features,
        "gamma": p["gamma"],
        "paper_gamma": PN["gamma"],
        "run_gamma": p["run_gamma"],
        "n_check": p["n_check"],
        "compare_model": p["compare_model"],
        "saliency_source": p["saliency_source"],
        "paper_profile_epochs": paper_profile_epochs(),
        "budget_pairs": budget,
        "budget_features": 2 * budget,
        "budget_fraction": 2 * budget / n_features,
        "n_samples": p["n_samples"],
        "n_attacks_per_set": p["n_samples"] * (CLASSES - 1),
    }
    for s in sets:
        g[f"success_{s}"] = summ[s].success
        g[f"distortion_all_{s}"] = summ[s].distortion_all
        g[f"distortion_success_{s}"] = summ[s].distortion_success
        g[f"paper_success_{s}"] = PN["success"][s]
        g[f"paper_distortion_all_{s}"] = PN["distortion_all"][s]
        g[f"paper_distortion_success_{s}"] = PN["distortion_success"][s]
    pooled = _summary(v["pooled"])
    picture, verdict = sets_phrases(v["sets_p"])
    g |= {
        "success_pooled": pooled.success,
        "at_start_pooled": pooled.at_start,
        "gave_up_pooled": pooled.gave_up,
        "success_vs_paper": compared(test.success, PN["success"]["test"]),
        "distortion_vs_paper": compared(test.distortion_success, PN["distortion_success"]["test"]),
        "success_gap_test": PN["success"]["test"] - test.success,
        "pixels_success_test": test.distortion_success * n_features,
        "sets_picture": picture,
        "set_spread": max(x.success for x in summ.values()) - min(x.success for x in summ.values()),
        "sets_p": v["sets_p"],
        "sets_verdict": verdict,
        "check_attacks": v["check_attacks"],
        "check_agree": v["check_agree"],
        "our_failure_distortion": v["our_failure_distortion"],
        "paper_implied_failure_distortion": implied_failure_distortion(
            PN["success"]["test"], PN["distortion_all"]["test"], PN["distortion_success"]["test"]
        ),
        "paper_decrease_success": PN["decrease_success"],
        "paper_decrease_distortion": PN["decrease_distortion"],
    }
    for ul, tag in ((True, "logits"), (False, "probs")):
        g[f"decrease_success_{tag}"] = neg[ul].success
        g[f"decrease_distortion_success_{tag}"] = neg[ul].distortion_success
        g[f"decrease_distortion_all_{tag}"] = neg[ul].distortion_all
        g[f"decrease_gave_up_{tag}"] = neg[ul].gave_up
    neg_all = _summary(result.decrease["logits_all"])
    PD = PN["decrease_success"]
    g |= {
        "decrease_all_success": neg_all.success,
        "decrease_all_distortion_success": neg_all.distortion_success,
        "decrease_all_distortion_all": neg_all.distortion_all,
        "decrease_all_wasted": v["decrease_all_wasted"],
        "decrease_all_gap": neg_all.success - PD,
        "decrease_all_verdict": explained_phrase(neg_all.success, neg[True].success, PD),
        "decrease_domain_change": neg_all.success - neg[True].success,
        "black_pixels_mean": v["black_pixels_mean"],
        "black_share": v["black_pixels_mean"] / n_features,
    }
    g |= {
        "ink_pixels_mean": v["ink_pixels_mean"],
        "ink_share": v["ink_pixels_mean"] / n_features,
        "decrease_vs_paper": compared(neg[True].success, PN["decrease_success"]),
        "decrease_more_less": "more" if neg[True].success > PN["decrease_success"] else "less",
        "increase_success_test": test.success,
        "decrease_vs_increase": "less" if neg[True].success < test.success else "more",
        "pair_count_min": v["pair_count_min"],
        "pair_count_max": v["pair_count_max"],
        "pair_noise_phrase": pair_noise_phrase(v["pair_count_min"]),
        "success_matrix": result.success_matrix,
        "distortion_matrix": result.distortion_matrix,
    }
    for key, m in (("success", result.success_matrix), ("distortion", result.distortion_matrix)):
        hi, hi_pairs = extreme_pairs(m, "max")
        lo, lo_pairs = extreme_pairs(m, "min")
        g |= {
            f"pair_{key}_max": hi,
            f"pair_{key}_max_pairs": hi_pairs,
            f"pair_{key}_min": lo,
            f"pair_{key}_min_pairs": lo_pairs,
        }
    col_mean = np.nanmean(result.success_matrix, axis=0)
    g["hardest_target"] = int(np.nanargmin(col_mean))
    g["hardest_target_success"] = float(np.nanmin(col_mean))
    every = _summary(v["domain_all"])
    g |= {
        "domain_all_success": every.success,
        "domain_all_distortion": every.distortion_success,
        "domain_all_wasted": v["domain_all_wasted"],
        "domain_agree": v["domain_agree"],
        "domain_success_change": every.success - test.success,
        "saturated_pixels_mean": v["saturated_pixels_mean"],
    }
    g["grid_success"] = v["grid_success"]
    g["grid_distortion"] = v["grid_distortion"]
    g["saliency_shares"] = saliency_shares_text(p["saliency_targets"], v["saliency_share_values"])
    g |= _settings_glue(p, settings)
    return g


def _settings_glue(p: Mapping[str, Any], settings: Sequence[Setting]) -> dict[str, Any]:
    """The glue of the comparison of settings."""
    PN: dict[str, Any] = papers.PAPERNOT
    ps, pd_ = PN["success"]["test"], PN["distortion_success"]["test"]
    model, schedule = p["model"], p["schedule"]
    schedule_epochs = M.SCHEDULES[schedule][model]
    best = best_setting(settings, ps, pd_)
    g: dict[str, Any] = {
        "epochs_list": ", ".join(str(e) for e in sorted(set(p["epochs_list"]) | {schedule_epochs})),
        "n_compare": p["n_compare"],
        "best_setting": best.label,
        "best_success": best.summary.success,
        "best_distortion": best.summary.distortion_success,
        "best_gap": best.gap(ps, pd_),
        "paper_success_test_cmp": ps,
    }
    main_l = find_setting(settings, model, schedule_epochs, True)
    main_p = find_setting(settings, model, schedule_epochs, False)
    other_epochs = M.SCHEDULES[schedule][p["compare_model"]]
    other_l = find_setting(settings, p["compare_model"], other_epochs, True)
    other_p = find_setting(settings, p["compare_model"], other_epochs, False)
    g |= {
        "main_logits_success": main_l.summary.success,
        "main_logits_distortion": main_l.summary.distortion_success,
        "main_probs_success": main_p.summary.success,
        "main_probs_distortion": main_p.summary.distortion_success,
        "main_logits_gain": main_l.first_gain,
        "main_probs_gain": main_p.first_gain,
        "main_logits_need": main_l.pairs_needed,
        "main_probs_need": main_p.pairs_needed,
        "success_gap_logits": ps - main_l.summary.success,
        "success_gap_probs": ps - main_p.summary.success,
        "probs_gave_up_max": max(s.summary.gave_up for s in settings if not s.use_logits),
        "probs_vs_logits_success": "higher" if main_p.summary.success > main_l.summary.success else "lower",
        "probs_vs_logits_distortion": (
            "lower" if main_p.summary.distortion_success < main_l.summary.distortion_success else "higher"
        ),
        "other_logits_success": other_l.summary.success,
        "other_logits_distortion": other_l.summary.distortion_success,
        "other_probs_success": other_p.summary.success,
        "other_probs_distortion": other_p.summary.distortion_success,
        "other_accuracy": other_l.test_accuracy,
        "other_margin": other_l.margin,
        "other_logits_gain": other_l.first_gain,
        "other_probs_gain": other_p.first_gain,
        "other_logits_need": other_l.pairs_needed,
        "other_probs_need": other_p.pairs_needed,
        "main_margin": main_l.margin,
    }
    by_epochs = sorted((s for s in settings if s.model == model), key=lambda s: (s.epochs, not s.use_logits))
    first_e, last_e = by_epochs[0].epochs, by_epochs[-1].epochs
    for tag, ul in (("logits", True), ("probs", False)):
        a, b = find_setting(settings, model, first_e, ul), find_setting(settings, model, last_e, ul)
        g[f"epochs_first_{tag}_success"] = a.summary.success
        g[f"epochs_last_{tag}_success"] = b.summary.success
        g[f"epochs_{tag}_trend"] = "rises" if b.summary.success > a.summary.success else "does not rise"
    first = find_setting(settings, model, first_e, True)
    last = find_setting(settings, model, last_e, True)
    lengths = sorted({s.epochs for s in settings if s.model == model})
    prev = find_setting(settings, model, lengths[-2] if len(lengths) > 1 else last_e, True)
    closer = [
        e
        for e in lengths
        if find_setting(settings, model, e, False).gap(ps, pd_)
        < find_setting(settings, model, e, True).gap(ps, pd_)
    ]
    g["probs_closer_lengths"] = (
        "at every training length compared"
        if len(closer) == len(lengths)
        else f"at {len(closer)} of the {len(lengths)} training lengths compared"
    )
    g["training_length_phrase"] = training_length_phrase(
        last_e,
        last.test_accuracy,
        prev.epochs,
        last.summary.success - prev.summary.success,
        int(PN["epochs"]),
        float(PN["test_accuracy"]),
    )
    g |= {
        "epochs_first": first_e,
        "epochs_last": last_e,
        "epochs_first_accuracy": first.test_accuracy,
        "epochs_last_accuracy": last.test_accuracy,
        "epochs_first_margin": first.margin,
        "epochs_last_margin": last.margin,
        "epochs_first_gain": first.first_gain,
        "epochs_last_gain": last.first_gain,
        "epochs_first_need": first.pairs_needed,
        "epochs_last_need": last.pairs_needed,
        "epochs_first_distortion": first.summary.distortion_success,
        "epochs_last_distortion": last.summary.distortion_success,
        "epochs_meaning": (
            "a better-trained model is, if anything, easier to steer"
            if last.summary.success >= first.summary.success
            else "a better-trained model resists a little better"
        ),
        "best_is_probs": "the probabilities'" if not best.use_logits else "the logits'",
    }
    return g


# --------------------------------------------------------------------------- tables and figures
def fig11_table(result: Result) -> Styler:
    """The paper's Fig. 11: success and distortion per set, beside the paper's."""
    PN: dict[str, Any] = papers.PAPERNOT
    rows = []
    for s in result.params["sets"]:
        sm = _summary(result.summaries[s])
        rows.append(
            {
                "set": s,
                "attacks": sm.n_attacks,
                "paper: attacks": PN["attacks_per_set"],
                "success": sm.success,
                "paper: success": PN["success"][s],
                "distortion (all)": sm.distortion_all,
                "paper: distortion (all)": PN["distortion_all"][s],
                "distortion (successful)": sm.distortion_success,
                "paper: distortion (successful)": PN["distortion_success"][s],
            }
        )
    frame = pd.DataFrame(rows).set_index("set")
    return frame.style.format(
        {c: "{:,d}" if "attacks" in c else "{:.2%}" for c in frame.columns}  # type: ignore[misc]
    )


def decrease_table(result: Result) -> Styler:
    """θ = −1 with each derivative, and with every pixel in the search domain, beside the paper's."""
    PN: dict[str, Any] = papers.PAPERNOT
    rows: list[dict[str, Any]] = []
    for tag, label in (
        ("logits", "logits"),
        ("probs", "probabilities"),
        ("logits_all", "logits, every pixel in Γ at the start"),
    ):
        sm = _summary(result.decrease[tag])
        rows.append(
            {
                "setting": label,
                "success": sm.success,
                "distortion (successful)": sm.distortion_success,
                "distortion (all)": sm.distortion_all,
                "gave up (no admissible pair)": sm.gave_up,
            }
        )
    rows.append(
        {
            "setting": "paper",
            "success": PN["decrease_success"],
            "distortion (successful)": PN["decrease_distortion"],
            "distortion (all)": None,
            "gave up (no admissible pair)": None,
        }
    )
    return pd.DataFrame(rows).set_index("setting").style.format("{:.2%}", na_rep="—")


def comparison_table(result: Result) -> Styler:
    """The comparison of settings, with the paper's row last."""
    PN: dict[str, Any] = papers.PAPERNOT
    ps, pd_ = PN["success"]["test"], PN["distortion_success"]["test"]
    rows: list[dict[str, Any]] = []
    for s in (_setting(d) for d in result.settings):
        rows.append(
            {
                "setting": s.label,
                "test accuracy": s.test_accuracy,
                "success": s.summary.success,
                "distortion (successful)": s.summary.distortion_success,
                "distortion (all)": s.summary.distortion_all,
                "gap to paper": s.gap(ps, pd_),
                "gave up": s.summary.gave_up,
                "logit margin": s.margin,
                "first pair's gain": s.first_gain,
                "pairs needed": s.pairs_needed,
            }
        )
    rows.append(
        {
            "setting": "paper",
            "test accuracy": PN["test_accuracy"],
            "success": ps,
            "distortion (successful)": pd_,
        }
    )
    return (
        pd.DataFrame(rows)
        .set_index("setting")
        .style.format(
            {
                "test accuracy": "{:.2%}",
                "success": "{:.1%}",
                "distortion (successful)": "{:.2%}",
                "distortion (all)": "{:.2%}",
                "gap to paper": "{:.2f}",
                "gave up": "{:.1%}",
                "logit margin": "{:.1f}",
                "first pair's gain": "{:.2f}",
                "pairs needed": "{:.1f}",
            },
            na_rep="—",
        )
    )


def success_heatmap_figure(result: Result) -> Figure:
    """The paper's Fig. 12: success rate per (source, target) pair."""
    p = result.params
    return plotting.heatmap(
        result.success_matrix,
        title=f"JSMA success rate, {p['model']}, Υ = {p['gamma']:.1%} (Fig. 12)",
        vmin=0,
        vmax=1,
        mask_diagonal=True,
    )


def distortion_heatmap_figure(result: Result) -> Figure:
    """The paper's Fig. 13: mean distortion of the successful attacks per pair."""
    return plotting.heatmap(
        result.distortion_matrix,
        title=f"Average distortion of successful samples, Υ = {result.params['gamma']:.1%} (Fig. 13)",
        fmt=".1%",
        cmap="mako_r",
        mask_diagonal=True,
    )


def grid_figure(result: Result) -> Figure:
    """The paper's Fig. 1 grid (:func:`fig1_figure`) of the chapter's digits."""
    p = result.params
    return fig1_figure(
        torch.from_numpy(result.grid_clean),
        torch.from_numpy(result.grid_adv),
        torch.from_numpy(result.grid_ok),
        title=f"{p['model']}, Υ = {p['gamma']:.1%}",
    )


def saliency_figure(result: Result) -> Figure:
    """The saliency maps of the chapter's digit (:func:`plot_saliency`)."""
    p = result.params
    return plot_saliency(
        result.saliency_digit, p["saliency_source"], p["saliency_targets"], result.saliency_maps
    )


def comparison_figure(result: Result) -> Figure:
    """Success and distortion of every setting of the comparison (:func:`settings_figure`)."""
    PN: dict[str, Any] = papers.PAPERNOT
    p = result.params
    settings = [_setting(d) for d in result.settings]
    return settings_figure(
        [s.label for s in settings],
        [s.summary.success for s in settings],
        [s.summary.distortion_success for s in settings],
        PN["success"]["test"],
        PN["distortion_success"]["test"],
        title=f"JSMA on {p['n_compare']} test digits × 9 targets, Υ = {p['gamma']:.1%}",
    )


def headline(result: Result) -> Headline:
    """The chapter's opening box: Papernot et al.'s Fig. 11 success and distortion on the test
    set, and their θ = −1 variant, beside ours."""
    PN: dict[str, Any] = papers.PAPERNOT
    g = glue_values(result)
    return Headline(
        "Papernot et al. (2016), Fig. 11 and Sec. V-A",
        (
            ("success rate, test set", f"{PN['success']['test']:.2%}", f"{g['success_test']:.2%}"),
            (
                "distortion of the successful samples",
                f"{PN['distortion_success']['test']:.2%}",
                f"{g['distortion_success_test']:.2%}",
            ),
            (
                "θ = −1 (pixels decreased): success rate",
                f"{PN['decrease_success']:.1%}",
                f"{g['decrease_success_logits']:.1%} ({g['decrease_all_success']:.1%} with every pixel "
                "in the search domain at the start)",
            ),
        ),
        f"{PN['attacks_per_set']:,} attacks per set, Υ = {PN['gamma']:.1%}, "
        f"LeNet at {PN['test_accuracy']:.2%} test accuracy ({PN['epochs']} epochs)",
        f"{g['n_attacks_per_set']:,} attacks per set, Υ = {g['gamma']:.1%}, "
        f"LeNet at {g['test_accuracy']:.2%} test accuracy ({g['epochs']} epochs)",
    )


def fidelity(result: Result) -> list[Gap]:
    """The chapter's numbers beside Papernot et al.'s, each with the experiment that tests a
    cause of the difference: the probabilities' derivative (Eq. 8 on the softmax, the settings
    comparison at the main model) for the distortion, the literal search domain of Algorithm 3
    (every pixel at the start) for θ = −1."""
    PN: dict[str, Any] = papers.PAPERNOT
    g = glue_values(result)
    probs = f"the probabilities' derivative ({g['n_compare']:,} digits)"
    literal = "every pixel in the search domain at the start"
    return known(
        Gap.maybe("success rate, test set", "rate", PN["success"]["test"], g["success_test"], fmt=".2%"),
        Gap.maybe(
            "distortion of the successes, test set",
            "distortion",
            PN["distortion_success"]["test"],
            g["distortion_success_test"],
            g["main_probs_distortion"],
            probs,
            fmt=".2%",
        ),
        Gap.maybe(
            "θ = −1: success rate",
            "rate",
            PN["decrease_success"],
            g["decrease_success_logits"],
            g["decrease_all_success"],
            literal,
        ),
        Gap.maybe(
            "θ = −1: distortion of the successes",
            "distortion",
            PN["decrease_distortion"],
            g["decrease_distortion_success_logits"],
            g["decrease_all_distortion_success"],
            literal,
            fmt=".2%",
        ),
    )
