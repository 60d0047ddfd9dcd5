r"""The adversarial-training chapter: Goodfellow et al.'s FGSM training and Papernot et al.'s
JSMA training of the paper's LeNet, and whether a defence against one attack holds against
the others.

The chapter's shape (see :mod:`advsamples.chapter`):

- :class:`Params`: the notebook's ``parameters`` cell, validated on construction;
- :func:`run`: all the chapter's work, cached by its parameters and its models' checkpoints,
  giving a :class:`Result`;
- :func:`glue_values` and :func:`headline`: the numbers and phrases the prose quotes;
- views of a :class:`Result`: :func:`summary_table`, :func:`fgsm_curve_figure`,
  :func:`attacks_figure`.

The three models share one architecture, one seed and one number of epochs (the defended
models' schedule), and differ only in what they were trained on:

- ``clean``: the paper's LeNet, ``lenet_paper``, trained on the plain cross-entropy;
- ``fgsm``: ``lenet_paper_fgsm``, trained on Goodfellow et al.'s objective (their Sec. 6)
  :math:`\alpha J(x, y) + (1 - \alpha) J(x + \epsilon\,\mathrm{sign}\,\nabla_x J(x, y), y)`,
  the FGSM samples crafted against the current weights at every minibatch;
- ``jsma``: ``lenet_paper_jsma``, trained on the 50,000 training digits plus JSMA samples
  crafted against ``clean`` from ``n_augment`` of them toward each of their nine other classes
  (Papernot et al.'s 18,000 samples at ``n_augment = 2000``), each labelled with its digit's
  true class (:func:`augmentation`).

Each is then attacked on the same test digits: FGSM along a range of budgets, PGD (Madry et
al.) at the training budget, and JSMA (θ = +1, Υ = 14.5%, the logits' derivative).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
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
from advsamples.attacks.pgd import STEP_FACTOR, pgd
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, chunked, param
from advsamples.experiments.common import Gap, known, sample_indices
from advsamples.experiments.jsma_runs import Crafted, craft, summarize
from advsamples.params import check_count, check_int, check_number, check_numbers

__all__ = [
    "EVAL_CHUNK",
    "MODELS",
    "Params",
    "Result",
    "attacks_figure",
    "augmentation",
    "augmentation_key",
    "eval_arrays",
    "eval_chunk",
    "eval_digits",
    "SAME_POINTS",
    "change_phrase",
    "cross_norm_phrase",
    "shortcut_phrase",
    "fgsm_curve_figure",
    "glue_values",
    "fidelity",
    "headline",
    "jsma_run",
    "holds_phrase",
    "load_models",
    "relative_change",
    "run",
    "summary_table",
]

#: The chapter's models, in the order of every per-model array: what each was trained on.
MODELS: tuple[str, ...] = ("clean", "fgsm", "jsma")
_LABELS = {"clean": "plain training", "fgsm": "FGSM training", "jsma": "JSMA training"}
_VERSION = 2  # 2: chunks of EVAL_CHUNK digits, PGD seeded per chunk
#: Format version of the chapter's result (3: the per-digit record).
_RESULT_VERSION = 3
_TEST_DIGITS = 10000
_TRAIN_DIGITS = 50000
_MAX_SEED = 2**31 - 1
#: Test digits per chunk of the FGSM and PGD evaluation (a killed run loses at most one; the
#: audit re-derives whole chunks).
EVAL_CHUNK = 250
#: The JSMA settings of the chapter: the paper's (θ = +1, Υ = 14.5%, the logits' derivative).
THETA, GAMMA, USE_LOGITS = 1.0, 0.145, True
AT = papers.ADVERSARIAL_TRAINING


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the adversarial-training chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "advtrain"

    alpha: float = param(0.5, "weight α of the clean loss in Goodfellow et al.'s objective (theirs 0.5)")
    eps: float = param(0.25, "FGSM budget ε of the training objective and of the evaluation (theirs 0.25)")
    eps_values: list[float] = param(
        [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], "budgets of the FGSM error curves (ε must be one of them)"
    )
    n_eval: int = param(1000, "test digits attacked by FGSM and PGD, per model")
    pgd_steps: int = param(10, "PGD steps, each of 2.5·ε/steps (Madry et al.: 40)")
    n_jsma: int = param(20, "test digits attacked by JSMA toward each of their 9 other classes, per model")
    n_augment: int = param(
        200,
        "training digits whose JSMA samples (toward each other class) join the training set (2,000: 18,000)",
    )
    seed: int = param(0, "seed of every random draw of the chapter")

    def validate(self) -> None:
        super().validate()
        check_number("alpha", self.alpha, lo=0, hi=1)
        check_number("eps", self.eps, lo=0, lo_open=True, hi=1)
        check_numbers("eps_values", self.eps_values, lo=0, hi=1, increasing=True, max_len=51)
        if not any(math.isclose(e, self.eps) for e in self.eps_values):
            raise ValueError(f"parameter eps_values={self.eps_values!r} must include eps={self.eps!r}")
        check_count("n_eval", self.n_eval, _TEST_DIGITS, "test digits")
        check_int("pgd_steps", self.pgd_steps, 1, 1000, "a bound that keeps the run finite")
        check_count("n_jsma", self.n_jsma, _TEST_DIGITS, "test digits")
        check_count("n_augment", self.n_augment, _TRAIN_DIGITS, "training digits")
        check_int("seed", self.seed, 0, _MAX_SEED, "a 31-bit torch seed")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}

    def epochs(self) -> int:
        """The training length of all three models: the defended models' schedule."""
        return M.SCHEDULES[self.schedule]["lenet_paper_fgsm"]


