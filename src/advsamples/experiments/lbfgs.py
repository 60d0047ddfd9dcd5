r"""The L-BFGS chapter (Szegedy et al., 2014, Sec. 4.1 and Table 1).

The chapter: :class:`Params` (the notebook's parameters, validated), :func:`run` (every
computation, cached; each model's attack saved in chunks so that a killed run resumes) returning a
:class:`Result`, :func:`glue_values` (the numbers and phrases the prose quotes), the tables
(:func:`table1`, :func:`exact_table`, :func:`weight_decay_table`) and the figures
(:func:`distortion_figure`, :func:`grid_figure`, :func:`refinement_figure`).

Its pieces:

- :func:`attack_models`: the box-constrained L-BFGS attack (:func:`advsamples.attacks.lbfgs.lbfgs_trace`)
  on each model (:class:`ModelAttack`), summarised by :func:`table1_row`;
- :func:`search_refinement`: how the "minimum" distortion depends on the length of the c search;
- the exact minimum distortion of a linear (softmax) model, the yardstick that tells how far the c
  search's minimum is from the true one, is :func:`advsamples.linear.linear_min_distortion`
  (and :func:`advsamples.linear.nearest_target_min_distortion` over every target);
- the phrases of the prose (:func:`success_phrase`, :func:`fc10_trend`, :func:`mlp_fit`,
  :func:`refine_verdict`, :func:`target_vs_search`, :func:`closer`);
- :func:`sample_grid_figure`: originals, perturbations and adversarial samples.

The model registry (:data:`MODEL_KEYS`, :func:`model_spec`, :func:`load_model`, :func:`test_error`)
is :mod:`advsamples.models`; draws and statistics are :mod:`advsamples.experiments.common`.
Everything random takes a ``seed`` and uses its own :class:`torch.Generator`, so that a rerun
gives identical numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler
from torch import nn

from advsamples import papers, plotting
from advsamples.attacks._blas import single_threaded_blas
from advsamples.attacks.lbfgs import LBFGSResult, Trial, lbfgs_trace
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, chunked, param
from advsamples.data import load_mnist
from advsamples.experiments.common import (
    Gap,
    check_search,
    correct_indices,
    error_rate,
    known,
    mean_interval,
    random_targets,
    rate_interval,
    relation,
    search_settings,
)
from advsamples.linear import linear_min_distortion, nearest_target_min_distortion
from advsamples.models import MODEL_KEYS, SZEGEDY_KEYS, TEXTBOOK_DECAY_FACTOR, fc10_key, model_spec, slug
from advsamples.models import info as _info
from advsamples.models import load as load_model
from advsamples.params import check_choice, check_choices, check_count, check_int, check_number
from advsamples.plotting import finish

__all__ = [
    "attacked_samples",
    "MAX_SEED",
    "MODEL_KEYS",
    "SZEGEDY_KEYS",
    "ModelAttack",
    "Params",
    "Result",
    "Table1Row",
    "attack_models",
    "closer",
    "correct_indices",
    "distortion_figure",
    "error_rate",
    "exact_table",
    "fidelity",
    "fc10_key",
    "fc10_trend",
    "glue_values",
    "grid_figure",
    "linear_min_distortion",
    "load_model",
    "mean_interval",
    "mlp_fit",
    "model_spec",
    "random_targets",
    "rate_interval",
    "refine_verdict",
    "refinement_figure",
    "relation",
    "run",
    "sample_grid_figure",
    "search_refinement",
    "single_threaded_blas",
    "slug",
    "success_phrase",
    "table1",
    "table1_row",
    "target_vs_search",
    "test_error",
    "weight_decay_table",
]

#: Largest accepted seed (torch generators take 64-bit seeds; this keeps every derived seed valid).
MAX_SEED = 2**31 - 1
#: Samples per saved chunk of an attack (a killed run loses at most one chunk per model).
CHUNK = 50
#: The model the weight-decay experiment compares against: FC10 with the paper's λ = 1.
REF_KEY = "fc10(1.0)"


def test_error(key: str, schedule: str) -> float:
    """MNIST test error (all 10,000 images) of ``key``, as recorded in its checkpoint."""
    return 1.0 - _info(key, schedule).test_accuracy


test_error.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The L-BFGS chapter's parameters (the notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "lbfgs"

    models: list[str] = param(
        [
            "fc10(0.0001)",
            "fc10(0.01)",
            "fc10(1.0)",
            "fc100_100_10",
            "fc200_200_10",
            "lenet_paper",
            "lenet_relu",
        ],
        'models attacked; "fc10(λ)" is Szegedy\'s FC10 trained with weight decay λ',
    )
    n_samples: int = param(20, "test images attacked per model (each one the model classifies correctly)")
    seed: int = param(0, "draws the images and their target classes")
    c_init: float = param(0.1, "first penalty weight c of the search")
    search_steps: int = param(6, "geometric bisections of c once a success and a failure bracket it")
    bracket_steps: int = param(6, "at most this many ×10 / ÷10 moves of c to find the bracket")
    max_iter: int = param(100, "L-BFGS-B iterations per optimisation")
    alt_weight_decay: float = param(
        TEXTBOOK_DECAY_FACTOR,
        "FC10 retrained with this λ: the paper's λ of 1 read as ½λ‖W‖² (our λ‖W‖² at 0.5)",
    )
    grid_model: str = param("fc100_100_10", "the model whose samples the grid shows")
    n_grid: int = param(8, "columns of the grid")

    def validate(self) -> None:
        super().validate()
        check_choices("models", self.models, MODEL_KEYS)
        check_count("n_samples", self.n_samples, 10_000, "test images")
        check_int("seed", self.seed, 0, MAX_SEED, "a 31-bit seed")
        check_search(self)
        check_number("alt_weight_decay", self.alt_weight_decay, lo=0, hi=100)
        check_choice("grid_model", self.grid_model, self.models)
        check_count("n_grid", self.n_grid, self.n_samples, "attacked samples (n_samples)")

    def search(self) -> dict[str, Any]:
        """The c search's settings, as keyword arguments of :func:`lbfgs_trace`."""
        return search_settings(self)


