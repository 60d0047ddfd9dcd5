r"""The libraries chapter: our attacks beside the ones people use, on the same models and digits.

Each attack is run by ours and by every library that ships it (:mod:`advsamples.peers`), with
the same settings, on the same correctly classified test digits (each with one random other
class as its target), and compared sample by sample:

- **FGSM** and **PGD** (untargeted, L∞, PGD without a random start): the largest absolute
  difference between each library's adversarial batch and ours, and the error rates;
- **JSMA** (θ = +1 and θ = −1, Υ = 14.5%, the logits): the share of attacks whose adversarial
  sample is *identical* to ours, the success, the L0 distance and the budget each respects; and
  for each departure an experiment that tests its cause: our attack run with advertorch's
  search domain (every feature), with torchattacks' rule (the budget rounded up, the domain
  ``x < 0.99``), and ART's first pick against the top two of the target's gradient;
- **C&W L2** and **L-BFGS** (targeted): success and the L2 distance of the successes;
  advertorch's L-BFGS also untargeted;
- the seconds per attack of each, one thread, in this process; and the side-by-side JSMA
  benchmark, each implementation in its own process (:func:`advsamples.bench.bench_jsma_peers`).

The chapter's shape (see :mod:`advsamples.chapter`): :class:`Params`, :func:`run` (cached; each
attack's digits in chunks, so that a killed run resumes), :func:`glue_values`, :func:`headline`,
and the views :func:`agreement_table`, :func:`speed_table` and :func:`agreement_figure`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler
from torch import nn

from advsamples import bench, peers, plotting
from advsamples import models as M
from advsamples.attacks.jsma import forward_derivative, jsma_budget, jsma_trace
from advsamples.attacks.pgd import STEP_FACTOR
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, chunked, param
from advsamples.data import load_mnist
from advsamples.experiments.common import correct_indices, random_targets
from advsamples.params import check_choices, check_count, check_int, check_number

__all__ = [
    "ATTACKS",
    "CHUNK",
    "Params",
    "Result",
    "agreement_figure",
    "agreement_frame",
    "agreement_table",
    "art_phrase",
    "attack_chunk",
    "cells",
    "experiment_chunk",
    "glue_values",
    "headline",
    "rates_phrase",
    "ratio_phrase",
    "run",
    "settings",
    "speed_frame",
    "speed_table",
    "torchattacks_domain",
    "torchattacks_gamma",
    "torchattacks_rule",
]

_VERSION = 1  # the attack and experiment chunks
#: The whole result's (2: the benchmark's bound at the attack's own batch sizes; 3: timed again
#: after the pair search's strips, same answers).
_RESULT_VERSION = 3
#: The benchmark's (2: it also times the network passes at the attack's own batch sizes; 3: our
#: JSMA's pair search certifies with strips, same pairs in about half the time on the CNN).
_BENCH_VERSION = 3
_TEST_DIGITS = 10000
_MAX_SEED = 2**31 - 1
#: Digits per chunk (a killed run loses at most one chunk of one attack).
CHUNK = 25
#: The attacks compared, in the order of the result's cells: the attack's name here, the
#: adapter's name in :data:`advsamples.peers.ADAPTERS`, and whether it is targeted.
ATTACKS: dict[str, tuple[str, bool]] = {
    "fgsm": ("fgsm", False),
    "pgd": ("pgd", False),
    "jsma": ("jsma", True),
    "jsma_neg": ("jsma", True),
    "cw": ("cw", True),
    "lbfgs": ("lbfgs", True),
    "lbfgs_untargeted": ("lbfgs", False),
}
_LABELS = {
    "fgsm": "FGSM",
    "pgd": "PGD",
    "jsma": "JSMA, θ = +1",
    "jsma_neg": "JSMA, θ = −1",
    "cw": "C&W L2",
    "lbfgs": "L-BFGS",
    "lbfgs_untargeted": "L-BFGS, untargeted",
}
#: How the prose names each model (its key where it is not listed here).
MODEL_WORDS = {"lenet_paper": "the LeNet", "cwnet": "the CNN"}
#: The distance each attack is measured by.
_NORM = {
    "fgsm": "L∞",
    "pgd": "L∞",
    "jsma": "L0",
    "jsma_neg": "L0",
    "cw": "L2",
    "lbfgs": "L2",
    "lbfgs_untargeted": "L2",
}
#: Attacks run on the first ``n_slow`` digits only (the iterative, costly ones).
_SLOW = frozenset({"cw", "lbfgs", "lbfgs_untargeted"})
#: torchattacks' initial JSMA search domain: pixels below this (θ > 0), above 1 − this (θ < 0).
TORCHATTACKS_DOMAIN = 0.99


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the libraries chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "libraries"

    models: list[str] = param(
        ["lenet_paper", "cwnet"], "the models attacked: the paper's LeNet and C&W's larger CNN"
    )
    n_digits: int = param(6, "correctly classified test digits per model (FGSM, PGD, JSMA)")
    n_slow: int = param(2, "of those, the first digits C&W and L-BFGS attack")
    fgsm_eps: float = param(0.25, "FGSM: the L∞ budget ε (Goodfellow et al.'s MNIST value)")
    pgd_eps: float = param(0.1, "PGD: the L∞ budget ε")
    pgd_steps: int = param(10, "PGD: steps, each of 2.5·ε/steps, no random start")
    gamma: float = param(0.145, "JSMA: the maximum distortion Υ (Papernot et al.'s 14.5%)")
    cw_search: int = param(5, "C&W: rounds of the binary search on c")
    cw_steps: int = param(200, "C&W: Adam steps per round (libraries that stop early may)")
    cw_lr: float = param(0.01, "C&W: Adam's learning rate")
    cw_c: float = param(1.0, "C&W: the first c of the search")
    lbfgs_search: int = param(4, "L-BFGS: rounds of the search on c")
    lbfgs_iter: int = param(50, "L-BFGS: L-BFGS-B iterations per optimisation")
    lbfgs_c: float = param(0.1, "L-BFGS: the first c of the search")
    libraries: list[str] = param(
        list(peers.LIBRARIES), "the libraries run beside ours (each where it ships the attack)"
    )
    bench_samples: int = param(
        20, "side-by-side JSMA benchmark: attacks per implementation, each in its own process"
    )
    seed: int = param(0, "seed of the digits and targets")

    def validate(self) -> None:
        super().validate()
        check_choices("models", self.models, (*M.MODEL_KEYS, *M.EXTRA_NAMES))
        check_count("n_digits", self.n_digits, _TEST_DIGITS, "test digits")
        check_int("n_slow", self.n_slow, 1, self.n_digits, "at most n_digits")
        check_number("fgsm_eps", self.fgsm_eps, lo=0, lo_open=True, hi=1)
        check_number("pgd_eps", self.pgd_eps, lo=0, lo_open=True, hi=1)
        check_int("pgd_steps", self.pgd_steps, 1, 1000, "a bound that keeps the run finite")
        check_number("gamma", self.gamma, lo=0, lo_open=True, hi=1)
        check_int("cw_search", self.cw_search, 1, 50, "the attack's bound")
        check_int("cw_steps", self.cw_steps, 1, 100_000, "the attack's bound")
        check_number("cw_lr", self.cw_lr, lo=0, lo_open=True, hi=10)
        check_number("cw_c", self.cw_c, lo=0, lo_open=True, hi=1e6)
        check_int("lbfgs_search", self.lbfgs_search, 1, 50, "the attack's bound")
        check_int("lbfgs_iter", self.lbfgs_iter, 1, 100_000, "the attack's bound")
        check_number("lbfgs_c", self.lbfgs_c, lo=0, lo_open=True, hi=1e6)
        check_choices("libraries", self.libraries, peers.LIBRARIES, min_len=0)
        check_int("bench_samples", self.bench_samples, 0, _TEST_DIGITS, "test digits")
        check_int("seed", self.seed, 0, _MAX_SEED, "a 31-bit torch seed")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}


def settings(params: Params, attack: str) -> dict[str, Any]:
    """The keyword settings every implementation of ``attack`` gets (see :mod:`advsamples.peers`)."""
    p = params
    if attack == "fgsm":
        return {"eps": p.fgsm_eps}
    if attack == "pgd":
        return {"eps": p.pgd_eps, "steps": p.pgd_steps, "alpha": STEP_FACTOR * p.pgd_eps / p.pgd_steps}
    if attack in ("jsma", "jsma_neg"):
        return {"theta": 1.0 if attack == "jsma" else -1.0, "gamma": p.gamma}
    if attack == "cw":
        return {"search_steps": p.cw_search, "max_iter": p.cw_steps, "lr": p.cw_lr, "c_init": p.cw_c}
    if attack == "lbfgs":
        return {"search_steps": p.lbfgs_search, "max_iter": p.lbfgs_iter, "c_init": p.lbfgs_c}
    if attack == "lbfgs_untargeted":
        return {**settings(p, "lbfgs"), "targeted": False}
    raise ValueError(f"unknown attack={attack!r}; choose one of {list(ATTACKS)}")


def cells(params: Params | dict[str, Any]) -> list[tuple[str, str]]:
    """``(attack, implementation)`` in the result's order: each attack's ours first (where we
    have it), then the chosen libraries that ship it."""
    libs = params.libraries if isinstance(params, Params) else params["libraries"]
    out: list[tuple[str, str]] = []
    for attack, (adapter, _) in ATTACKS.items():
        have = peers.ATTACK_LIBRARIES[adapter]
        if attack == "lbfgs_untargeted":  # ours is targeted only (Szegedy et al.'s problem)
            have = tuple(lib for lib in have if lib != "ours")
        out += [(attack, lib) for lib in have if lib == "ours" or lib in libs]
    return out


def _distance(attack: str, x: torch.Tensor, x_adv: torch.Tensor) -> np.ndarray:
    d = (x_adv - x).reshape(len(x), -1).double()
    norm = _NORM[attack]
    if norm == "L0":
        return (d != 0).sum(1).numpy().astype(float)
    if norm == "L2":
        return d.norm(dim=1).numpy()
    return d.abs().amax(1).numpy()


def attack_chunk(
    params: Params, attack: str, net: nn.Module, x: torch.Tensor, labels: torch.Tensor
) -> dict[str, np.ndarray]:
    """Every implementation of ``attack`` on one chunk ``(x, labels)``; per implementation
    ``<lib>_success`` (the target reached, or the digit misclassified when untargeted),
    ``<lib>_distance`` (the attack's norm), ``<lib>_same`` (bitwise equal to ours; NaN without
    ours), ``<lib>_maxdiff`` (largest absolute difference from ours) and ``<lib>_seconds``
    (the chunk's seconds per attack, one value per digit)."""
    adapter, targeted = ATTACKS[attack]
    kw = settings(params, attack)
    y = labels
    out: dict[str, np.ndarray] = {}
    ours: torch.Tensor | None = None
    k = len(x)
    for a, lib in cells(params):
        if a != attack:
            continue
        peers.load(lib)  # its import is not part of its time
        t0 = time.perf_counter()
        x_adv = peers.craft(adapter, lib, net, x, y, **kw)
        dt = time.perf_counter() - t0
        with torch.no_grad():
            pred = net(x_adv).argmax(1)
        out[f"{lib}_success"] = (pred == y).numpy() if targeted else (pred != y).numpy()
        out[f"{lib}_distance"] = _distance(attack, x, x_adv)
        if lib == "ours":
            ours = x_adv
        if ours is None:
            out[f"{lib}_same"] = np.full(k, np.nan)
            out[f"{lib}_maxdiff"] = np.full(k, np.nan)
        else:
            diff = (x_adv - ours).reshape(k, -1).abs().amax(1)
            out[f"{lib}_same"] = (diff == 0).numpy().astype(float)
            out[f"{lib}_maxdiff"] = diff.double().numpy()
        out[f"{lib}_seconds"] = np.full(k, dt / k)
    return out


# --------------------------------------------------------------------------- the JSMA experiments
def torchattacks_gamma(n_features: int, gamma: float) -> float:
    """The Υ at which our budget ``floor(n·Υ/2)`` equals torchattacks' ``ceil(n·γ/2)``."""
    return (2 * math.ceil(n_features * gamma / 2) + 0.5) / n_features


def torchattacks_domain(x: torch.Tensor, theta: float) -> torch.Tensor:
    """torchattacks' initial JSMA search domain: ``x < 0.99`` for θ > 0, ``x > 0.01`` for θ < 0."""
    flat = x.reshape(len(x), -1)
    return flat < TORCHATTACKS_DOMAIN if theta > 0 else flat > 1 - TORCHATTACKS_DOMAIN


def torchattacks_rule(
    net: nn.Module, x: torch.Tensor, t: torch.Tensor, theta: float, gamma: float
) -> torch.Tensor:
    r"""Our JSMA under torchattacks' three rules: the budget rounded up
    (:func:`torchattacks_gamma`), the initial domain of :func:`torchattacks_domain`, and what it
    does when no pair is admissible: it does not stop, but takes the argmax of an all-zero map,
    the pair (0, 0), adds θ twice to pixel 0 and goes on (a wasted iteration once pixel 0 is at
    its bound). Each row that runs out of pairs with budget left has pixel 0 moved so, and the
    attack continues from there with the budget that is left. At θ < 0 its map
    :math:`\alpha\,|\beta|` has :math:`\alpha < 0` wherever a pair is admissible, so it is
    never positive and the argmax is always the map's first zero, the diagonal entry (0, 0):
    every iteration is that pair, as if none were admissible (an empty domain here)."""
    n = x[0].numel()
    lo, hi = 0.0, 1.0
    left = torch.full((len(x),), math.ceil(n * gamma / 2), dtype=torch.long)
    cur = x.clone()
    dom = torchattacks_domain(x, theta) if theta > 0 else torch.zeros(len(x), n, dtype=torch.bool)
    todo = torch.arange(len(x))
    while todo.numel():
        rows = [todo[left[todo] == b] for b in left[todo].unique().tolist()]
        nxt = []
        for r in rows:
            b = int(left[r[0]])
            res = jsma_trace(net, cur[r], t[r], theta=theta, gamma=(2 * b + 0.5) / n, domain=dom[r])
            moved = res.x_adv.reshape(len(r), -1) != cur[r].reshape(len(r), -1)
            dom[r] &= ~moved
            cur[r] = res.x_adv
            left[r] -= res.iterations
            stuck = ~res.success & (left[r] > 0)
            for i in r[stuck].tolist():
                flat = cur[i].reshape(-1)
                before = float(flat[0])
                flat[0] = min(max(before + 2 * theta, lo), hi)
                dom[i].reshape(-1)[0] = False
                left[i] -= 1
                with torch.no_grad():
                    hit = int(net(cur[i : i + 1]).argmax(1)) == int(t[i])
                if flat[0] != before and not hit and left[i] > 0:
                    nxt.append(i)  # the input changed: the map may have admissible pairs again
        todo = torch.tensor(nxt, dtype=torch.long)
    return cur


def _changed(x: torch.Tensor, x_adv: torch.Tensor) -> list[frozenset[int]]:
    d = (x_adv != x).reshape(len(x), -1)
    return [frozenset(row.nonzero()[:, 0].tolist()) for row in d]


def experiment_chunk(
    params: Params, net: nn.Module, x: torch.Tensor, t: torch.Tensor, libs: list[str]
) -> dict[str, np.ndarray]:
    """The experiments that test the causes of the JSMA departures, per digit (bool as 0/1):

    - ``advertorch_all_<s>``: our attack with ``domain="all"`` (every feature, advertorch's
      Γ) gives advertorch's sample, at θ = +1 (``s = pos``) and −1 (``neg``);
    - ``torchattacks_rule_<s>``: our attack under torchattacks' rules (:func:`torchattacks_rule`)
      gives torchattacks' sample;
    - ``art_first_top2`` / ``art_first_ours``: ART's first pair (one iteration) is the top two of
      the target's gradient over the domain / is our first pair (the pair saliency map).

    A library left out of ``libs`` gives NaN rows."""
    k, n = len(x), x[0].numel()
    out: dict[str, np.ndarray] = {}
    for s, theta in (("pos", 1.0), ("neg", -1.0)):
        g = params.gamma
        if "advertorch" in libs:
            theirs = peers.craft("jsma", "advertorch", net, x, t, theta=theta, gamma=g)
            mine = jsma_trace(net, x, t, theta=theta, gamma=g, domain="all").x_adv
            out[f"advertorch_all_{s}"] = (theirs == mine).reshape(k, -1).all(1).numpy().astype(float)
        else:
            out[f"advertorch_all_{s}"] = np.full(k, np.nan)
        if "torchattacks" in libs:
            theirs = peers.craft("jsma", "torchattacks", net, x, t, theta=theta, gamma=g)
            mine = torchattacks_rule(net, x, t, theta, g)
            out[f"torchattacks_rule_{s}"] = (theirs == mine).reshape(k, -1).all(1).numpy().astype(float)
        else:
            out[f"torchattacks_rule_{s}"] = np.full(k, np.nan)
    if "art" in libs:
        # ART continues while the changed fraction is <= γ: γ = 1/n stops it after one pair.
        first_art = _changed(x, peers.craft("jsma", "art", net, x, t, theta=1.0, gamma=1.0 / n))
        first_ours = _changed(x, jsma_trace(net, x, t, theta=1.0, gamma=2.5 / n).x_adv)  # a budget of 1
        _, a, _ = forward_derivative(net, x, t)
        a = a.masked_fill(x.reshape(k, -1) >= 1.0, -math.inf)
        top2 = [frozenset(row.topk(2).indices.tolist()) for row in a]
        out["art_first_top2"] = np.array([f == p for f, p in zip(first_art, top2, strict=True)], float)
        out["art_first_ours"] = np.array([f == p for f, p in zip(first_art, first_ours, strict=True)], float)
    else:
        out["art_first_top2"] = np.full(k, np.nan)
        out["art_first_ours"] = np.full(k, np.nan)
    return out


_EXPERIMENTS = (
    "advertorch_all_pos",
    "advertorch_all_neg",
    "torchattacks_rule_pos",
    "torchattacks_rule_neg",
    "art_first_top2",
    "art_first_ours",
)


@dataclass(frozen=True)
class Result(ChapterResult):
    """What the chapter measured, models in ``params["models"]`` order.

    Attributes:
        params: the chapter's parameters (:meth:`Params.as_dict`).
        versions: each library's installed version.
        cells: ``[attack, implementation]`` in the order of the arrays' second axis (:func:`cells`).
        n_pixels: input values per image.
        test_error: ``(models,)`` each model's test error (its checkpoint's record).
        success / distance / same / maxdiff: ``(models, cells, n_digits)`` per digit (NaN beyond
            ``n_slow`` for C&W and L-BFGS, and for ``same``/``maxdiff`` where we have no such attack).
        seconds: ``(models, cells)`` seconds per attack (one thread, in this process).
        experiments: ``(models, 6, n_digits)`` the JSMA experiments (:func:`experiment_chunk`),
            rows in the order of ``experiment_names``.
        experiment_names: the experiments' names.
        bench: the side-by-side JSMA benchmark's rows, one per model and implementation.
        bench_bound: per model, the network-only bound of that benchmark (rows per second).
    """

    params: dict[str, Any]
    versions: dict[str, Any]
    cells: list[list[str]]
    n_pixels: int
    test_error: np.ndarray
    success: np.ndarray
    distance: np.ndarray
    same: np.ndarray
    maxdiff: np.ndarray
    seconds: np.ndarray
    experiments: np.ndarray
    experiment_names: list[str]
    bench: list[dict[str, Any]]
    bench_bound: dict[str, Any]


@dataclass(frozen=True)
class _BenchResult(ChapterResult):
    """The side-by-side benchmark of one model (cached apart: it is timed in fresh processes)."""

    rows: list[dict[str, Any]]
    bound: dict[str, Any]


def _model_keys(params: Params) -> list[str]:
    return [M.info(key, params.schedule).key for key in params.models]


def run(params: Params, *, progress: bool = True) -> Result:
    """All the chapter's work, cached by ``params`` and the models' checkpoint keys."""
    return cached(
        params,
        Result,
        lambda: _compute(params, progress),
        version=_RESULT_VERSION,
        models=_model_keys(params),
    )


def digits(params: Params, net: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, target)``: the first ``n_digits`` test digits of one seeded order that ``net``
    classifies correctly, and one random other class each."""
    m = load_mnist()
    with torch.no_grad():
        idx = correct_indices(net, m.x_test, m.y_test, params.n_digits, params.seed)
    x, y = m.x_test[idx], m.y_test[idx]
    return x, y, random_targets(y, params.seed)


def _slice(fn: Any, *args: Any) -> Any:
    """``(a, b) -> fn(*args)`` with every tensor among ``args`` cut to its rows ``a:b``: a chunk
    function for :func:`advsamples.chapter.chunked`."""

    def chunk(a: int, b: int) -> dict[str, np.ndarray]:
        return fn(*(v[a:b] if isinstance(v, torch.Tensor) else v for v in args))

    return chunk


def _bench_table(p: Params, key: str) -> _BenchResult:
    return _BenchResult(**bench.bench_jsma_peers(key, p.schedule, p.bench_samples, p.gamma))


def _compute(params: Params, progress: bool) -> Result:
    p = params
    cs = cells(p)
    nd = p.n_digits
    shape = (len(p.models), len(cs), nd)
    success, distance = np.full(shape, np.nan), np.full(shape, np.nan)
    same, maxdiff = np.full(shape, np.nan), np.full(shape, np.nan)
    seconds = np.full(shape[:2], np.nan)
    experiments = np.full((len(p.models), len(_EXPERIMENTS), nd), np.nan)
    rows: list[dict[str, Any]] = []
    bounds: dict[str, Any] = {}
    for i, key in enumerate(p.models):
        net = M.load(key, p.schedule)
        x, y, t = digits(p, net)
        ckpt = [M.info(key, p.schedule).key]
        common: dict[str, Any] = {"version": _VERSION, "models": ckpt, "progress": progress}
        s = M.slug(key)
        for attack, (_, targeted) in ATTACKS.items():
            if not any(a == attack for a, _ in cs):
                continue
            k = p.n_slow if attack in _SLOW else nd
            got = chunked(
                p,
                k,
                CHUNK,
                _slice(attack_chunk, p, attack, net, x, t if targeted else y),
                step=f"{attack}-{s}",
                desc=f"{_LABELS[attack]}, {key}",
                unit="digit",
                **common,
            )
            for j, (a, lib) in enumerate(cs):
                if a != attack:
                    continue
                success[i, j, :k] = got[f"{lib}_success"]
                distance[i, j, :k] = got[f"{lib}_distance"]
                same[i, j, :k] = got[f"{lib}_same"]
                maxdiff[i, j, :k] = got[f"{lib}_maxdiff"]
                seconds[i, j] = float(got[f"{lib}_seconds"].mean())
        ex = chunked(
            p,
            nd,
            CHUNK,
            _slice(experiment_chunk, p, net, x, t, p.libraries),
            step=f"experiments-{s}",
            desc=f"JSMA experiments, {key}",
            unit="digit",
            **common,
        )
        experiments[i] = np.stack([ex[name] for name in _EXPERIMENTS])
        if p.bench_samples:
            table = cached(
                p,
                _BenchResult,
                partial(_bench_table, p, key),
                version=_BENCH_VERSION,
                models=ckpt,
                step=f"bench-{s}",
            )
            rows += [{"model": key, **r} for r in table.rows]
            bounds[key] = table.bound
    m = load_mnist()
    return Result(
        params=p.as_dict(),
        versions={k: v for k, v in peers.versions().items() if k in p.libraries},
        cells=[list(c) for c in cs],
        n_pixels=int(m.x_test[0].numel()),
        test_error=np.array([1 - M.info(key, p.schedule).test_accuracy for key in p.models]),
        success=success,
        distance=distance,
        same=same,
        maxdiff=maxdiff,
        seconds=seconds,
        experiments=experiments,
        experiment_names=list(_EXPERIMENTS),
        bench=rows,
        bench_bound=bounds,
    )


# --------------------------------------------------------------------------- what the prose says
def _nanmean(v: np.ndarray) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _cell(result: Result, attack: str, lib: str) -> int | None:
    return next((j for j, (a, b) in enumerate(result.cells) if a == attack and b == lib), None)


def _dist_of_success(result: Result, i: int, j: int) -> float:
    ok = result.success[i, j] == 1
    return _nanmean(result.distance[i, j][ok])


def rates_phrase(groups: list[list[float]]) -> str:
    """Whether the implementations of an attack all gave one model the same success rate:
    ``groups`` holds the rates of one attack on one model, implementation by implementation."""
    if not groups:
        return "No attack was run"
    same = all(len({round(v, 12) for v in gr if math.isfinite(v)}) <= 1 for gr in groups)
    return "The error rates are the same" if same else "The error rates are not all the same"


def art_phrase(picks: dict[str, tuple[float, float]]) -> str:
    """How often ART's first pick, the top two of the target's gradient, is also our pair-saliency
    pick, per model (``{model: (share that is the top two, share that is ours)}``)."""
    parts = [
        f"{ours:.0%} on {MODEL_WORDS.get(key, key)}"
        for key, (_, ours) in picks.items()
        if math.isfinite(ours)
    ]
    if not parts:
        return "ART was not run"
    shares = [ours for _, ours in picks.values() if math.isfinite(ours)]
    if min(shares) >= 0.9:
        tail = "the two rules pick the same pixels almost always"
    elif max(shares) >= 0.9:
        tail = "the two rules agree on some models and part on others"
    else:
        tail = "the two rules mostly part"
    return f"it is our pair-saliency pick for {', '.join(parts)}: {tail}"


def art_speed_phrase(ratio: float, art_l0: float, ours_l0: float, model: str) -> str:
    """Ours beside ART in the benchmark on ``model`` (``ratio``: how many times faster ours is),
    and why ART can be ahead: one input gradient per iteration and fewer pixels changed."""
    if not math.isfinite(ratio):
        return "ART was not benchmarked"
    if ratio >= 1:
        return f"ours is ahead of ART on {model} too"
    return (
        f"on {model} ART is ahead, {1 / ratio:.2f} times as fast as ours: it takes one input gradient "
        "per iteration, the target's, where an exact JSMA takes two vector-Jacobian products, and its "
        f"successful samples change fewer pixels (mean L0 {art_l0:.1f} against our {ours_l0:.1f}), so it "
        "runs fewer iterations"
    )


def ratio_phrase(ratio: float) -> str:
    """A distance ratio (a library's over ours, on the digits both succeeded) in words."""
    if not math.isfinite(ratio):
        return "no digit where both succeeded to compare distances on"
    if abs(ratio - 1) <= 0.01:
        return f"on the digits both succeed its distance is ours (ratio {ratio:.3f})"
    word = "larger" if ratio > 1 else "smaller"
    return f"on the digits both succeed its distance is {ratio:.2f} times ours ({word})"


def glue_values(result: Result) -> dict[str, Any]:
    """Every glue key the chapter's prose quotes, and its value."""
    r, p = result, result.params
    n = r.n_pixels
    g: dict[str, Any] = {
        "n_digits": p["n_digits"],
        "n_slow": p["n_slow"],
        "fgsm_eps": p["fgsm_eps"],
        "pgd_eps": p["pgd_eps"],
        "pgd_steps": p["pgd_steps"],
        "gamma": p["gamma"],
        "cw_search": p["cw_search"],
        "cw_steps": p["cw_steps"],
        "lbfgs_search": p["lbfgs_search"],
        "lbfgs_iter": p["lbfgs_iter"],
        "our_budget_pixels": 2 * jsma_budget(n, p["gamma"]),
        "ceil_budget_pixels": 2 * math.ceil(n * p["gamma"] / 2),
        "n_libraries": len(p["libraries"]),
        "bench_samples": p["bench_samples"],
    }
    for lib, v in r.versions.items():
        g[f"version_{lib}"] = v or "missing"
    for i, key in enumerate(p["models"]):
        s = M.slug(key)
        g[f"test_error_{s}"] = float(r.test_error[i])
        for j, (attack, lib) in enumerate(r.cells):
            tag = f"{attack}_{lib}_{s}"
            g[f"success_{tag}"] = _nanmean(r.success[i, j])
            g[f"dist_{tag}"] = _dist_of_success(r, i, j)
            g[f"maxdist_{tag}"] = (
                float(np.nanmax(r.distance[i, j])) if np.isfinite(r.distance[i, j]).any() else math.nan
            )
            g[f"same_{tag}"] = _nanmean(r.same[i, j])
            g[f"maxdiff_{tag}"] = (
                float(np.nanmax(r.maxdiff[i, j])) if np.isfinite(r.maxdiff[i, j]).any() else math.nan
            )
            g[f"ms_{tag}"] = 1000 * float(r.seconds[i, j])
            ours = _cell(r, attack, "ours")
            if ours is not None and lib != "ours":
                g[f"speedup_{tag}"] = (
                    float(r.seconds[i, j] / r.seconds[i, ours]) if r.seconds[i, ours] else math.nan
                )
                both = (r.success[i, j] == 1) & (r.success[i, ours] == 1)
                gap = np.abs(r.distance[i, j][both] - r.distance[i, ours][both])
                # the largest difference of distance where both succeeded (NaN: never both), and
                # the mean ratio of the two distances there
                g[f"distgap_{tag}"] = float(gap.max()) if gap.size else math.nan
                ratio = r.distance[i, j][both] / r.distance[i, ours][both]
                g[f"distratio_{tag}"] = _nanmean(ratio[np.isfinite(ratio)]) if gap.size else math.nan
        for e, name in enumerate(r.experiment_names):
            g[f"exp_{name}_{s}"] = _nanmean(r.experiments[i, e])
    models = p["models"]
    g["rates_phrase"] = rates_phrase(
        [
            [g[f"success_{a}_{lib}_{M.slug(k)}"] for a, lib in r.cells if a == attack]
            for k in models
            for attack in ("fgsm", "pgd")
        ]
    )
    g["art_phrase"] = art_phrase(
        {k: (g[f"exp_art_first_top2_{M.slug(k)}"], g[f"exp_art_first_ours_{M.slug(k)}"]) for k in models}
    )
    first = M.slug(models[0]) if models else ""
    g["cleverhans_cw_phrase"] = ratio_phrase(g.get(f"distratio_cw_cleverhans_{first}", math.nan))
    fgsm_diffs = [g[k] for k in g if k.startswith("maxdiff_fgsm_") and math.isfinite(g[k])]
    pgd_diffs = [g[k] for k in g if k.startswith("maxdiff_pgd_") and math.isfinite(g[k])]
    g["fgsm_maxdiff"] = max(fgsm_diffs) if fgsm_diffs else math.nan
    g["pgd_maxdiff"] = max(pgd_diffs) if pgd_diffs else math.nan
    for row in r.bench:
        s = M.slug(row["model"])
        g[f"bench_rate_{row['impl']}_{s}"] = row["attacks_per_s"]
        g[f"bench_ratio_{row['impl']}_{s}"] = row["ours_over"]
        g[f"bench_rss_{row['impl']}_{s}"] = row["peak_rss_mib"]
        g[f"bench_attack_mib_{row['impl']}_{s}"] = row["attack_mib"]
    last = models[-1] if models else ""
    g["art_speed_phrase"] = art_speed_phrase(
        g.get(f"bench_ratio_art_{M.slug(last)}", math.nan),
        g.get(f"dist_jsma_art_{M.slug(last)}", math.nan),
        g.get(f"dist_jsma_ours_{M.slug(last)}", math.nan),
        MODEL_WORDS.get(last, last),
    )
    for key, b in r.bench_bound.items():
        g[f"bench_bound_ratio_{M.slug(key)}"] = b["ratio"]
        g[f"bench_own_bound_ratio_{M.slug(key)}"] = b.get("own_ratio", math.nan)
        g["bench_bound_runs"] = int(b.get("runs", 1))  # ours' runs whose best meets the bound
    return g


def headline(result: Result) -> Headline:
    """The chapter's opening box: on the paper's LeNet, the share of JSMA samples identical to
    ours, library by library, and what one of our attacks costs beside theirs."""
    g = glue_values(result)
    key = result.params["models"][0]
    s = M.slug(key)
    rows = []
    for lib in result.params["libraries"]:
        if f"same_jsma_{lib}_{s}" not in g:
            continue
        # the side-by-side benchmark's ratio (each in its own process), else the chapter's own timing
        speed = g.get(f"bench_ratio_{lib}_{s}", g.get(f"speedup_jsma_{lib}_{s}", math.nan))
        rows.append(
            (
                f"JSMA (θ = +1), {peers.LABELS[lib]} {g[f'version_{lib}']}",
                "the paper's Algorithms 2 and 3",
                f"{g[f'same_jsma_{lib}_{s}']:.0%} identical to ours; ours {speed:.1f}× as fast",
            )
        )
    if not rows:
        rows.append(("JSMA (θ = +1)", "the paper's Algorithms 2 and 3", "no library ran"))
    return Headline(
        "Papernot et al. (2016), Algorithms 2 and 3, as the libraries implement them",
        tuple(rows),
        "the algorithm as the paper writes it",
        f"{key}, {g['n_digits']:,} correctly classified test digits, one random target each, one thread",
    )


# --------------------------------------------------------------------------- views
def agreement_frame(result: Result, model: str | None = None) -> pd.DataFrame:
    """Per attack and implementation on one model (default: the first): success, the mean
    distance of the successes and the largest, the share identical to ours, the largest
    absolute difference from ours, and milliseconds per attack."""
    key = model or result.params["models"][0]
    i = result.params["models"].index(key)
    rows = []
    for j, (attack, lib) in enumerate(result.cells):
        rows.append(
            {
                "attack": _LABELS[attack],
                "implementation": peers.LABELS[lib],
                "success": _nanmean(result.success[i, j]),
                "norm": _NORM[attack],
                "mean distance": _dist_of_success(result, i, j),
                "largest distance": float(np.nanmax(result.distance[i, j])),
                "identical to ours": _nanmean(result.same[i, j]),
                "largest |difference|": float(np.nanmax(result.maxdiff[i, j]))
                if np.isfinite(result.maxdiff[i, j]).any()
                else math.nan,
                "ms / attack": 1000 * float(result.seconds[i, j]),
            }
        )
    return pd.DataFrame(rows).set_index(["attack", "implementation"])


def agreement_table(result: Result, model: str | None = None) -> Styler:
    """:func:`agreement_frame`, formatted (a dash where there is nothing to compare)."""

    def dash(fmt: str) -> Any:
        return lambda v: "—" if not np.isfinite(v) else format(v, fmt)

    return agreement_frame(result, model).style.format(
        {
            "success": dash(".0%"),
            "mean distance": dash(".3g"),
            "largest distance": dash(".3g"),
            "identical to ours": dash(".0%"),
            "largest |difference|": dash(".2g"),
            "ms / attack": dash(",.0f"),
        }
    )


def speed_frame(result: Result) -> pd.DataFrame:
    """The side-by-side JSMA benchmark (each implementation in its own process): attacks per
    second, how many times faster ours is, peak resident memory, agreement with ours."""
    if not result.bench:
        return pd.DataFrame(columns=["model", "implementation"]).set_index(["model", "implementation"])
    frame = pd.DataFrame(result.bench)
    frame["implementation"] = frame["impl"].map(peers.LABELS)
    frame = frame.rename(
        columns={
            "attacks_per_s": "attacks / s",
            "ours_over": "ours is × faster",
            "peak_rss_mib": "peak RSS (MiB)",
            "attack_mib": "of it, the attack (MiB)",
            "same": "identical to ours",
        }
    )
    cols = [
        "attacks / s",
        "ours is × faster",
        "peak RSS (MiB)",
        "of it, the attack (MiB)",
        "identical to ours",
    ]
    return frame.set_index(["model", "implementation"])[cols]


def speed_table(result: Result) -> Styler:
    """:func:`speed_frame`, formatted."""
    return speed_frame(result).style.format(
        {
            "attacks / s": "{:.2f}",
            "ours is × faster": "{:.1f}",
            "peak RSS (MiB)": "{:,.0f}",
            "of it, the attack (MiB)": "{:,.0f}",
            "identical to ours": "{:.0%}",
        }
    )


def agreement_figure(result: Result) -> Figure:
    """Per model, the share of each library's JSMA samples (θ = ±1) identical to ours, beside
    the share our attack reproduces once it takes that library's rule (the experiments)."""
    models = result.params["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.8 * len(models), 3.6), squeeze=False, sharey=True)
    names = result.experiment_names
    for i, (ax, key) in enumerate(zip(axes[0], models, strict=True)):
        labels, plain, rule = [], [], []
        for attack, s in (("jsma", "pos"), ("jsma_neg", "neg")):
            for lib, exp in (
                ("advertorch", f"advertorch_all_{s}"),
                ("torchattacks", f"torchattacks_rule_{s}"),
                ("art", None),
            ):
                j = _cell(result, attack, lib)
                if j is None:
                    continue
                labels.append(f"{peers.LABELS[lib]}\n{'θ=+1' if s == 'pos' else 'θ=−1'}")
                plain.append(_nanmean(result.same[i, j]))
                rule.append(_nanmean(result.experiments[i, names.index(exp)]) if exp else math.nan)
        pos = np.arange(len(labels))
        ax.bar(pos - 0.2, plain, 0.4, label="identical to ours")
        ax.bar(
            pos + 0.2,
            [0 if not math.isfinite(v) else v for v in rule],
            0.4,
            label="identical to ours with its rule",
        )
        ax.set_xticks(pos, labels, fontsize=7)
        ax.set(ylim=(0, 1.05), title=key)
        ax.legend(loc="lower right", fontsize=7)
    axes[0][0].set_ylabel("share of attacks")
    return plotting.finish(
        fig, suptitle="JSMA: the libraries' samples against ours, and the rule that explains them"
    )