@dataclass(frozen=True)
class Result(ChapterResult):
    """What the chapter measured, per model in :data:`MODELS` order.

    Attributes:
        params: the chapter's parameters (:meth:`Params.as_dict`).
        epochs: the training length of the three models.
        n_augmented: JSMA samples added to the ``jsma`` model's training set, and how many of
            them reached their target on ``clean``.
        test_error: ``(models,)`` error on the whole test set (the checkpoints' records).
        fgsm_error / fgsm_confidence: ``(models, budgets)`` error after untargeted FGSM on the
            ``n_eval`` digits along ``eps_values``, and the mean probability of the wrong label.
        pgd_error: ``(models,)`` error after PGD at ``eps`` (random start) on the same digits.
        jsma: per model, the JSMA :class:`advsamples.experiments.jsma_runs.Summary` as a dict.
        train_seconds: ``(models,)`` the checkpoints' training seconds.
        eval_wrong / eval_conf: ``(models, n_eval, budgets)`` per digit, whether FGSM at each
            budget fooled the model and the probability of its predicted label;
        eval_pgd_wrong: ``(models, n_eval)`` whether PGD fooled it: the per-digit record
            ``make audit`` computes again.
    """

    params: dict[str, Any]
    epochs: int
    n_augmented: int
    augment_success: float
    test_error: np.ndarray
    fgsm_error: np.ndarray
    fgsm_confidence: np.ndarray
    pgd_error: np.ndarray
    jsma: dict[str, dict[str, Any]]
    train_seconds: np.ndarray
    eval_wrong: np.ndarray
    eval_conf: np.ndarray
    eval_pgd_wrong: np.ndarray