# --------------------------------------------------------------------------- the attack
@dataclass(frozen=True)
class ModelAttack:
    """One model's L-BFGS run on ``n`` test images it classifies correctly.

    Attributes:
        key: the model's key (:data:`MODEL_KEYS`).
        x, y, target: the attacked images, their labels and the targets.
        result: the attack's outcome, per sample.
        seconds: wall time of the attack.
    """

    key: str
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor
    result: LBFGSResult
    seconds: float


def encode_result(result: LBFGSResult, seconds: float) -> dict[str, np.ndarray]:
    """``result`` (and the attack's wall time) as arrays whose concatenation over chunks of samples
    is the encoding of the whole batch (the record of the c search is flattened)."""
    tried = [t for trials in result.tried for t in trials]
    return {
        "x_adv": result.x_adv.numpy(),
        "success": result.success.numpy(),
        "c": result.c.numpy(),
        "distortion": result.distortion.numpy(),
        "already_target": result.already_target.numpy(),
        "n_tried": np.array([len(t) for t in result.tried], dtype=np.int64),
        "tried_c": np.array([t[0] for t in tried], dtype=np.float64),
        "tried_ok": np.array([t[1] for t in tried], dtype=bool),
        "tried_dist": np.array([t[2] for t in tried], dtype=np.float64),
        "seconds": np.array([seconds], dtype=np.float64),
    }


def decode_result(arrays: Mapping[str, np.ndarray]) -> tuple[LBFGSResult, float]:
    """The inverse of :func:`encode_result`: ``(result, seconds)`` (seconds summed over chunks)."""
    ends = np.cumsum(arrays["n_tried"]).tolist()
    starts = [0, *ends[:-1]]
    trials = list(
        zip(
            arrays["tried_c"].tolist(),
            arrays["tried_ok"].tolist(),
            arrays["tried_dist"].tolist(),
            strict=True,
        )
    )
    tried: tuple[tuple[Trial, ...], ...] = tuple(
        tuple(trials[a:b]) for a, b in zip(starts, ends, strict=True)
    )
    result = LBFGSResult(
        x_adv=torch.from_numpy(np.array(arrays["x_adv"])),
        success=torch.from_numpy(np.array(arrays["success"])),
        c=torch.from_numpy(np.array(arrays["c"])),
        distortion=torch.from_numpy(np.array(arrays["distortion"])),
        already_target=torch.from_numpy(np.array(arrays["already_target"])),
        tried=tried,
    )
    return result, float(np.sum(arrays["seconds"]))


