r"""The hardness chapter (Papernot et al. 2016, Sec. V-B): the hardness matrix H(s, t) (Eq. 10,
Fig. 14), the adversarial distance A(X, t) (Eq. 11, Fig. 15), and how well A ranks the pairs by H.

- :func:`trapezoid` and :func:`hardness`: the paper's hardness measure by the trapezoid rule;
  :func:`distance_matrix`: the adversarial distance per pair; :func:`rank_correlation` between two
  such matrices; :func:`column_share`: how much of a matrix the target column explains;
  :func:`halves`, :func:`split_half`, :func:`spearman_brown`, :func:`attainable_correlation`: the
  split-half reliability of the two matrices and the correlation it allows;
- :class:`Params`, :func:`run` (cached), :class:`Result`, :func:`glue_values`, and the chapter's
  figures and tables.

The JSMA runs come from :mod:`advsamples.experiments.jsma_runs` (whose cache the JSMA chapter
fills); this module imports no other chapter module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from pandas.io.formats.style import Styler
from scipy import stats
from torch import nn
from tqdm.auto import tqdm

from advsamples import models as M
from advsamples import papers, plotting
from advsamples.attacks.jsma import adversarial_distance, jsma_budget
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, param
from advsamples.experiments.common import CLASSES, extreme_pairs, other_targets, sample_indices
from advsamples.experiments.jsma_runs import (
    Crafted,
    budget_curves,
    concat,
    craft,
    load_model,
    pair_matrix,
    summarize,
    truncate,
)
from advsamples.params import check_bool, check_choice, check_choices, check_count, check_int, check_numbers
from advsamples.plotting import finish

__all__ = [
    "MAX_SEED",
    "MAX_UPSILONS",
    "Params",
    "RankCorrelation",
    "Result",
    "attainable_correlation",
    "budget_table",
    "column_share",
    "correlation_table",
    "correlation_words",
    "distance_heatmap_figure",
    "distance_matrix",
    "distance_vs_hardness_figure",
    "glue_values",
    "halves",
    "hardness",
    "hardness_curve_figure",
    "hardness_curves_figure",
    "hardness_heatmap_figure",
    "rank_correlation",
    "reading_words",
    "run",
    "spearman_brown",
    "split_half",
    "success_curves_figure",
    "trapezoid",
]

#: The paper's three sample sets and their sizes (:func:`advsamples.data.paper_sets`).
SET_NAMES = ["train", "validation", "test"]
SET_SIZES = {"train": 50000, "validation": 10000, "test": 10000}
#: Most budgets of the list: each adds one truncation of the run (cheap), but keeps the list finite.
MAX_UPSILONS = 100
#: Largest seed accepted (a 32-bit seed).
MAX_SEED = 2**32 - 1
_VERSION = 1


def trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""Trapezoid rule along the first axis: :math:`\sum_k (x_{k+1} - x_k)(y_k + y_{k+1}) / 2`.

    ``x`` and ``y`` are shaped alike, ``(G, ...)`` with ``G >= 2`` points, or ``x`` is ``(G,)``
    and shared. A segment with ``x_{k+1} = x_k`` adds nothing, whatever ``y`` (even NaN).
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x.reshape((-1,) + (1,) * (y.ndim - 1))
    x = np.broadcast_to(x, y.shape)
    if y.shape[0] < 2:
        raise ValueError(f"the trapezoid rule needs at least two points, got {y.shape[0]}")
    dx = np.diff(x, axis=0)
    mid = (y[1:] + y[:-1]) / 2
    with np.errstate(invalid="ignore"):
        seg = np.where(dx == 0, 0.0, dx * mid)
    return seg.sum(axis=0)


def hardness(tau: np.ndarray, eps: np.ndarray) -> np.ndarray:
    r"""The paper's hardness H(s, t) = ∫ ε(s, t, τ) dτ (Eq. 10) by the trapezoid rule over the
    points (τ(Υ_k), ε(Υ_k)) of :func:`budget_curves`.

    Where no attack of a pair has succeeded yet (τ = 0), ε is taken as 0: reaching a success
    rate of zero takes no distortion. Budgets are in increasing order, so τ does not decrease
    along the points. The diagonal is NaN.
    """
    tau = np.asarray(tau, dtype=float)
    eps = np.asarray(eps, dtype=float)
    if tau.shape != eps.shape or tau.ndim != 3 or tau.shape[1] != tau.shape[2]:
        raise ValueError(f"tau and eps must be equal shapes (G, C, C), got {tau.shape} and {eps.shape}")
    if np.any(np.diff(tau, axis=0) < -1e-12):
        raise ValueError("tau must not decrease along the budgets (sort the budgets in increasing order)")
    eps0 = np.where(tau == 0, 0.0, eps)
    h = trapezoid(eps0, tau)
    h = np.where(np.isnan(tau).any(axis=0), np.nan, h)
    np.fill_diagonal(h, np.nan)
    return h


# --------------------------------------------------------------------------- adversarial distance
def distance_matrix(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    use_logits: bool = True,
    classes: int = CLASSES,
    batch_size: int = 900,
    progress: bool = False,
) -> np.ndarray:
    r"""Mean adversarial distance A(X, t) = 1 - (1/M) Σ_i 1[S(X, t)[i] > 0] (paper Eq. 11, from
    the first iteration's saliency map) per (source, target) pair, over every sample of ``x``
    toward each class but its label. ``(classes, classes)``, NaN diagonal."""
    rows, targets = other_targets(y, classes)
    vals = []
    for a in tqdm(range(0, len(rows), batch_size), desc="A(X,t)", disable=not progress):
        r, t = rows[a : a + batch_size], targets[a : a + batch_size]
        vals.append(adversarial_distance(model, x[r], t, use_logits=use_logits))
    values = torch.cat(vals).double().numpy()
    pair = (y.long()[rows] * classes + targets).numpy()
    count = np.bincount(pair, minlength=classes**2).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.bincount(pair, weights=values, minlength=classes**2) / count).reshape(classes, classes)
    np.fill_diagonal(out, np.nan)
    return out


@dataclass(frozen=True)
class RankCorrelation:
    """Rank correlations between two pair matrices over their off-diagonal pairs."""

    spearman: float
    spearman_p: float
    kendall: float
    kendall_p: float
    n_pairs: int


def rank_correlation(a: np.ndarray, b: np.ndarray) -> RankCorrelation:
    """Spearman's ρ and Kendall's τ (scipy.stats, with p-values) between two square matrices over
    the off-diagonal entries where both are defined."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a and b must be equal square matrices, got {a.shape} and {b.shape}")
    off = ~np.eye(a.shape[0], dtype=bool) & ~np.isnan(a) & ~np.isnan(b)
    if off.sum() < 3:
        raise ValueError("rank correlation needs at least 3 defined off-diagonal pairs")
    rho = stats.spearmanr(a[off], b[off])
    tau = stats.kendalltau(a[off], b[off])
    return RankCorrelation(
        float(rho.statistic), float(rho.pvalue), float(tau.statistic), float(tau.pvalue), int(off.sum())
    )


