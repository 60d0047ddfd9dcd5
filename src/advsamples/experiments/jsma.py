r"""The computations of the JSMA and hardness chapters (Papernot et al. 2016).

- :func:`craft`: every sample of a batch pushed by JSMA toward each of the other classes, with a
  results cache (:func:`cache_key`) so that the two chapters and their reruns share runs;
- :func:`truncate`: the result of the same attacks at a smaller budget, read from one run at a
  larger budget (the attack is deterministic, so a smaller budget only truncates the run);
- :func:`summarize`, :func:`pair_matrix`, :func:`budget_curves`: success rates and distortions,
  overall, per (source, target) pair, and per pair along a list of budgets;
- :func:`trapezoid` and :func:`hardness`: the paper's hardness measure (Eq. 10) by the trapezoid
  rule; :func:`distance_matrix`: the adversarial distance (Eq. 11) per pair;
  :func:`rank_correlation` between two such matrices;
- :func:`logit_margin`, :func:`implied_failure_distortion`: numbers that explain the differences
  from the paper;
- figures: :func:`fig1_figure` (the paper's Fig. 1), :func:`saliency_figure` and
  :func:`settings_figure`.

Every sample draw takes a ``seed`` (see :func:`advsamples.experiments.fgsm.sample_indices`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from scipy import stats
from torch import nn
from tqdm.auto import tqdm

from advsamples import models as M
from advsamples.attacks.jsma import (
    adversarial_distance,
    best_pairs,
    jsma_budget,
    jsma_trace,
    saliency_map,
)
from advsamples.experiments.common import CLASSES, other_targets
from advsamples.paths import results_dir
from advsamples.plotting import finish

__all__ = [
    "CLASSES",
    "Crafted",
    "RankCorrelation",
    "Setting",
    "Summary",
    "budget_curves",
    "cache_dir",
    "cache_key",
    "column_share",
    "concat",
    "craft",
    "distance_matrix",
    "fig1_figure",
    "first_step",
    "hardness",
    "halves",
    "hardness_curve_figure",
    "homogeneity_p",
    "implied_failure_distortion",
    "load_model",
    "logit_margin",
    "other_targets",
    "pair_grid",
    "pair_matrix",
    "rank_correlation",
    "run_setting",
    "saliency_figure",
    "settings_figure",
    "split_half",
    "summarize",
    "trapezoid",
    "truncate",
]

#: Version of the cache format; part of every key, so a format change never reads old files.
_CACHE_VERSION = 1
#: Samples per call of the attack (memory bound: their repeated copies and adversarial versions).
_CHUNK = 500


# --------------------------------------------------------------------------- models
def load_model(name: str, schedule: str, epochs: int | None = None) -> tuple[nn.Module, M.TrainedInfo]:
    """The trained model ``name`` (``epochs`` overrides its schedule) and its checkpoint record,
    whose ``key`` identifies the model in the attack cache."""
    overrides = {} if epochs is None else {"epochs": epochs}
    model = M.get_model(name, schedule, progress=False, **overrides)
    return model, M.model_info(name, schedule, **overrides)


# --------------------------------------------------------------------------- crafting
@dataclass(frozen=True)
class Crafted:
    """Every attack of a run: each sample pushed toward every class but its own, one entry per attack.

    Attributes:
        index: int64 ``(A,)``, the sample's index in its set (as given to :func:`craft`).
        source: int64 ``(A,)``, the sample's true class.
        target: int64 ``(A,)``, the target class.
        success: bool ``(A,)``, the model predicts the target on the adversarial sample.
        iterations: int64 ``(A,)``, feature pairs modified.
        distortion: float32 ``(A,)``, fraction of the features changed.
        gamma: the distortion budget Υ of the run.
        budget: the iteration budget ``floor(n * gamma / 2)``.
        n_features: features per sample ``n``.
        theta: the change applied to each chosen feature.
        use_logits: forward derivative of the logits (True) or of the softmax probabilities.
        x_adv: the adversarial samples ``(A, ...)``, kept only on request (``keep_adv``).
    """

    index: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor
    iterations: torch.Tensor
    distortion: torch.Tensor
    gamma: float
    budget: int
    n_features: int
    theta: float
    use_logits: bool
    x_adv: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.success.numel())

    @property
    def gave_up(self) -> torch.Tensor:
        """bool ``(A,)``: failed before spending the budget (no admissible pair was left)."""
        return ~self.success & (self.iterations < self.budget)

    def select(self, keep: torch.Tensor) -> Crafted:
        """The attacks where the bool mask ``keep`` is True."""
        return replace(
            self,
            index=self.index[keep],
            source=self.source[keep],
            target=self.target[keep],
            success=self.success[keep],
            iterations=self.iterations[keep],
            distortion=self.distortion[keep],
            x_adv=None if self.x_adv is None else self.x_adv[keep],
        )


_TENSORS = ("index", "source", "target", "success", "iterations", "distortion")


def concat(runs: Sequence[Crafted]) -> Crafted:
    """Several runs with the same settings and budget as one (e.g. the three sample sets pooled)."""
    if not runs:
        raise ValueError("runs must hold at least one Crafted")
    first = runs[0]
    for r in runs[1:]:
        if (r.budget, r.n_features, r.theta, r.use_logits) != (
            first.budget,
            first.n_features,
            first.theta,
            first.use_logits,
        ):
            raise ValueError("concat needs runs with the same budget, features, theta and derivative")
    fields = {name: torch.cat([getattr(r, name) for r in runs]) for name in _TENSORS}
    adv = [r.x_adv for r in runs]
    x_adv = torch.cat(adv) if all(a is not None for a in adv) else None  # type: ignore[arg-type]
    return replace(first, x_adv=x_adv, **fields)


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def _state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """``results_dir()/cache/jsma``: the attack cache (git-ignored; the notebooks regenerate it)."""
    d = results_dir() / "cache" / "jsma"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_key(
    model_key: str,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor,
    *,
    theta: float,
    use_logits: bool,
    clip: tuple[float, float],
    classes: int,
) -> str:
    """Key of a run in the cache: the model's checkpoint key, every attack setting but the budget,
    the sample indices and a digest of the samples themselves.

    The budget is left out on purpose: a run at a larger budget answers every smaller one
    (:func:`truncate`), so the cache keeps the run at the largest budget asked for.
    """
    payload = {
        "version": _CACHE_VERSION,
        "model": model_key,
        "theta": float(theta),
        "use_logits": bool(use_logits),
        "clip": [float(c) for c in clip],
        "classes": int(classes),
        "indices": _digest(indices.long()),
        "n": int(len(indices)),
        "x": _digest(x),
        "y": _digest(y.long()),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _save(path: Path, c: Crafted) -> None:
    blob: dict[str, object] = {name: getattr(c, name) for name in _TENSORS}
    blob["meta"] = json.dumps(
        {
            "gamma": c.gamma,
            "budget": c.budget,
            "n_features": c.n_features,
            "theta": c.theta,
            "use_logits": c.use_logits,
        }
    )
    if c.x_adv is not None:
        blob["x_adv"] = c.x_adv
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _load(path: Path) -> Crafted | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        return Crafted(
            **{name: blob[name] for name in _TENSORS},
            gamma=float(meta["gamma"]),
            budget=int(meta["budget"]),
            n_features=int(meta["n_features"]),
            theta=float(meta["theta"]),
            use_logits=bool(meta["use_logits"]),
            x_adv=blob.get("x_adv"),
        )
    except Exception:  # unreadable or half-written file: recompute
        return None


def craft(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor | None = None,
    *,
    theta: float = 1.0,
    gamma: float = 0.145,
    use_logits: bool = True,
    clip: tuple[float, float] = (0.0, 1.0),
    classes: int | None = None,
    model_key: str | None = None,
    cache: bool = True,
    keep_adv: bool = False,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "JSMA",
) -> Crafted:
    """JSMA from every sample of ``x`` toward each of the ``classes - 1`` classes other than its
    label ``y`` (the paper's protocol), at budget ``gamma``.

    Args:
        model: the classifier (logits out).
        x, y: the samples and their true labels (the source classes).
        indices: the samples' indices in their set (recorded, and part of the cache key);
            default ``arange(len(x))``.
        theta, gamma, use_logits, clip: as in :func:`advsamples.attacks.jsma.jsma_trace`.
        classes: number of classes (default: the width of the model's output).
        model_key: the model's identity in the cache (its checkpoint key); default a digest of
            its weights.
        cache: read and write ``cache_dir()``. A cached run at a budget ``>= gamma`` with
            the same key answers by :func:`truncate`; otherwise the run is computed and stored.
        keep_adv: also return the adversarial samples (a cached run without them, or one at
            another budget, is then computed again).
        batch_size: rows the attack works on together.
        progress: a tqdm bar over the attacks.
        desc: the bar's label.

    Returns:
        a :class:`Crafted` with ``len(x) * (classes - 1)`` attacks, sample by sample, targets in
        increasing order.

    Raises:
        ValueError: on empty or mismatched inputs, labels outside ``[0, classes)`` or bad settings.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError("x must be a non-empty batch of samples shaped (N, ...)")
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):
        raise ValueError(f"y must be a tensor of {len(x)} labels, got {getattr(y, 'shape', y)!r}")
    if classes is None:
        with torch.no_grad():
            classes = int(model(x[:1]).shape[1])
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ValueError(f"classes must be an integer >= 2, got classes={classes!r}")
    if int(y.min()) < 0 or int(y.max()) >= classes:
        raise ValueError(f"labels y must lie in [0, {classes}), got [{int(y.min())}, {int(y.max())}]")
    g = float(gamma)
    if not (math.isfinite(g) and 0.0 < g <= 1.0):
        raise ValueError(f"gamma must lie in (0, 1], got gamma={gamma!r}")
    idx = torch.arange(len(x)) if indices is None else torch.as_tensor(indices).long()
    if idx.shape != (len(x),):
        raise ValueError(f"indices must hold one index per sample ({len(x)}), got shape {tuple(idx.shape)}")
    y = y.long()
    n_features = math.prod(x.shape[1:])
    path = None
    if cache:
        key = cache_key(
            model_key or _state_digest(model),
            x,
            y,
            idx,
            theta=theta,
            use_logits=use_logits,
            clip=clip,
            classes=classes,
        )
        path = cache_dir() / f"{key}.pt"
        hit = _load(path) if path.exists() else None
        if hit is not None and hit.gamma >= g:
            if not keep_adv:
                return truncate(replace(hit, x_adv=None), g)
            if hit.x_adv is not None and jsma_budget(n_features, g) == hit.budget:
                return replace(hit, gamma=g)
    rows, targets = other_targets(y, classes)
    parts = []
    bar = tqdm(total=len(rows), desc=desc, unit="attack", disable=not progress)
    try:
        per = _CHUNK * (classes - 1)
        for a in range(0, len(rows), per):
            r, t = rows[a : a + per], targets[a : a + per]
            res = jsma_trace(
                model,
                x[r],
                t,
                theta=theta,
                gamma=g,
                use_logits=use_logits,
                clip=clip,
                batch_size=batch_size,
            )
            parts.append(res)
            bar.update(len(r))
    finally:
        bar.close()
    out = Crafted(
        index=idx[rows],
        source=y[rows],
        target=targets,
        success=torch.cat([p.success for p in parts]).cpu(),
        iterations=torch.cat([p.iterations for p in parts]).cpu(),
        distortion=torch.cat([p.distortion for p in parts]).float().cpu(),
        gamma=g,
        budget=parts[0].budget,
        n_features=n_features,
        theta=float(theta),
        use_logits=bool(use_logits),
        x_adv=torch.cat([p.x_adv for p in parts]).cpu() if keep_adv else None,
    )
    if path is not None:
        old = _load(path) if path.exists() else None
        if old is None or old.gamma <= g:  # keep the run at the largest budget
            _save(path, out)
    return out


def truncate(c: Crafted, gamma: float) -> Crafted:
    """The run ``c`` as it would have ended at the smaller budget ``gamma``.

    With ``k = floor(n * gamma / 2)`` iterations allowed: an attack succeeds iff it succeeded in
    ``c`` within ``k`` iterations; an attack that used at most ``k`` iterations is unchanged;
    one that used more stops after ``k`` with ``2k`` changed features (every iteration changes
    two features of the search domain), a distortion of ``2k / n``. ``x_adv`` is kept only when
    the iteration budget is the same. ``tests/test_experiments_jsma.py`` checks this rule
    against actual runs at the smaller budget.
    """
    g = float(gamma)
    if not (math.isfinite(g) and 0.0 < g <= 1.0):
        raise ValueError(f"gamma must lie in (0, 1], got gamma={gamma!r}")
    k = jsma_budget(c.n_features, g)
    if k > c.budget:
        raise ValueError(f"gamma={gamma!r} needs {k} iterations, more than the run's budget {c.budget}")
    if k == c.budget:
        return replace(c, gamma=g)
    within = c.iterations <= k
    capped = torch.full_like(c.distortion, 2 * k) / c.n_features
    return replace(
        c,
        success=c.success & within,
        iterations=c.iterations.clamp(max=k),
        distortion=torch.where(within, c.distortion, capped),
        gamma=g,
        budget=k,
        x_adv=None,
    )


# --------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Summary:
    """Outcome of a run, the paper's Fig. 11 columns.

    Attributes:
        success: fraction of the attacks that reach their target.
        distortion_all: mean distortion over every attack (a failure counts what it changed).
        distortion_success: mean distortion over the successful attacks (NaN if none).
        gave_up: fraction that stopped early for want of an admissible pair.
        at_start: fraction already classified as the target before any change.
        n_attacks: number of attacks.
        n_samples: number of distinct samples.
    """

    success: float
    distortion_all: float
    distortion_success: float
    gave_up: float
    at_start: float
    n_attacks: int
    n_samples: int


def summarize(c: Crafted) -> Summary:
    """The :class:`Summary` of a run (or of a :meth:`Crafted.select` part of it)."""
    if len(c) == 0:
        raise ValueError("cannot summarize an empty run")
    s = c.success
    d = c.distortion.double()
    return Summary(
        success=float(s.double().mean()),
        distortion_all=float(d.mean()),
        distortion_success=float(d[s].mean()) if bool(s.any()) else math.nan,
        gave_up=float(c.gave_up.double().mean()),
        at_start=float((s & (c.iterations == 0)).double().mean()),
        n_attacks=len(c),
        n_samples=int(c.index.unique().numel()),
    )


PairValue = Literal["success", "distortion_success", "distortion_all", "count"]


def pair_matrix(c: Crafted, value: PairValue = "success", classes: int = CLASSES) -> np.ndarray:
    """``(classes, classes)`` matrix over (source row, target column) pairs of ``value``: the
    success rate, the mean distortion of the successful attacks, of all attacks, or the number
    of attacks. The diagonal, and any pair without attacks (or without success for
    ``distortion_success``), is NaN."""
    if value not in ("success", "distortion_success", "distortion_all", "count"):
        raise ValueError(f"unknown value={value!r}")
    pair = (c.source * classes + c.target).numpy()
    size = classes * classes
    count = np.bincount(pair, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if value == "count":
            out = count
        elif value == "success":
            out = np.bincount(pair, weights=c.success.double().numpy(), minlength=size) / count
        elif value == "distortion_all":
            out = np.bincount(pair, weights=c.distortion.double().numpy(), minlength=size) / count
        else:
            s = c.success.numpy()
            n_s = np.bincount(pair[s], minlength=size).astype(float)
            out = np.bincount(pair[s], weights=c.distortion.double().numpy()[s], minlength=size) / n_s
    out = np.where(count > 0, out, np.nan).reshape(classes, classes)
    np.fill_diagonal(out, np.nan)
    return out


def budget_curves(
    c: Crafted, upsilons: Sequence[float], classes: int = CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the success rate τ(s, t, Υ) and the mean distortion of the successful attacks
    ε(s, t, Υ) at each budget Υ of ``upsilons`` (each at most the run's), read from the one
    run ``c`` by :func:`truncate`. Returns two ``(G, classes, classes)`` arrays (NaN diagonal;
    ε is NaN where no attack of the pair succeeds)."""
    if len(upsilons) == 0:
        raise ValueError("upsilons must hold at least one budget")
    tau, eps = [], []
    for u in upsilons:
        t = truncate(c, u)
        tau.append(pair_matrix(t, "success", classes))
        eps.append(pair_matrix(t, "distortion_success", classes))
    return np.stack(tau), np.stack(eps)


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
    pair search, :func:`advsamples.attacks.jsma.best_pairs`, on the same forward derivative) is set
    to 1. Rows without an admissible pair get a change of 0. Returns ``(gap, gain)``, float64 ``(N,)``.

    ``-gap / gain`` estimates how many pairs the attack needs at its first step's rate; it tells
    why a derivative or a model needs more or fewer iterations.
    """
    gaps, gains = [], []
    for a0 in range(0, len(x), batch_size):
        xb, tb = x[a0 : a0 + batch_size], target[a0 : a0 + batch_size].long()
        xr = xb.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            z = model(xr)
            onehot = torch.nn.functional.one_hot(tb, z.shape[1]).to(z.dtype)
            if use_logits:
                (a,) = torch.autograd.grad(z, xr, onehot, retain_graph=True)
                (b,) = torch.autograd.grad(z, xr, 1.0 - onehot)
            else:
                (a,) = torch.autograd.grad(torch.softmax(z, dim=1), xr, onehot)
                b = -a
        r = len(xb)
        flat = xb.detach().reshape(r, -1)
        p, q, found = best_pairs(a.reshape(r, -1), b.reshape(r, -1), flat < 1.0, 1)
        x1 = flat.clone()
        rows = torch.arange(r)[found]
        x1[rows, p[found]] = 1.0
        x1[rows, q[found]] = 1.0
        with torch.no_grad():
            z1 = model(x1.reshape(xb.shape))
        gaps.append(_gap(z.detach(), tb))
        gains.append(torch.where(found, _gap(z1, tb) - _gap(z.detach(), tb), 0.0))
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


def saliency_figure(
    model: nn.Module, x: torch.Tensor, source: int, targets: Sequence[int], *, use_logits: bool = True
) -> Figure:
    """One digit ``x`` (``(1, 28, 28)``) and its first-iteration saliency maps S(X, t) (Eq. 8) toward
    each of ``targets``, each map titled with the share of features where it is positive."""
    k = len(targets)
    batch = x.unsqueeze(0).expand(k, *x.shape).contiguous()
    maps = saliency_map(model, batch, torch.tensor(list(targets)), use_logits=use_logits)
    fig, axes = plt.subplots(1, k + 1, figsize=(2.0 * (k + 1), 2.4))
    axes[0].imshow(x.reshape(28, 28).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"digit (class {source})", fontsize=9)
    for ax, t, m in zip(axes[1:], targets, maps, strict=True):
        img = m.reshape(28, 28).numpy()
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


def homogeneity_p(runs: Sequence[Crafted]) -> float:
    """p-value of the chi-square test that several runs (e.g. the three sample sets) share one
    success rate (scipy.stats.chi2_contingency on their success / failure counts). The attacks of
    one digit are not independent, so the p-value is, if anything, too small."""
    if len(runs) < 2:
        raise ValueError("homogeneity_p needs at least two runs")
    table = np.array([[int(r.success.sum()), int((~r.success).sum())] for r in runs])
    if (table.sum(axis=0) == 0).any():
        return 1.0  # every attack succeeded (or failed) in every run: nothing differs
    return float(stats.chi2_contingency(table).pvalue)


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