def attacked_samples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_samples: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, targets)``: the ``n_samples`` images of ``(x, y)`` the chapter attacks on
    ``model`` (the first it classifies correctly in one seeded permutation) and their targets
    (drawn once per image of ``x``, uniformly among the nine other classes, whatever the model)."""
    idx = correct_indices(model, x, y, n_samples, seed)
    return idx, random_targets(y, seed)[idx]


def attack_models(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    n_samples: int,
    seed: int,
    *,
    search: Mapping[str, Any],
    progress: bool = True,
    params: ChapterParams | None = None,
    cache_models: Mapping[str, str] | None = None,
) -> dict[str, ModelAttack]:
    """Attack each model on ``n_samples`` images of ``(x, y)`` it classifies correctly.

    The images are the first correctly classified ones of one seeded permutation (so models that
    agree get the same images) and each image's target is drawn once, uniformly among the nine
    other classes (:func:`random_targets` with ``seed``), whatever the model. ``search`` holds the
    c search's settings (:meth:`Params.search`). With ``params`` (and ``cache_models``, model key
    to checkpoint key) each model's attack is saved in chunks of :data:`CHUNK` samples
    (:func:`advsamples.chapter.chunked`), so a killed run resumes; the result is the same.
    """
    out: dict[str, ModelAttack] = {}
    for key, model in models.items():
        idx, ts = attacked_samples(model, x, y, n_samples, seed)
        xs = x[idx]

        def compute(
            a: int,
            b: int,
            model: nn.Module = model,
            xs: torch.Tensor = xs,
            ts: torch.Tensor = ts,
            key: str = key,
        ) -> dict[str, np.ndarray]:
            start = time.perf_counter()
            res = lbfgs_trace(model, xs[a:b], ts[a:b], **search, progress=progress, desc=f"L-BFGS {key}")
            return encode_result(res, time.perf_counter() - start)

        if params is None:
            arrays = compute(0, len(xs))
        else:
            checkpoint = (cache_models or {}).get(key, key)
            arrays = chunked(
                params,
                len(xs),
                CHUNK,
                compute,
                version=1,
                models=[checkpoint],
                step=f"attack-{slug(key)}-{seed}",
            )
        res, seconds = decode_result(arrays)
        out[key] = ModelAttack(key, xs, y[idx], ts, res, seconds)
    return out


@dataclass(frozen=True)
class Table1Row:
    """Szegedy et al.'s Table 1 measures for one model.

    Attributes:
        key: model key.
        n: samples attacked.
        success_rate: fraction of them the attack moved to the target class.
        distortion: mean of ``sqrt(sum(r**2) / n_pixels)`` over the successful samples (NaN if none).
        distortion_low, distortion_high: its 95 % interval (normal approximation).
        optimisations: L-BFGS-B runs per sample (the length of the c search).
        seconds_per_sample: wall time per sample.
    """

    key: str
    n: int
    success_rate: float
    distortion: float
    distortion_low: float
    distortion_high: float
    optimisations: float
    seconds_per_sample: float


def table1_row(run: ModelAttack) -> Table1Row:
    """The Table 1 summary of one model's run."""
    res = run.result
    n = len(res.success)
    mean, lo, hi = mean_interval(res.distortion[res.success].tolist())
    return Table1Row(
        run.key,
        n,
        float(res.success.double().mean()),
        mean,
        lo,
        hi,
        res.optimisations / n,
        run.seconds / n,
    )


def search_refinement(result: LBFGSResult, search_steps: int) -> np.ndarray:
    """Mean best distortion over the successful samples had the c search stopped after
    ``0, 1, …, search_steps`` bisections (the last entry is the run's own result).

    The search is deterministic and sequential, so a shorter search is a prefix of a longer one:
    its bracketing phase (×10 / ÷10 until a success and a failure have been seen) is the same,
    followed by fewer bisections. Samples without a successful optimisation are left out (the
    bisections never change whether a sample succeeds: they start after the first success).

    Raises:
        ValueError: if ``search_steps`` is negative or there is no successful sample.
    """
    if isinstance(search_steps, bool) or not isinstance(search_steps, int) or search_steps < 0:
        raise ValueError(f"search_steps must be an integer >= 0, got search_steps={search_steps!r}")
    curves = []
    for trials in result.tried:
        if not any(ok for _, ok, _ in trials):
            continue
        seen_ok = seen_bad = False
        end = len(trials)
        for j, (_, ok, _) in enumerate(trials):
            seen_ok, seen_bad = seen_ok or ok, seen_bad or not ok
            if seen_ok and seen_bad:
                end = j + 1
                break
        curves.append([min(d for _, ok, d in trials[: end + k] if ok) for k in range(search_steps + 1)])
    if not curves:
        raise ValueError("result has no successful optimisation to measure")
    return np.asarray(curves).mean(axis=0)


# --------------------------------------------------------------------------- phrases
def success_phrase(min_success: float) -> str:
    """How often the attack reached its target, from the lowest success rate over the models."""
    if min_success == 1:
        return "on every sample of every model"
    return f"on at least {min_success:.0%} of the samples of every model"


def fc10_trend(distortions: Sequence[float]) -> str:
    """Whether FC10's distortion grows strictly with λ (``distortions`` in increasing λ)."""
    if all(a < b for a, b in zip(distortions, distortions[1:], strict=False)):
        return "grows with λ, as in the paper (stronger weight decay, smaller weights, larger perturbations)"
    return "does not grow steadily with λ, unlike the paper"