def hardness_curve_figure(
    tau: np.ndarray, eps: np.ndarray, pairs: Sequence[tuple[int, int]], title: str = ""
) -> Figure:
    """ε against τ along the budgets for a few (source, target) ``pairs``, the area under each
    polyline (ε taken as 0 where τ = 0) shaded: the trapezoid rule of :func:`hardness`."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for (s, t), col in zip(pairs, sns.color_palette("deep", len(pairs)), strict=True):
        ts = tau[:, s, t]
        es = np.where(ts == 0, 0.0, eps[:, s, t])
        h = hardness(tau, eps)[s, t]
        ax.plot(ts, es, marker="o", ms=3, color=col, label=f"{s} → {t}: H = {h:.4f}")
        ax.fill_between(ts, es, alpha=0.15, color=col)
    ax.set_xlabel("success rate τ")
    ax.set_ylabel("mean distortion ε of successful samples")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    return finish(fig)


def column_share(m: np.ndarray) -> float:
    """Share of the variance of a pair matrix's off-diagonal entries explained by the target alone:
    the variance of the entries replaced by their column (target) means, over their variance.
    Near 1, the matrix is mostly a property of the target class."""
    m = np.asarray(m, dtype=float)
    off = ~np.eye(m.shape[0], dtype=bool) & ~np.isnan(m)
    if off.sum() < 2:
        raise ValueError("column_share needs at least two defined off-diagonal entries")
    vals = m[off]
    cols = np.where(off, m, np.nan)
    col_mean = np.nanmean(cols, axis=0)
    fitted = np.broadcast_to(col_mean, m.shape)[off]
    total = vals.var()
    return float(fitted.var() / total) if total > 0 else math.nan


def halves(y: torch.Tensor) -> torch.Tensor:
    """bool ``(N,)`` splitting samples with labels ``y`` into two halves balanced per class: within
    each class, in order, every other sample is True."""
    y = y.long()
    rank = torch.zeros_like(y)
    for c in y.unique():
        members = (y == c).nonzero()[:, 0]
        rank[members] = torch.arange(len(members))
    return rank % 2 == 0


def split_half(c: Crafted, upsilons: Sequence[float], classes: int = CLASSES) -> RankCorrelation:
    """Rank correlation between the hardness matrices of two halves of a run's digits (split by
    :func:`halves` on their classes): how reproducible the pair ranking is at this sample size."""
    if len(c) % (classes - 1) or len(c) < 2 * (classes - 1):
        raise ValueError("split_half needs a run of at least two digits, each with its classes - 1 attacks")
    digit = torch.arange(len(c)) // (classes - 1)  # craft and concat list each digit's attacks together
    first = halves(c.source[:: classes - 1])[digit]
    parts = [hardness(*budget_curves(c.select(m), upsilons, classes)) for m in (first, ~first)]
    return rank_correlation(*parts)


def spearman_brown(r: float) -> float:
    """The Spearman–Brown correction of a split-half correlation ``r`` to the full sample:
    ``2r / (1 + r)``."""
    if not -1.0 < r <= 1.0:
        raise ValueError(f"r must lie in (-1, 1], got {r!r}")
    return 2 * r / (1 + r)


def attainable_correlation(h_split: float, a_split: float) -> float:
    """The largest correlation two measures with split-half reliabilities ``h_split`` and
    ``a_split`` can show at the full sample: ``sqrt(rel_h * rel_a)`` of their Spearman–Brown
    corrections (a negative reliability counts as 0)."""
    rel_h, rel_a = spearman_brown(h_split), spearman_brown(a_split)
    return math.sqrt(max(rel_h, 0.0) * max(rel_a, 0.0))


def reading_words(rho: float) -> str:
    """How much another reading of the measure changes the pair ranking (Spearman ``rho``)."""
    return "barely changes" if rho >= 0.9 else "changes"


def correlation_words(rho: float) -> str:
    """``"weak positive"``, ``"moderate negative"``, ``"strong positive"``: a rank correlation in words."""
    strength = abs(rho)
    return ("strong" if strength >= 0.7 else "moderate" if strength >= 0.4 else "weak") + (
        " positive" if rho > 0 else " negative"
    )


def noise_verdict(rho: float, attainable: float) -> str:
    """Whether an observed correlation ``rho`` is far below what the reliabilities allow."""
    if abs(rho) < attainable / 2:
        return "far below that bound, so the weak agreement is not sampling noise"
    return "within reach of that bound, so the sample size may be what limits it"


def usefulness(rho: float) -> str:
    """Whether the adversarial distance can stand in for the attack, from its correlation with H."""
    return "cannot stand in for the attack here" if abs(rho) < 0.4 else "can serve as a cheap first screen"


def significance_words(p_value: float) -> str:
    """A correlation's p-value in words, at the 1% level."""
    if p_value < 0.01:
        return "unlikely to arise by chance (p < 0.01)"
    return "not clearly distinguishable from chance at this sample size (p ≥ 0.01)"


