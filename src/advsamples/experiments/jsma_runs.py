r"""The JSMA runs both Papernot et al. chapters share (the JSMA and the hardness chapters).

- :func:`load_model`: a trained model and its checkpoint record (its key identifies it in caches);
- :func:`craft`: every sample of a batch pushed by JSMA toward each of the other classes, with a
  results cache (:func:`cache_key`) so that the two chapters and their reruns share runs; the run
  is saved chunk by chunk while it is computed, so a killed run resumes where it stopped;
- :func:`truncate`: the result of the same attacks at a smaller budget, read from one run at a
  larger budget (the attack is deterministic, so a smaller budget only truncates the run);
- :func:`summarize`, :func:`pair_matrix`, :func:`budget_curves`: success rates and distortions,
  overall, per (source, target) pair, and per pair along a list of budgets;
- :func:`homogeneity_p`: whether several runs (the sample sets) share one success rate.

Both chapter modules (:mod:`advsamples.experiments.jsma`, :mod:`advsamples.experiments.hardness`)
import this one; neither imports the other.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from scipy import stats
from torch import nn
from tqdm.auto import tqdm

from advsamples import models as M
from advsamples.artifacts import frozen, refuse
from advsamples.attacks.jsma import jsma_budget, jsma_trace
from advsamples.chapter import add_resumed_seconds, count_elsewhere
from advsamples.device import device
from advsamples.experiments.common import CLASSES, other_targets
from advsamples.paths import cache_dir as _cache_root

__all__ = [
    "CLASSES",
    "Crafted",
    "PairValue",
    "Summary",
    "budget_curves",
    "cache_dir",
    "cache_key",
    "chunk_dir",
    "concat",
    "craft",
    "homogeneity_p",
    "load_model",
    "other_targets",
    "pair_matrix",
    "summarize",
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
    overrides: dict[str, Any] = {} if epochs is None else {"epochs": epochs}
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
    fields: dict[str, Any] = {name: torch.cat([getattr(r, name) for r in runs]) for name in _TENSORS}
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
    """``cache_dir()/jsma``: the attack cache (git-ignored for CI-sized runs; a published profile
    commits its runs' compact per-attack arrays)."""
    d = _cache_root() / "jsma"
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
    domain: str = "movable",
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
    if domain != "movable":  # the default keeps the keys runs were cached under before the option
        payload["domain"] = domain
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _seconds(path: Path) -> float:
    """The compute seconds a saved chunk records (0 for chunks saved before they were recorded)."""
    try:
        return float(
            json.loads(torch.load(path, map_location="cpu", weights_only=True)["meta"]).get("seconds", 0.0)
        )
    except Exception:
        return 0.0


def _save(path: Path, c: Crafted, seconds: float | None = None) -> None:
    # clone: a slice saved as is would carry its whole underlying storage (the full run's arrays)
    blob: dict[str, object] = {name: getattr(c, name).clone() for name in _TENSORS}
    blob["meta"] = json.dumps(
        {
            "gamma": c.gamma,
            "budget": c.budget,
            "n_features": c.n_features,
            "theta": c.theta,
            "use_logits": c.use_logits,
        }
        | ({} if seconds is None else {"seconds": round(seconds, 3)})
    )
    if c.x_adv is not None:
        blob["x_adv"] = c.x_adv.clone()
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
    store_adv: bool = True,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "JSMA",
    domain: Literal["movable", "all"] = "movable",
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
            While it is computed, each chunk of ``_CHUNK`` samples is saved as soon as it is done
            (:func:`chunk_dir`), so that a run killed mid-way resumes at the first missing chunk,
            redoes at most the chunk it was computing, and ends in the same tensors as an
            uninterrupted run.
        keep_adv: also return the adversarial samples (a cached run without them, or one at
            another budget, is then computed again).
        store_adv: with ``keep_adv``, also keep the adversarial samples in the cached run;
            ``False`` caches the compact per-attack arrays only (the samples are returned, and
            computed again by a later call that asks for them).
        batch_size: rows the attack works on together.
        progress: a tqdm bar over the attacks.
        desc: the bar's label.
        domain: the attack's initial search domain (:func:`advsamples.attacks.jsma.jsma_trace`).

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
    parts_dir = None
    per = _CHUNK * (classes - 1)
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
            domain=domain,
        )
        path = cache_dir() / f"{key}.pt"
        hit = _load(path) if path.exists() else None
        if hit is not None and hit.gamma >= g:
            # a finished run's compute is counted once, by the run ledger, not by its readers
            if not keep_adv:
                return truncate(replace(hit, x_adv=None), g)
            if hit.x_adv is not None and jsma_budget(n_features, g) == hit.budget:
                return replace(hit, gamma=g)
        if frozen():
            raise refuse(
                path,
                "missing or damaged published JSMA run" if path.exists() else "missing published JSMA run",
            )
        parts_dir = chunk_dir(key, jsma_budget(n_features, g), per, keep_adv)
    rows, targets = other_targets(y, classes)
    dev = device()  # CUDA when there is one: the attack runs there on a copy of the model
    attacked = model if dev.type == "cpu" else copy.deepcopy(model).to(dev)
    parts: list[Crafted] = []
    run_seconds: list[float] = []  # compute seconds of each chunk (read back for resumed ones)
    resumed_seconds = 0.0  # of those, the chunks' read back
    bar = tqdm(total=len(rows), desc=desc, unit="attack", disable=not progress)
    try:
        for a in range(0, len(rows), per):
            r, t = rows[a : a + per], targets[a : a + per]
            part_path = None if parts_dir is None else parts_dir / f"{a:09d}-{a + len(r):09d}.pt"
            part = _load(part_path) if part_path is not None and part_path.exists() else None
            if part is not None and len(part) == len(r) and part_path is not None:
                run_seconds.append(_seconds(part_path))
                resumed_seconds += run_seconds[-1]
            else:
                started = time.perf_counter()
                res = jsma_trace(
                    attacked,
                    x[r].to(dev),
                    t.to(dev),
                    theta=theta,
                    gamma=g,
                    use_logits=use_logits,
                    clip=clip,
                    batch_size=batch_size,
                    domain=domain,
                )
                part = Crafted(
                    index=idx[r],
                    source=y[r],
                    target=t,
                    success=res.success.cpu(),
                    iterations=res.iterations.cpu(),
                    distortion=res.distortion.float().cpu(),
                    gamma=g,
                    budget=res.budget,
                    n_features=n_features,
                    theta=float(theta),
                    use_logits=bool(use_logits),
                    x_adv=res.x_adv.cpu() if keep_adv else None,
                )
                run_seconds.append(time.perf_counter() - started)
                if part_path is not None:
                    _save(part_path, part, seconds=run_seconds[-1])
            parts.append(part)
            bar.update(len(r))
    finally:
        bar.close()
    out = replace(concat(parts), gamma=g)
    saved = False
    if path is not None:
        old = _load(path) if path.exists() else None
        if old is None or old.gamma <= g:  # keep the run at the largest budget
            _save(path, out if store_adv else replace(out, x_adv=None), seconds=sum(run_seconds))
            saved = True
        if parts_dir is not None:
            shutil.rmtree(parts_dir, ignore_errors=True)  # the whole run is saved: chunks are spent
    if saved:
        # the saved run records its seconds and is counted once, in the run ledger, not in the
        # time of whichever chapter happened to compute it
        count_elsewhere(sum(run_seconds) - resumed_seconds)
    else:
        add_resumed_seconds(resumed_seconds)
    return out


def chunk_dir(key: str, budget: int, per: int, keep_adv: bool) -> Path:
    """Folder of the chunks of the run ``key`` at iteration ``budget`` while it is computed, one
    file per ``per`` attacks (``_CHUNK`` samples); removed once the whole run is saved."""
    d = cache_dir() / f"{key}.chunks-b{budget}-n{per}{'-adv' if keep_adv else ''}"
    d.mkdir(parents=True, exist_ok=True)
    return d


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