def mlp_fit(train_errors: Sequence[float]) -> str:
    """Whether the multilayer perceptrons fit their training set perfectly, as the paper's do."""
    if all(e == 0 for e in train_errors):
        return "fit it perfectly too"
    return "do not (the training errors above)"


def refine_verdict(last_change: float, rel_halfwidth: float) -> str:
    """Whether the last bisection of c moved the estimate less than its sampling error."""
    hw = f"{rel_halfwidth:.1%}"
    if last_change < rel_halfwidth:
        return (
            f"less than the sampling error of any mean (at least {hw}), so more bisections would not change"
            " the table beyond its sampling error"
        )
    return (
        f"more than the sampling error of some model's mean ({hw}): the search is still lowering"
        " the estimates by more than their sampling error"
    )


def target_vs_search(nearest_over_random: float, excess_max: float) -> str:
    """Whether the choice of target (nearest vs random) matters more than the c search's excess."""
    if 1 - nearest_over_random > excess_max:
        return "The target matters more"
    return "The target matters less than the search"


def closer(new: float, old: float, paper: float) -> str:
    """``"closer to"`` if ``new`` is strictly nearer ``paper`` than ``old`` is, else ``"further from"``."""
    return "closer to" if abs(new - paper) < abs(old - paper) else "further from"


# --------------------------------------------------------------------------- the chapter
def _f(value: Any) -> float:
    """A stored number as a float (JSON keeps NaN as the string "nan")."""
    return float(value)


@dataclass(frozen=True)
class Result(ChapterResult):
    """Everything the L-BFGS chapter shows.

    Attributes:
        settings: the parameters the run used (without ``profile``).
        n_pixels: input values per image.
        rows: per model, its Table 1 row (:class:`Table1Row` fields) and its test error and, for
            the paper's models, its training error.
        refine: per model, :func:`search_refinement`'s curve.
        exact: per FC10 model, the mean L-BFGS distortion of the successes, the mean exact minimum
            for the same target and over the nearest target, and the mean excess ``L-BFGS / exact - 1``.
        alt: the weight-decay experiment: ``alt_key``, ``alt_err``, ``alt_dist``, ``ref_err``, ``ref_dist``.
        grid_*: the grid's images, labels, targets and the grid model's probabilities.
        attack_success, attack_distortion, attack_c: ``(models, n_samples)``, every attack's
            outcome (rows in ``models`` order): the per-attack record ``make audit`` re-crafts.
    """

    settings: dict[str, Any]
    n_pixels: int
    rows: dict[str, dict[str, Any]]
    refine: dict[str, list[float]]
    exact: dict[str, dict[str, float]]
    alt: dict[str, Any]
    grid_x: np.ndarray
    grid_x_adv: np.ndarray
    grid_y: np.ndarray
    grid_target: np.ndarray
    grid_p_clean: np.ndarray
    grid_p_adv: np.ndarray
    attack_success: np.ndarray
    attack_distortion: np.ndarray
    attack_c: np.ndarray


def _row(
    run: ModelAttack, key: str, schedule: str, net: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor
) -> dict[str, Any]:
    row = table1_row(run)
    out: dict[str, Any] = {
        "success_rate": row.success_rate,
        "distortion": row.distortion,
        "distortion_low": row.distortion_low,
        "distortion_high": row.distortion_high,
        "optimisations": row.optimisations,
        "seconds_per_sample": row.seconds_per_sample,
        "test_error": test_error(key, schedule),
        "train_error": error_rate(net, x_train, y_train) if key in papers.SZEGEDY_TABLE1 else None,
    }
    return out


def exact_minima(run: ModelAttack, net: nn.Module) -> dict[str, float]:
    """On a linear model (``net.out``), the attack's distortion against the exact minima: the mean
    L-BFGS distortion of the successes, the mean exact minimum for the same targets (``exact``) and
    for the nearest target (``nearest``), and the mean of ``L-BFGS / exact - 1`` (``excess``)."""
    ok = run.result.success
    out = net.out
    if not isinstance(out, nn.Linear):
        raise ValueError(f"exact_minima needs a linear model with an `out` layer, got {type(net).__name__}")
    exact = linear_min_distortion(out.weight, out.bias, run.x, run.target)
    ratio = (run.result.distortion[ok] / exact[ok]).double()
    nearest = nearest_target_min_distortion(out.weight, out.bias, run.x, run.y).numpy()
    return {
        "lbfgs": float(run.result.distortion[ok].mean()),
        "exact": float(exact.mean()),
        "excess": float(ratio.mean()) - 1,
        "nearest": float(nearest.mean()),
    }