def a_dependence(source_share: float) -> str:
    """Whether the adversarial distance depends on the source (the share its row explains)."""
    return "hardly depends on the source digit" if source_share < 0.1 else "depends on the source digit too"


def h_dependence(h_target_share: float, a_target_share: float) -> str:
    """How much the hardness is a matter of the target, against the adversarial distance."""
    return "far less" if h_target_share < a_target_share / 2 else "about as much"


def first_at_least(xs: Sequence[float], ys: Sequence[float], level: float) -> float:
    """The first ``x`` whose ``y`` reaches ``level`` (NaN if none does)."""
    return next((x for x, y in zip(xs, ys, strict=True) if y >= level), math.nan)


def extreme_pair(m: np.ndarray, which: str) -> tuple[int, int]:
    """``(source, target)`` of the largest (``"max"``) or smallest (``"min"``) entry, NaN skipped."""
    flat = np.nanargmax(m) if which == "max" else np.nanargmin(m)
    s, t = np.unravel_index(flat, m.shape)
    return int(s), int(t)


# --------------------------------------------------------------------------- the chapter
@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the hardness chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "hardness"

    schedule: str = param("quick", 'training schedule of the model: "quick" (CI-sized) or "paper"')
    model: str = param("lenet_paper", "the attacked model (the paper's LeNet)")
    sets: list[str] = param(
        ["train", "validation", "test"], "the paper's sample sets whose digits are pooled"
    )
    n_samples: int = param(
        30, "digits drawn from each set (as in the JSMA chapter, whose cached runs are then reused)"
    )
    upsilons: list[float] = param(
        [0.003, 0.013, 0.026, 0.051, 0.077, 0.102, 0.128, 0.255, 0.383], "the paper's budgets Υ"
    )
    use_logits: bool = param(
        True, "forward derivative of the logits (the paper's choice) or of the probabilities"
    )
    seed: int = param(0, "seed of the digit draw (as in the JSMA chapter)")

    def validate(self) -> None:
        super().validate()
        check_choice("model", self.model, [m for m in M.MODEL_NAMES if m != "logreg_3v7"])
        check_choices("sets", self.sets, SET_NAMES)
        smallest = min(SET_SIZES[s] for s in self.sets)
        check_count("n_samples", self.n_samples, smallest, "digits in the smallest chosen set")
        check_numbers(
            "upsilons", self.upsilons, lo=0, lo_open=True, hi=1, increasing=True, max_len=MAX_UPSILONS
        )
        if len(self.upsilons) < 2:
            raise ValueError(
                f"parameter upsilons={self.upsilons!r} must hold at least two strictly increasing budgets"
            )
        check_bool("use_logits", self.use_logits)
        check_int("seed", self.seed, 0, MAX_SEED, "a 32-bit seed")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}