# --------------------------------------------------------------------------- the models
def augmentation_key(params: Params, clean_key: str) -> str:
    """The recipe of the ``jsma`` model's extra samples (the key its checkpoint carries): the
    model they are crafted on, the digits and the attack's settings."""
    recipe = {
        "model": clean_key,
        "n": params.n_augment,
        "seed": params.seed,
        "theta": THETA,
        "gamma": GAMMA,
        "use_logits": USE_LOGITS,
    }
    return "jsma-" + hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def augmentation(
    params: Params, clean: nn.Module, *, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Papernot et al.'s adversarial training set: ``n_augment`` training digits (seeded) pushed
    by JSMA toward each of their nine other classes on ``clean``, every sample labelled with its
    digit's true class (the attack's failures included: they are perturbed digits too). The
    attacks' outcomes are cached (:func:`_augment_success` reads them back)."""
    from advsamples.data import paper_sets

    x, y = paper_sets()["train"]
    idx = sample_indices(len(x), params.n_augment, params.seed)
    c = craft(
        clean,
        x[idx],
        y[idx],
        idx,
        model_key=M.model_info("lenet_paper", params.schedule, epochs=params.epochs()).key,
        keep_adv=True,
        store_adv=False,  # the cache keeps the attacks' outcomes, not 784 floats per sample
        progress=progress,
        desc="JSMA training samples",
        theta=THETA,
        gamma=GAMMA,
        use_logits=USE_LOGITS,
    )
    assert c.x_adv is not None
    return c.x_adv, c.source


def load_models(params: Params, *, progress: bool = False) -> dict[str, tuple[nn.Module, M.TrainedInfo]]:
    """The three models (trained first where no checkpoint matches) and their records."""
    e = params.epochs()
    overrides: dict[str, Any] = {"epochs": e}
    clean = M.get_model("lenet_paper", params.schedule, progress=progress, **overrides)
    clean_info = M.model_info("lenet_paper", params.schedule, **overrides)
    adv: dict[str, Any] = {"adv_eps": params.eps, "adv_alpha": params.alpha, **overrides}
    fgsm_model = M.get_model("lenet_paper_fgsm", params.schedule, progress=progress, **adv)
    fgsm_info = M.model_info("lenet_paper_fgsm", params.schedule, **adv)
    key = augmentation_key(params, clean_info.key)

    def extra() -> tuple[torch.Tensor, torch.Tensor]:
        return augmentation(params, clean, progress=progress)

    jsma_model = M.get_model(
        "lenet_paper_jsma", params.schedule, progress=progress, extra=key, extra_data=extra, **overrides
    )
    jsma_info = M.model_info("lenet_paper_jsma", params.schedule, extra=key, **overrides)
    return {"clean": (clean, clean_info), "fgsm": (fgsm_model, fgsm_info), "jsma": (jsma_model, jsma_info)}


# --------------------------------------------------------------------------- the work
def run(params: Params, *, progress: bool = True) -> Result:
    """All the chapter's work, cached by ``params`` and the three models' checkpoint keys."""
    models = load_models(params, progress=progress)
    keys = [info.key for _, info in models.values()]
    return cached(
        params, Result, lambda: _compute(params, models, progress), version=_RESULT_VERSION, models=keys
    )