def _compute(params: Params, progress: bool, checkpoints: Mapping[str, str]) -> Result:
    mnist = load_mnist()
    nets = {key: load_model(key, params.schedule) for key in params.models}
    search = params.search()
    attack: dict[str, Any] = dict(search=search, progress=progress, params=params, cache_models=checkpoints)
    runs = attack_models(nets, mnist.x_test, mnist.y_test, params.n_samples, params.seed, **attack)
    rows = {
        key: _row(runs[key], key, params.schedule, nets[key], mnist.x_train, mnist.y_train)
        for key in params.models
    }
    refine = {key: search_refinement(runs[key].result, params.search_steps).tolist() for key in params.models}
    exact = {key: exact_minima(runs[key], nets[key]) for key in params.models if key.startswith("fc10(")}
    alt_key = fc10_key(params.alt_weight_decay)
    alt_net = load_model(alt_key, params.schedule)
    alt_run = attack_models(
        {alt_key: alt_net}, mnist.x_test, mnist.y_test, params.n_samples, params.seed, **attack
    )[alt_key]
    if REF_KEY in runs:
        ref_run = runs[REF_KEY]
    else:
        ref_net = load_model(REF_KEY, params.schedule)
        ref_run = attack_models(
            {REF_KEY: ref_net}, mnist.x_test, mnist.y_test, params.n_samples, params.seed, **attack
        )[REF_KEY]
    alt = {
        "alt_key": alt_key,
        "alt_err": test_error(alt_key, params.schedule),
        "alt_dist": table1_row(alt_run).distortion,
        "ref_err": test_error(REF_KEY, params.schedule),
        "ref_dist": table1_row(ref_run).distortion,
    }
    g, k = runs[params.grid_model], params.n_grid
    with torch.no_grad():
        p_clean = nets[params.grid_model](g.x[:k]).softmax(1)
        p_adv = nets[params.grid_model](g.result.x_adv[:k]).softmax(1)
    settings = {k2: v for k2, v in params.as_dict().items() if k2 != "profile"}
    return Result(
        settings=settings,
        n_pixels=int(mnist.x_test[0].numel()),
        rows=rows,
        refine=refine,
        exact=exact,
        alt=alt,
        grid_x=g.x[:k].numpy(),
        grid_x_adv=g.result.x_adv[:k].numpy(),
        grid_y=g.y[:k].numpy(),
        grid_target=g.target[:k].numpy(),
        grid_p_clean=p_clean.numpy(),
        grid_p_adv=p_adv.numpy(),
        attack_success=np.stack([runs[k].result.success.numpy() for k in params.models]),
        attack_distortion=np.stack([runs[k].result.distortion.numpy() for k in params.models]),
        attack_c=np.stack([runs[k].result.c.numpy() for k in params.models]),
    )


def run(params: Params, *, progress: bool = True) -> Result:
    """The chapter's every computation (cached by ``params`` and the models' checkpoints)."""
    keys = list(dict.fromkeys([*params.models, fc10_key(params.alt_weight_decay), REF_KEY]))
    checkpoints = {key: _info(key, params.schedule).key for key in keys}
    return cached(
        params,
        Result,
        lambda: _compute(params, progress, checkpoints),
        version=2,  # 2: the per-attack record
        models=list(checkpoints.values()),
    )


def _fc10_sorted(models: Sequence[str]) -> list[str]:
    return sorted(
        (k for k in models if k.startswith("fc10(")), key=lambda k: model_spec(k)[1]["weight_decay"]
    )