@dataclass(frozen=True)
class Result(ChapterResult):
    """What the hardness chapter measured.

    Attributes:
        params: the chapter's parameters (:meth:`Params.as_dict`).
        values: the measured numbers the prose quotes (NaN stored as ``"nan"``).
        overall: one row per budget: ``upsilon``, ``iterations``, ``success``,
            ``distortion_success``, ``distortion_all``.
        correlations: ``"A vs H"`` and ``"A vs success"`` -> :class:`RankCorrelation` fields.
        tau, eps: ``(G, C, C)`` success rate and distortion of the successful attacks per budget.
        hardness_matrix, distance_matrix: ``(C, C)`` H and A.
        success_at_paper_gamma: ``(C, C)`` success per pair at the paper's Υ.
    """

    params: dict[str, Any]
    values: dict[str, Any]
    overall: list[dict[str, Any]]
    correlations: dict[str, dict[str, Any]]
    tau: np.ndarray
    eps: np.ndarray
    hardness_matrix: np.ndarray
    distance_matrix: np.ndarray
    success_at_paper_gamma: np.ndarray


def run(params: Params, *, progress: bool = True) -> Result:
    """Every attack and statistic of the chapter (cached by the parameters and the model's key)."""
    key = M.model_info(params.model, params.schedule).key
    return cached(params, Result, lambda: _compute(params, progress), version=_VERSION, models=[key])