def eval_digits(params: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """The test digits FGSM and PGD attack (seeded), and their labels."""
    from advsamples.data import load_mnist

    m = load_mnist()
    idx = sample_indices(len(m.x_test), params.n_eval, params.seed)
    return m.x_test[idx], m.y_test[idx]


def eval_chunk(
    params: Params, net: nn.Module, x: torch.Tensor, y: torch.Tensor, start: int
) -> dict[str, np.ndarray]:
    """FGSM at every budget and PGD at ``eps`` on the digits ``x`` (the chunk that begins at
    digit ``start`` of :func:`eval_digits`): whether each is misclassified, the probability of
    the predicted label after FGSM, and whether PGD fools the model. PGD's random start is drawn
    from a generator seeded by the chunk's position, so a chunk computed again is the same."""
    wrong, conf = [], []
    for e in params.eps_values:
        probs = net(fgsm(net, x, y, e)).softmax(1).detach()
        wrong.append((probs.argmax(1) != y).numpy())
        conf.append(probs.max(1).values.numpy())
    gen = torch.Generator().manual_seed(params.seed + start)
    step = STEP_FACTOR * params.eps / params.pgd_steps
    x_pgd = pgd(net, x, y, params.eps, steps=params.pgd_steps, alpha=step, random_start=True, generator=gen)
    with torch.no_grad():
        pgd_wrong = (net(x_pgd).argmax(1) != y).numpy()
    return {"wrong": np.stack(wrong, 1), "conf": np.stack(conf, 1), "pgd_wrong": pgd_wrong}


def eval_arrays(
    params: Params, name: str, net: nn.Module, info: M.TrainedInfo, *, progress: bool = False
) -> dict[str, np.ndarray]:
    """:func:`eval_chunk` over all of :func:`eval_digits`, chunk by chunk (cached, resumable)."""
    x, y = eval_digits(params)
    return chunked(
        params,
        len(x),
        EVAL_CHUNK,
        lambda a, b: eval_chunk(params, net, x[a:b], y[a:b], a),
        version=_VERSION,
        models=[info.key],
        step=f"eval-{name}",
        progress=progress,
        desc=f"FGSM and PGD, {_LABELS[name]}",
        unit="digit",
    )


def jsma_run(
    params: Params, name: str, net: nn.Module, info: M.TrainedInfo, *, progress: bool = False
) -> Crafted:
    """JSMA (the paper's settings) from ``n_jsma`` test digits (seeded) toward each of their nine
    other classes on model ``name`` (from the attack cache when it holds the run)."""
    from advsamples.data import load_mnist

    m = load_mnist()
    idx = sample_indices(len(m.x_test), params.n_jsma, params.seed)
    return craft(
        net,
        m.x_test[idx],
        m.y_test[idx],
        idx,
        model_key=info.key,
        progress=progress,
        desc=f"JSMA, {_LABELS[name]}",
        theta=THETA,
        gamma=GAMMA,
        use_logits=USE_LOGITS,
    )


def _compute(params: Params, models: Mapping[str, tuple[nn.Module, M.TrainedInfo]], progress: bool) -> Result:
    p = params
    budgets = list(p.eps_values)
    fgsm_error, fgsm_conf, pgd_error, record = [], [], [], []
    for name, (net, info) in models.items():
        arrays = eval_arrays(p, name, net, info, progress=progress)
        record.append(arrays)
        wrong = arrays["wrong"].astype(bool)
        fgsm_error.append(wrong.mean(0))
        # mean confidence in the wrong label, over the digits the attack fooled (NaN if none)
        fgsm_conf.append(
            np.array(
                [
                    arrays["conf"][wrong[:, j], j].mean() if wrong[:, j].any() else math.nan
                    for j in range(len(budgets))
                ]
            )
        )
        pgd_error.append(float(arrays["pgd_wrong"].mean()))
    jsma_summaries = {
        name: dataclasses.asdict(summarize(jsma_run(p, name, net, info, progress=progress)))
        for name, (net, info) in models.items()
    }
    aug_success = _augment_success(p, models)
    return Result(
        params=p.as_dict(),
        epochs=p.epochs(),
        n_augmented=p.n_augment * 9,
        augment_success=aug_success,
        test_error=np.array([1 - info.test_accuracy for _, info in models.values()]),
        fgsm_error=np.array(fgsm_error),
        fgsm_confidence=np.array(fgsm_conf),
        pgd_error=np.array(pgd_error),
        jsma=jsma_summaries,
        train_seconds=np.array([info.train_seconds for _, info in models.values()]),
        eval_wrong=np.stack([a["wrong"].astype(bool) for a in record]),
        eval_conf=np.stack([a["conf"].astype(np.float32) for a in record]),
        eval_pgd_wrong=np.stack([a["pgd_wrong"].astype(bool) for a in record]),
    )


def _augment_success(params: Params, models: Mapping[str, tuple[nn.Module, M.TrainedInfo]]) -> float:
    """Share of the augmentation's attacks that reached their target on ``clean``: its attacks
    without their images, read back from the attack cache that :func:`augmentation` filled."""
    from advsamples.data import paper_sets

    x, y = paper_sets()["train"]
    idx = sample_indices(len(x), params.n_augment, params.seed)
    net, info = models["clean"]
    return float(
        summarize(
            craft(
                net, x[idx], y[idx], idx, model_key=info.key, theta=THETA, gamma=GAMMA, use_logits=USE_LOGITS
            )
        ).success
    )


# --------------------------------------------------------------------------- phrases
def relative_change(before: float, after: float) -> float:
    """``after / before - 1`` (NaN when ``before`` is 0)."""
    return after / before - 1 if before else math.nan


def change_phrase(change: float) -> str:
    """A relative change as words: ``"12.5% lower"`` / ``"12.5% higher"`` / ``"unchanged"``."""
    if change == 0 or not math.isfinite(change):
        return "unchanged"
    return f"{abs(change):.1%} {'higher' if change > 0 else 'lower'}"


#: A change of an attack's rate smaller than this (in points) is called no change.
SAME_POINTS = 0.05


def holds_phrase(defended: float, undefended: float) -> str:
    """Whether a defence holds against an attack: the defended model's error after the attack
    against the undefended one's. It holds when the error falls by at least half; it helps
    partly when it falls by :data:`SAME_POINTS` or more; otherwise it makes little difference
    (or, with the error higher by that much, it does not hold)."""
    move = f"{undefended:.1%} to {defended:.1%}"
    if defended <= undefended / 2:
        return f"holds: the error falls from {move}"
    if defended <= undefended - SAME_POINTS:
        return f"helps only partly: the error falls from {move}"
    if defended < undefended + SAME_POINTS:
        return f"makes little difference: the error goes from {move}"
    return f"does not hold: the error rises from {move}"


def cross_norm_phrase(change: float) -> str:
    """What training inside an L∞ ball does to an L0 attack, from JSMA's relative change of
    success (less than 10% either way: little)."""
    if abs(change) < 0.1:
        return "a defence trained inside an L∞ ball does little against an L0 attacker"
    return f"training inside an L∞ ball also makes the L0 attack {'harder' if change < 0 else 'easier'}"


def shortcut_phrase(fgsm_error: float, pgd_error: float) -> str:
    """Whether the iterated attack undoes what FGSM training bought against the one-step one."""
    if pgd_error - fgsm_error > 0.1:
        return (
            "much of what FGSM training buys against the one-step attack is lost to the iterated one "
            "at the same budget: the model has learnt to defeat FGSM's linearisation more than it has "
            "become robust inside the ball"
        )
    return (
        "the iterated attack gains little over the one-step one at the same budget: the defence holds "
        "inside the ball, not only against FGSM"
    )


def _at(result: Result, eps: float) -> int:
    return next(i for i, e in enumerate(result.params["eps_values"]) if math.isclose(e, eps))


def glue_values(result: Result) -> dict[str, Any]:
    """Every glue key the chapter's prose quotes, and its value."""
    r = result
    p = r.params
    j = _at(r, p["eps"])
    i = {name: k for k, name in enumerate(MODELS)}
    g: dict[str, Any] = {
        "alpha": p["alpha"],
        "eps": p["eps"],
        "epochs": r.epochs,
        "n_eval": p["n_eval"],
        "n_jsma_attacks": p["n_jsma"] * 9,
        "pgd_steps": p["pgd_steps"],
        "pgd_step": STEP_FACTOR * p["eps"] / p["pgd_steps"],
        "n_augmented": r.n_augmented,
        "augment_success": r.augment_success,
        "paper_adv_error_before": AT["goodfellow_adv_error_before"],
        "paper_adv_error_after": AT["goodfellow_adv_error_after"],
        "paper_jsma_samples": AT["papernot_samples"],
        "paper_success_change": AT["papernot_success_change"],
        "paper_distortion_change": AT["papernot_distortion_change"],
    }
    for name in MODELS:
        k = i[name]
        js = r.jsma[name]
        g |= {
            f"test_error_{name}": float(r.test_error[k]),
            f"fgsm_error_{name}": float(r.fgsm_error[k, j]),
            f"fgsm_confidence_{name}": float(r.fgsm_confidence[k, j]),
            f"pgd_error_{name}": float(r.pgd_error[k]),
            f"jsma_success_{name}": float(js["success"]),
            f"jsma_distortion_{name}": float(js["distortion_success"]),
        }
    c, f, s = "clean", "fgsm", "jsma"
    succ_change = relative_change(g[f"jsma_success_{c}"], g[f"jsma_success_{s}"])
    dist_change = relative_change(g[f"jsma_distortion_{c}"], g[f"jsma_distortion_{s}"])
    g |= {
        "jsma_success_change": succ_change,
        "jsma_success_change_points": g[f"jsma_success_{s}"] - g[f"jsma_success_{c}"],
        "jsma_distortion_change": dist_change,
        "jsma_success_change_phrase": change_phrase(succ_change),
        "jsma_distortion_change_phrase": change_phrase(dist_change),
        "fgsm_holds": holds_phrase(g[f"fgsm_error_{f}"], g[f"fgsm_error_{c}"]),
        "pgd_holds": holds_phrase(g[f"pgd_error_{f}"], g[f"pgd_error_{c}"]),
        "fgsm_model_jsma_change": relative_change(g[f"jsma_success_{c}"], g[f"jsma_success_{f}"]),
        "fgsm_model_jsma_phrase": change_phrase(
            relative_change(g[f"jsma_success_{c}"], g[f"jsma_success_{f}"])
        ),
        "jsma_model_fgsm_holds": holds_phrase(g[f"fgsm_error_{s}"], g[f"fgsm_error_{c}"]),
        "cross_norm_phrase": cross_norm_phrase(
            relative_change(g[f"jsma_success_{c}"], g[f"jsma_success_{f}"])
        ),
        "shortcut_phrase": shortcut_phrase(g[f"fgsm_error_{f}"], g[f"pgd_error_{f}"]),
        "jsma_training_verdict": (
            "makes JSMA harder"
            if g[f"jsma_success_{s}"] < g[f"jsma_success_{c}"]
            else "does not make JSMA harder"
        ),
        "pgd_gap_fgsm_model": g[f"pgd_error_{f}"] - g[f"fgsm_error_{f}"],
        "clean_error_change_fgsm": g[f"test_error_{f}"] - g[f"test_error_{c}"],
        "clean_error_change_jsma": g[f"test_error_{s}"] - g[f"test_error_{c}"],
    }
    return g


def headline(result: Result) -> Headline:
    """The chapter's opening box: the papers' before-and-after numbers beside ours."""
    g = glue_values(result)
    return Headline(
        "Goodfellow et al. (2015), Sec. 6; Papernot et al. (2016)",
        (
            (
                f"FGSM error at ε = {g['eps']:g}: plain → FGSM training",
                f"{g['paper_adv_error_before']:.1%} → {g['paper_adv_error_after']:.1%} (maxout network)",
                f"{g['fgsm_error_clean']:.1%} → {g['fgsm_error_fgsm']:.1%} (LeNet)",
            ),
            (
                "JSMA success: change after JSMA training",
                f"{g['paper_success_change']:+.1%}",
                f"{g['jsma_success_change']:+.1%} "
                f"({g['jsma_success_clean']:.1%} → {g['jsma_success_jsma']:.1%})",
            ),
            (
                "JSMA distortion: change after JSMA training",
                f"{g['paper_distortion_change']:+.1%}",
                f"{g['jsma_distortion_change']:+.1%} "
                f"({g['jsma_distortion_clean']:.2%} → {g['jsma_distortion_jsma']:.2%})",
            ),
            (
                f"PGD error at ε = {g['eps']:g} on the FGSM-trained model",
                "not reported",
                f"{g['pgd_error_fgsm']:.1%} (plain training: {g['pgd_error_clean']:.1%})",
            ),
        ),
        f"a maxout network (Goodfellow); a LeNet and {AT['papernot_samples']:,} JSMA samples (Papernot)",
        f"LeNets trained {g['epochs']} epochs, {g['n_eval']:,} test digits for FGSM and PGD, "
        f"{g['n_jsma_attacks']:,} JSMA attacks per model, {g['n_augmented']:,} JSMA training samples",
    )


def fidelity(result: Result) -> list[Gap]:
    """The papers' before-and-after numbers beside ours. No experiment here isolates a cause:
    Goodfellow et al.'s numbers are a maxout network's, and Papernot et al. give neither their
    retraining schedule nor which of their samples they trained on (the notes say so). The JSMA
    changes are relative changes, compared in points."""
    g = glue_values(result)
    maxout = "the paper's model is a maxout network, ours the paper's LeNet"
    schedule = "the paper gives neither the retraining schedule nor which samples it kept"
    return known(
        Gap.maybe(
            f"FGSM error at ε = {g['eps']:g}, plain training",
            "rate",
            g["paper_adv_error_before"],
            g["fgsm_error_clean"],
            note=maxout,
        ),
        Gap.maybe(
            f"FGSM error at ε = {g['eps']:g}, FGSM training",
            "rate",
            g["paper_adv_error_after"],
            g["fgsm_error_fgsm"],
            note=maxout,
        ),
        Gap.maybe(
            "JSMA success, relative change after JSMA training",
            "rate",
            g["paper_success_change"],
            g["jsma_success_change"],
            note=schedule,
        ),
        Gap.maybe(
            "JSMA distortion, relative change after JSMA training",
            "rate",
            g["paper_distortion_change"],
            g["jsma_distortion_change"],
            note=schedule,
        ),
    )


# --------------------------------------------------------------------------- views
def summary_table(result: Result) -> Styler:
    """Per model: test error, FGSM and PGD error at ε, JSMA success and distortion."""
    g = glue_values(result)
    rows = [
        {
            "model": _LABELS[name],
            "test error": g[f"test_error_{name}"],
            f"FGSM error (ε = {g['eps']:g})": g[f"fgsm_error_{name}"],
            "FGSM confidence": g[f"fgsm_confidence_{name}"],
            f"PGD error (ε = {g['eps']:g})": g[f"pgd_error_{name}"],
            "JSMA success": g[f"jsma_success_{name}"],
            "JSMA distortion (successful)": g[f"jsma_distortion_{name}"],
        }
        for name in MODELS
    ]
    return pd.DataFrame(rows).set_index("model").style.format("{:.2%}", na_rep="—")


def fgsm_curve_figure(result: Result) -> Figure:
    """FGSM error along ε for the three models, with PGD's error at ε marked."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    eps = result.params["eps_values"]
    for k, name in enumerate(MODELS):
        (line,) = ax.plot(eps, result.fgsm_error[k], marker="o", label=f"{_LABELS[name]}: FGSM")
        ax.plot(
            [result.params["eps"]],
            [result.pgd_error[k]],
            marker="*",
            markersize=13,
            color=line.get_color(),
            linestyle="none",
            label=f"{_LABELS[name]}: PGD",
        )
    ax.set_xlabel("ε (L∞ budget)")
    ax.set_ylabel("error on the attacked test digits")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(frameon=False, fontsize=8, ncol=2)
    return plotting.finish(fig)


def attacks_figure(result: Result) -> Figure:
    """Each attack's result on each model: FGSM and PGD error at ε, JSMA success."""
    g = glue_values(result)
    attacks = [
        (f"FGSM, ε = {g['eps']:g}", "fgsm_error"),
        (f"PGD, ε = {g['eps']:g}", "pgd_error"),
        ("JSMA, Υ = 14.5%", "jsma_success"),
    ]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    width = 0.25
    for k, name in enumerate(MODELS):
        values = [g[f"{key}_{name}"] for _, key in attacks]
        ax.bar(np.arange(len(attacks)) + (k - 1) * width, values, width, label=_LABELS[name])
    ax.set_xticks(np.arange(len(attacks)), [a for a, _ in attacks])
    ax.set_ylabel("attack's success (error or target reached)")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(frameon=False, fontsize=8)
    return plotting.finish(fig)