def glue_values(result: Result) -> dict[str, Any]:
    """The values the chapter's prose quotes, by glue key (``profile`` and ``threads`` are
    recorded by :func:`advsamples.notebook.start`)."""
    s = result.settings
    models: list[str] = list(s["models"])
    out: dict[str, Any] = {
        "c_init": s["c_init"],
        "search_steps": s["search_steps"],
        "n_samples": s["n_samples"],
        "schedule": s["schedule"],
        "n_pixels": result.n_pixels,
    }
    for key in models:
        row, sl = result.rows[key], slug(key)
        out[f"err_{sl}"] = _f(row["test_error"])
        out[f"success_{sl}"] = _f(row["success_rate"])
        out[f"dist_{sl}"] = _f(row["distortion"])
        out[f"dist_lo_{sl}"] = _f(row["distortion_low"])
        out[f"dist_hi_{sl}"] = _f(row["distortion_high"])
        paper = papers.SZEGEDY_TABLE1.get(key)
        if paper is not None:
            out[f"train_err_{sl}"] = _f(row["train_error"])
            out[f"paper_err_{sl}"] = paper["test_error"]
            out[f"paper_train_err_{sl}"] = paper["train_error"]
            out[f"paper_dist_{sl}"] = paper["distortion"]
            out[f"dist_vs_paper_{sl}"] = relation(
                paper["distortion"], _f(row["distortion_low"]), _f(row["distortion_high"])
            )
    dists = [_f(result.rows[k]["distortion"]) for k in models]
    out["min_success"] = min(_f(result.rows[k]["success_rate"]) for k in models)
    out["success_phrase"] = success_phrase(out["min_success"])
    out["dist_min"] = float(np.nanmin(dists))
    out["dist_max"] = float(np.nanmax(dists))
    out["fc10_trend"] = fc10_trend([_f(result.rows[k]["distortion"]) for k in _fc10_sorted(models)])
    factors = [
        max(d, p) / min(d, p)
        for d, p in (
            (_f(result.rows[k]["distortion"]), papers.SZEGEDY_TABLE1[k]["distortion"])
            for k in models
            if k in papers.SZEGEDY_TABLE1
        )
    ]
    out["paper_factor_max"] = max(factors) if factors else math.nan
    mlps = [k for k in ("fc100_100_10", "fc200_200_10") if k in models]
    out["mlp_fit"] = mlp_fit([_f(result.rows[k]["train_error"]) for k in mlps])
    out["seconds_per_sample_max"] = max(_f(result.rows[k]["seconds_per_sample"]) for k in models)
    curves = [np.asarray(c, dtype=float) for c in result.refine.values()]
    last = max(abs(c[-1] - c[-2]) / c[-1] for c in curves) if s["search_steps"] > 0 else math.nan
    out["refine_last_change"] = float(last)
    out["refine_total_change"] = float(max(abs(c[0] - c[-1]) / c[-1] for c in curves))
    hw = min(
        (_f(r["distortion"]) - _f(r["distortion_low"])) / _f(r["distortion"]) for r in result.rows.values()
    )
    out["rel_halfwidth"] = hw
    out["refine_verdict"] = refine_verdict(out["refine_last_change"], hw)
    for key, e in result.exact.items():
        out[f"excess_{slug(key)}"] = _f(e["excess"])
        out[f"exact_{slug(key)}"] = _f(e["exact"])
        out[f"nearest_{slug(key)}"] = _f(e["nearest"])
    if result.exact:
        excess = [_f(e["excess"]) for e in result.exact.values()]
        out["excess_min"] = min(excess)
        out["excess_max"] = max(excess)
        ratios = pd.Series([_f(e["nearest"]) for e in result.exact.values()]) / pd.Series(
            [_f(e["exact"]) for e in result.exact.values()]
        )
        out["nearest_over_random"] = float(ratios.mean())
        out["target_vs_search"] = target_vs_search(out["nearest_over_random"], out["excess_max"])
    a = result.alt
    paper1 = papers.SZEGEDY_TABLE1[REF_KEY]
    out["alt_weight_decay"] = s["alt_weight_decay"]
    out["alt_err"] = _f(a["alt_err"])
    out["alt_dist"] = _f(a["alt_dist"])
    out["ref_err"] = _f(a["ref_err"])
    out["ref_dist"] = _f(a["ref_dist"])
    out["paper_err_ref"] = paper1["test_error"]
    out["paper_dist_ref"] = paper1["distortion"]
    out["alt_err_shift"] = abs(out["alt_err"] - out["ref_err"])
    out["ref_err_gap"] = abs(out["ref_err"] - paper1["test_error"])
    out["alt_err_closer"] = closer(out["alt_err"], out["ref_err"], paper1["test_error"])
    out["alt_dist_closer"] = closer(out["alt_dist"], out["ref_dist"], paper1["distortion"])
    return out


# --------------------------------------------------------------------------- tables
def _dash(fmt: str) -> Any:
    return lambda v: "—" if v is None or pd.isna(v) else format(v, fmt)