def _restore(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _compute(params: Params, progress: bool) -> Result:
    from advsamples.data import paper_sets

    p = params
    PN: dict[str, Any] = papers.PAPERNOT
    data = paper_sets()
    net, info = load_model(p.model, p.schedule)
    n_features = math.prod(data["test"][0].shape[1:])
    v: dict[str, Any] = {
        "epochs": info.config.epochs,
        "test_accuracy": info.test_accuracy,
        "n_features": n_features,
    }
    runs, x_pool, y_pool = [], [], []
    for s in p.sets:
        i = sample_indices(len(data[s][0]), p.n_samples, p.seed)
        x_pool.append(data[s][0][i])
        y_pool.append(data[s][1][i])
        runs.append(
            craft(
                net,
                data[s][0][i],
                data[s][1][i],
                i,
                gamma=p.upsilons[-1],
                use_logits=p.use_logits,
                model_key=info.key,
                progress=progress,
                desc=f"JSMA {s}",
            )
        )
    pooled = concat(runs)
    count_m = pair_matrix(pooled, "count")
    v["n_attacks"] = len(pooled)
    v["pair_count_min"] = float(np.nanmin(count_m))
    v["pair_count_max"] = float(np.nanmax(count_m))
    tau, eps = budget_curves(pooled, p.upsilons)
    overall = []
    for u in p.upsilons:
        sm = summarize(truncate(pooled, u))
        overall.append(
            {
                "upsilon": u,
                "iterations": jsma_budget(n_features, u),
                "success": sm.success,
                "distortion_success": sm.distortion_success,
                "distortion_all": sm.distortion_all,
            }
        )
    at_paper = truncate(pooled, PN["gamma"])
    v["success_at_paper_gamma"] = summarize(at_paper).success
    at_m = pair_matrix(at_paper, "success")
    H = hardness(tau, eps)
    eps_all = np.stack([pair_matrix(truncate(pooled, u), "distortion_all") for u in p.upsilons])
    H_all = hardness(tau, eps_all)
    H_ups = trapezoid(np.where(tau == 0, 0.0, eps), np.asarray(p.upsilons))
    np.fill_diagonal(H_ups, np.nan)
    r_all = rank_correlation(H, H_all)
    r_ups = rank_correlation(H, H_ups)
    v["n_pairs"] = r_all.n_pairs
    v["rho_all_reading"] = r_all.spearman
    v["rho_upsilon_reading"] = r_ups.spearman
    xa, ya = torch.cat(x_pool), torch.cat(y_pool)
    A = distance_matrix(net, xa, ya, use_logits=p.use_logits, progress=progress)
    rc = rank_correlation(A, H)
    rs = rank_correlation(A, at_m)
    v["h_split"] = split_half(pooled, p.upsilons).spearman
    half = halves(ya)
    v["a_split"] = rank_correlation(
        distance_matrix(net, xa[half], ya[half], use_logits=p.use_logits),
        distance_matrix(net, xa[~half], ya[~half], use_logits=p.use_logits),
    ).spearman
    return Result(
        params=p.as_dict(),
        values=v,
        overall=overall,
        correlations={"A vs H": asdict(rc), "A vs success": asdict(rs)},
        tau=tau,
        eps=eps,
        hardness_matrix=H,
        distance_matrix=A,
        success_at_paper_gamma=at_m,
    )


def glue_values(result: Result) -> dict[str, Any]:
    """Every glue key the chapter's prose quotes, and its value (the notebook's ``rec`` calls)."""
    PN: dict[str, Any] = papers.PAPERNOT
    p = result.params
    v = _restore(result.values)
    overall = _restore(result.overall)
    ups = list(p["upsilons"])
    n_features = v["n_features"]
    tau, H, A, at_m = (
        result.tau,
        result.hardness_matrix,
        result.distance_matrix,
        result.success_at_paper_gamma,
    )
    g: dict[str, Any] = {
        "model": p["model"],
        "epochs": v["epochs"],
        "test_accuracy": v["test_accuracy"],
        "derivative": "logits" if p["use_logits"] else "probabilities",
        "n_samples": p["n_samples"],
        "upsilon_max": ups[-1],
        "budget_max": jsma_budget(n_features, ups[-1]),
        "paper_upsilons": ", ".join(f"{u:.1%}" for u in PN["hardness_upsilons"]),
        "our_upsilons": ", ".join(f"{u:.1%}" for u in ups),
        "n_attacks": v["n_attacks"],
        "pair_count_min": v["pair_count_min"],
        "pair_count_max": v["pair_count_max"],
        "paper_gamma": PN["gamma"],
        "success_at_paper_gamma": v["success_at_paper_gamma"],
        "paper_success_test": PN["success"]["test"],
        "success_first": overall[0]["success"],
        "upsilon_first": ups[0],
        "budget_first": jsma_budget(n_features, ups[0]),
        "success_last": overall[-1]["success"],
        "distortion_last": overall[-1]["distortion_success"],
        "upsilon_half": first_at_least([r["upsilon"] for r in overall], [r["success"] for r in overall], 0.5),
    }
    per_source_at = np.nanmean(at_m, axis=1)
    g |= {
        "hardest_source": int(np.argmin(per_source_at)),
        "hardest_source_success": float(per_source_at.min()),
        "easiest_source": int(np.argmax(per_source_at)),
        "easiest_source_success": float(per_source_at.max()),
        "hardness_matrix": H,
    }
    h_hi, h_hi_pairs = extreme_pairs(H, "max")
    h_lo, h_lo_pairs = extreme_pairs(H, "min")
    lo_s, lo_t = extreme_pair(H, "min")
    g |= {
        "hardness_max": h_hi,
        "hardness_max_pairs": h_hi_pairs,
        "hardness_min": h_lo,
        "hardness_min_pairs": h_lo_pairs,
        "hardness_mean": float(np.nanmean(H)),
        "easiest_pair_tau_max": float(tau[-1, lo_s, lo_t]),
        "tau_max_min": float(np.nanmin(tau[-1])),
        "n_pairs_low": int((tau[-1] < 0.5).sum()),
        "n_pairs": v["n_pairs"],
        "rho_all_reading": v["rho_all_reading"],
        "rho_upsilon_reading": v["rho_upsilon_reading"],
        "all_reading_words": reading_words(v["rho_all_reading"]),
        "upsilon_reading_words": reading_words(v["rho_upsilon_reading"]),
        "distance_matrix": A,
    }
    a_hi, a_hi_pairs = extreme_pairs(A, "max")
    a_lo, a_lo_pairs = extreme_pairs(A, "min")
    target_success = np.nanmean(at_m, axis=0)
    hardest_t = int(np.nanargmin(target_success))
    a_cols = np.nanmean(A, axis=0)
    g |= {
        "distance_max": a_hi,
        "distance_max_pairs": a_hi_pairs,
        "distance_min": a_lo,
        "distance_min_pairs": a_lo_pairs,
        "a_target_share": column_share(A),
        "hardest_target": hardest_t,
        "hardest_target_success": float(target_success[hardest_t]),
        "hardest_target_a_rank": int((a_cols > a_cols[hardest_t]).sum()) + 1,
        "n_classes": CLASSES,
        "a_source_share": column_share(A.T),
        "h_target_share": column_share(H),
        "h_source_share": column_share(H.T),
        "a_dependence": a_dependence(column_share(A.T)),
        "h_dependence": h_dependence(column_share(H), column_share(A)),
    }
    rc = RankCorrelation(**_restore(result.correlations["A vs H"]))
    rs = RankCorrelation(**_restore(result.correlations["A vs success"]))
    attainable = attainable_correlation(v["h_split"], v["a_split"])
    g |= {
        "spearman": rc.spearman,
        "spearman_p": rc.spearman_p,
        "kendall": rc.kendall,
        "kendall_p": rc.kendall_p,
        "spearman_success": rs.spearman,
        "spearman_success_p": rs.spearman_p,
        "correlation_words": correlation_words(rc.spearman),
        "h_split": v["h_split"],
        "a_split": v["a_split"],
        "attainable": attainable,
        "noise_verdict": noise_verdict(rc.spearman, attainable),
        "target_rho": float(stats.spearmanr(np.nanmean(A, axis=0), np.nanmean(H, axis=0)).statistic),
        "usefulness": usefulness(rc.spearman),
        "significance_words": significance_words(rc.spearman_p),
    }
    return g


# --------------------------------------------------------------------------- tables and figures
def budget_table(result: Result) -> Styler:
    """Success and distortion over all pairs at each budget."""
    rows = [
        {
            "Υ": r["upsilon"],
            "iterations": r["iterations"],
            "success": r["success"],
            "distortion (successful)": r["distortion_success"],
            "distortion (all)": r["distortion_all"],
        }
        for r in _restore(result.overall)
    ]
    return (
        pd.DataFrame(rows)
        .set_index("Υ")
        .style.format(
            {"success": "{:.1%}", "distortion (successful)": "{:.2%}", "distortion (all)": "{:.2%}"}
        )
        .format_index("{:.1%}")
    )


def correlation_table(result: Result) -> Styler:
    """Rank correlations of A with H and with the success rate at the paper's Υ."""
    gamma: float = papers.PAPERNOT["gamma"]  # type: ignore[assignment]
    rows = []
    for key, label in (("A vs H", "A vs H"), ("A vs success", f"A vs success at Υ = {gamma:.1%}")):
        r = _restore(result.correlations[key])
        rows.append(
            {
                "pair": label,
                "Spearman ρ": r["spearman"],
                "p (ρ)": r["spearman_p"],
                "Kendall τ": r["kendall"],
                "p (τ)": r["kendall_p"],
            }
        )
    return (
        pd.DataFrame(rows)
        .set_index("pair")
        .style.format({"Spearman ρ": "{:.2f}", "Kendall τ": "{:.2f}", "p (ρ)": "{:.1e}", "p (τ)": "{:.1e}"})
    )


def success_curves_figure(result: Result) -> Figure:
    """Success rate against the budget, per source class (mean over targets)."""
    PN: dict[str, Any] = papers.PAPERNOT
    tau = result.tau
    src_curves = {f"source {s}": np.nanmean(tau[:, s, :], axis=1) for s in range(CLASSES)}
    fig = plotting.curves(
        list(result.params["upsilons"]),
        src_curves,  # type: ignore[arg-type]
        xlabel="distortion budget Υ (fraction of pixels)",
        ylabel="success rate (mean over targets)",
        title=f"JSMA success against the budget, per source class ({result.params['model']})",
        marks={f"paper, test set, Υ = {PN['gamma']:.1%}": (PN["gamma"], PN["success"]["test"])},
    )
    fig.axes[0].xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    return fig


def hardness_heatmap_figure(result: Result) -> Figure:
    """The paper's Fig. 14: the hardness matrix."""
    return plotting.heatmap(
        result.hardness_matrix,
        title=f"Hardness H(s, t) = ∫ ε dτ, {result.params['model']} (Fig. 14)",
        fmt=".3f",
        cmap="rocket_r",
        mask_diagonal=True,
    )


def hardness_curves_figure(result: Result) -> Figure:
    """The integral of :func:`hardness` for the hardest and the easiest pair."""
    pairs = [extreme_pair(result.hardness_matrix, "max"), extreme_pair(result.hardness_matrix, "min")]
    return hardness_curve_figure(
        result.tau, result.eps, pairs, title="The integral for the hardest and easiest pair"
    )


def distance_heatmap_figure(result: Result) -> Figure:
    """The paper's Fig. 15: the mean adversarial distance per pair."""
    return plotting.heatmap(
        result.distance_matrix,
        title=f"Adversarial distance A(X, t), mean per pair, {result.params['model']} (Fig. 15)",
        fmt=".2f",
        cmap="rocket_r",
        mask_diagonal=True,
    )


def distance_vs_hardness_figure(result: Result) -> Figure:
    """A against H over the off-diagonal pairs, titled with their rank correlations."""
    rc = _restore(result.correlations["A vs H"])
    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    off = ~np.eye(CLASSES, dtype=bool)
    ax.scatter(result.distance_matrix[off], result.hardness_matrix[off], s=14)
    ax.set_xlabel("adversarial distance A (mean per pair)")
    ax.set_ylabel("hardness H")
    ax.set_title(f"90 pairs: Spearman ρ = {rc['spearman']:.2f}, Kendall τ = {rc['kendall']:.2f}")
    fig.tight_layout()
    plt.close(fig)
    return fig


def headline(result: Result) -> Headline:
    """The chapter's opening box: the success at the paper's budget, and how well the adversarial
    distance predicts the hardness, which Papernot et al. show as matrices and judge by eye."""
    PN: dict[str, Any] = papers.PAPERNOT
    g = glue_values(result)
    ups = PN["hardness_upsilons"]
    return Headline(
        "Papernot et al. (2016), Sec. V-B, Figs. 12 and 13",
        (
            (
                f"success at Υ = {PN['gamma']:.1%}",
                f"{PN['success']['test']:.2%}",
                f"{g['success_at_paper_gamma']:.2%}",
            ),
            (
                "adversarial distance A predicts hardness H",
                "judged from the two matrices",
                f"Spearman ρ = {g['spearman']:.2f} over {g['n_pairs']} pairs ({g['correlation_words']})",
            ),
        ),
        f"hardness by Eq. (10) over {len(ups)} budgets Υ from {ups[0]:.1%} to {ups[-1]:.1%}",
        f"{g['n_attacks']:,} attacks by {g['model']} ({g['epochs']} epochs), "
        f"{len(result.params['upsilons'])} budgets from {g['upsilon_first']:.1%} to {g['upsilon_max']:.1%}",
    )