def table1(result: Result) -> Styler:
    """Szegedy et al.'s Table 1 beside ours, one row per model."""
    rows = []
    for key in result.settings["models"]:
        r = result.rows[key]
        paper = papers.SZEGEDY_TABLE1.get(key)
        rows.append(
            {
                "model": key,
                "paper's name": papers.PAPER_MODELS[key].label,
                "train error (ours)": None if r["train_error"] is None else _f(r["train_error"]),
                "train error (paper)": None if paper is None else paper["train_error"],
                "test error (ours)": _f(r["test_error"]),
                "test error (paper)": None if paper is None else paper["test_error"],
                "success rate": _f(r["success_rate"]),
                "distortion (ours)": _f(r["distortion"]),
                "95% interval": f"{_f(r['distortion_low']):.3f}–{_f(r['distortion_high']):.3f}",
                "distortion (paper)": None if paper is None else paper["distortion"],
                "optimisations / sample": _f(r["optimisations"]),
                "s / sample": _f(r["seconds_per_sample"]),
            }
        )
    return (
        pd.DataFrame(rows)
        .set_index("model")
        .style.format(
            {
                "train error (ours)": _dash(".2%"),
                "train error (paper)": _dash(".2%"),
                "test error (ours)": _dash(".2%"),
                "test error (paper)": _dash(".2%"),
                "success rate": "{:.0%}",
                "distortion (ours)": "{:.3f}",
                "distortion (paper)": _dash(".3f"),
                "optimisations / sample": "{:.1f}",
                "s / sample": "{:.2f}",
            }
        )
    )


def exact_table(result: Result) -> Styler:
    """On the FC10 models: the attack's distortion against the exact minima."""
    rows = [
        {
            "model": key,
            "L-BFGS distortion": _f(e["lbfgs"]),
            "exact minimum, same target": _f(e["exact"]),
            "L-BFGS / exact − 1 (mean)": _f(e["excess"]),
            "exact minimum, nearest target": _f(e["nearest"]),
            "paper": papers.SZEGEDY_TABLE1[key]["distortion"] if key in papers.SZEGEDY_TABLE1 else None,
        }
        for key, e in result.exact.items()
    ]
    columns = [
        "L-BFGS distortion",
        "exact minimum, same target",
        "L-BFGS / exact − 1 (mean)",
        "exact minimum, nearest target",
        "paper",
    ]
    frame = pd.DataFrame(rows, columns=["model", *columns]).set_index("model")
    return frame.style.format(
        {c: _dash(".3f") for c in columns if c != "L-BFGS / exact − 1 (mean)"}
        | {"L-BFGS / exact − 1 (mean)": "{:+.1%}"}
    )


def weight_decay_table(result: Result) -> Styler:
    """FC10 at λ = 1 and at the alternative λ, beside the paper's FC10(1)."""
    a, paper1 = result.alt, papers.SZEGEDY_TABLE1[REF_KEY]
    return pd.DataFrame(
        {
            "test error": [_f(a["ref_err"]), _f(a["alt_err"]), paper1["test_error"]],
            "distortion": [_f(a["ref_dist"]), _f(a["alt_dist"]), paper1["distortion"]],
        },
        index=[
            f"ours, λ = 1 ({REF_KEY})",
            f"ours, λ = {result.settings['alt_weight_decay']:g} ({a['alt_key']})",
            "paper, FC10(1)",
        ],
    ).style.format({"test error": "{:.2%}", "distortion": "{:.3f}"})


# --------------------------------------------------------------------------- figures
def distortion_figure(result: Result) -> Figure:
    """Our mean distortion beside the paper's Table 1, for the paper's models."""
    keys = [k for k in result.settings["models"] if k in papers.SZEGEDY_TABLE1]
    return plotting.paired_bars(
        keys,
        [_f(result.rows[k]["distortion"]) for k in keys],
        [papers.SZEGEDY_TABLE1[k]["distortion"] for k in keys],
        ylabel="mean minimum distortion √(Σr²/n)",
        title="L-BFGS distortion, this study and Szegedy et al.'s Table 1",
        percent=False,
    )


def refinement_figure(result: Result) -> Figure:
    """The mean distortion had the c search stopped after fewer bisections, per model."""
    return plotting.curves(
        list(range(result.settings["search_steps"] + 1)),
        {k: list(v) for k, v in result.refine.items()},
        xlabel="bisections of c after bracketing",
        ylabel="mean distortion of the successes",
        title="The c search's estimate of the minimum distortion",
        percent=False,
    )


def grid_figure(result: Result) -> Figure:
    """The grid model's originals, perturbations and adversarial samples (:func:`sample_grid`)."""
    return sample_grid(
        torch.from_numpy(result.grid_x),
        torch.from_numpy(result.grid_x_adv),
        torch.from_numpy(result.grid_y),
        torch.from_numpy(result.grid_target),
        torch.from_numpy(result.grid_p_clean),
        torch.from_numpy(result.grid_p_adv),
        title=f"L-BFGS on {result.settings['grid_model']}",
    )


@torch.no_grad()
def sample_grid_figure(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    title: str = "",
) -> Figure:
    """:func:`sample_grid` with ``model``'s probabilities for ``x`` and ``x_adv``."""
    if not (x.shape == x_adv.shape and len(x) == len(y) == len(target) and len(x) > 0):
        raise ValueError("x, x_adv, y and target must describe the same non-empty batch")
    return sample_grid(x, x_adv, y, target, model(x).softmax(1), model(x_adv).softmax(1), title)


def sample_grid(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor,
    p_clean: torch.Tensor,
    p_adv: torch.Tensor,
    title: str = "",
) -> Figure:
    """Three rows: originals, perturbations ``x_adv - x`` (diverging colormap, symmetric range set by
    the largest change shown, i.e. magnified) and adversarial samples, each digit titled with the
    model's prediction and probability (``p_clean``, ``p_adv``: ``(k, classes)``); columns are
    headed "label → target"."""
    if not (x.shape == x_adv.shape and len(x) == len(y) == len(target) == len(p_clean) == len(p_adv) > 0):
        raise ValueError("x, x_adv, y, target and the probabilities must describe the same non-empty batch")
    k = len(x)
    r = (x_adv - x).reshape(k, 28, 28).cpu().numpy()
    lim = float(np.abs(r).max()) or 1.0
    fig, axes = plt.subplots(3, k, figsize=(1.25 * k, 4.3), squeeze=False)
    for j in range(k):
        c_conf, c_pred = p_clean[j].max(0)
        a_conf, a_pred = p_adv[j].max(0)
        panels = [
            (x[j].reshape(28, 28).cpu().numpy(), "gray", (0.0, 1.0), f"{int(c_pred)} ({float(c_conf):.0%})"),
            (r[j], "RdBu_r", (-lim, lim), f"‖r‖={math.sqrt(float((r[j] ** 2).mean())):.3f}"),
            (
                x_adv[j].reshape(28, 28).cpu().numpy(),
                "gray",
                (0.0, 1.0),
                f"{int(a_pred)} ({float(a_conf):.0%})",
            ),
        ]
        for i, (img, cmap, (vmin, vmax), label) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(label, fontsize=7, labelpad=2)
        axes[0, j].set_title(f"{int(y[j])} → {int(target[j])}", fontsize=8)
    for i, label in enumerate(["original", f"r (±{lim:.2f})", "adversarial"]):
        axes[i, 0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, despine=False)


def headline(result: Result) -> Headline:
    """The chapter's opening box: Szegedy et al.'s Table 1 distortions beside ours, model by
    model (the models their table reports)."""
    g = glue_values(result)
    s = result.settings
    rows = []
    for key in s["models"]:
        if key in papers.SZEGEDY_TABLE1:
            k = slug(key)
            rows.append(
                (
                    f"{papers.PAPER_MODELS[key].label}: mean distortion (success)",
                    f"{papers.SZEGEDY_TABLE1[key]['distortion']:.3f}",
                    f"{g[f'dist_{k}']:.3f} ({g[f'success_{k}']:.0%})",
                )
            )
    return Headline(
        "Szegedy et al. (2014), Table 1",
        tuple(rows),
        "distortion √(Σr²/n) of the smallest adversarial sample found by box-constrained L-BFGS; "
        "how many samples, which targets and how c was searched are not given",
        f"the same distortion on {g['n_samples']:,} correctly classified test digits per model, "
        f"random targets, c searched from {g['c_init']:g} with {g['search_steps']} bisections",
    )


def fidelity(result: Result) -> list[Gap]:
    """Each Table 1 distortion beside the paper's, with the experiment that tests a cause where
    one can be run: for FC10(1), the textbook weight-decay convention (``alt_weight_decay``);
    for a distortion below the paper's, the shortest c search (bracketing only, the first point
    of :func:`search_refinement`'s curve), the one change of our search that raises it."""
    g = glue_values(result)
    s = result.settings
    out: list[Gap | None] = []
    for key in s["models"]:
        paper = papers.SZEGEDY_TABLE1.get(key)
        if paper is None:
            continue
        k, label = slug(key), papers.PAPER_MODELS[key].label
        ours = g[f"dist_{k}"]
        reading: float | None = None
        experiment = note = ""
        if key == REF_KEY and s["alt_weight_decay"] != 1.0:
            reading, experiment = g["alt_dist"], f"λ = {s['alt_weight_decay']:g} (the textbook ½λ‖W‖²)"
        elif ours < paper["distortion"] and s["search_steps"] > 0:
            reading, experiment = float(result.refine[key][0]), "the c search without bisection"
            note = (
                "a shorter search can only raise our distortion; the other candidates, the paper's "
                "targets, images and training, are not stated"
            )
        out.append(
            Gap.maybe(
                f"{label}: distortion",
                "distortion",
                paper["distortion"],
                ours,
                reading,
                experiment,
                note,
                ".3f",
            )
        )
    return known(*out)
