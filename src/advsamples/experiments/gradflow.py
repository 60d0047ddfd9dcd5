r"""The gradient-flow chapter: what the attacks do when the input gradient does not flow.

The report's claim is that the attacks need :math:`\nabla_x L` to flow back through the whole
network. This chapter tests it from the other side, on the paper's LeNet:

- **masked gradients**: the LeNet behind a non-differentiable input step, each pixel rounded to
  one of ``L`` levels (:func:`advsamples.models.quantize`; ``L = 2`` binarises at 0.5). Autograd
  differentiates the step, whose derivative is zero almost everywhere, so FGSM, JSMA and L-BFGS
  see a zero gradient;
- **straight-through** (BPDA, Athalye et al. 2018): the same model, the step replaced by the
  identity in the backward pass only (:class:`advsamples.models.InputStep` with
  ``straight_through=True``): its forward pass, hence every success, is the masked model's;
- **black-box** (Papernot et al. 2017): a substitute trained on the target's labels alone, its
  seed set grown by Jacobian-based dataset augmentation
  (:func:`advsamples.attacks.blackbox.train_substitute`); FGSM and JSMA crafted on it are sent
  to the target, the undefended and the masked ones.

The white-box variants are named ``plain``, ``masked<L>`` and ``bpda<L>``; the black-box
oracles ``plain`` and ``masked<L>``.

The chapter's shape (see :mod:`advsamples.chapter`): :class:`Params`, :func:`run` (cached, each
piece saved in chunks so that a killed run resumes), :func:`glue_values`, :func:`headline`,
:func:`fidelity`, and the views :func:`summary_table`, :func:`queries_figure` and
:func:`eps_figure`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler
from torch import nn

from advsamples import models as M
from advsamples import papers, plotting
from advsamples.attacks.blackbox import train_substitute
from advsamples.attacks.fgsm import fgsm
from advsamples.attacks.jsma import jsma_trace
from advsamples.attacks.lbfgs import lbfgs_trace
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, chunked, param
from advsamples.data import load_mnist
from advsamples.experiments.common import (
    Gap,
    check_search,
    known,
    random_targets,
    sample_indices,
    search_settings,
)
from advsamples.experiments.jsma_runs import craft, summarize
from advsamples.params import check_count, check_int, check_number, check_numbers

__all__ = [
    "EVAL_CHUNK",
    "LBFGS_CHUNK",
    "Params",
    "Result",
    "blackbox_chunk",
    "blackbox_phrase",
    "rounds_phrase",
    "transfers",
    "blackbox_digits",
    "eps_figure",
    "eval_chunk",
    "eval_digits",
    "fidelity",
    "flippable",
    "glue_values",
    "headline",
    "input_gradient",
    "kept_back_phrase",
    "lbfgs_chunk",
    "oracle_labels",
    "queries_figure",
    "restores_phrase",
    "run",
    "stops_phrase",
    "summary_table",
    "oracle_names",
    "variant_model",
    "variant_names",
    "verdict_phrase",
]

_VERSION = 1
_TEST_DIGITS = 10000
_MAX_SEED = 2**31 - 1
#: Digits per chunk of the white-box FGSM evaluation (a killed run loses at most one; the audit
#: re-derives whole chunks).
EVAL_CHUNK = 500
#: L-BFGS attacks per chunk.
LBFGS_CHUNK = 10
#: The substitute's minibatch (the reference tutorial's).
SUB_BATCH = 128
#: JSMA's settings: the paper's (θ = +1, Υ = 14.5%, the logits' derivative).
THETA, GAMMA, USE_LOGITS = 1.0, 0.145, True
BB = papers.PAPERNOT_BLACKBOX
#: Two rates closer than this (points) are called the same in the prose.
CLOSE = 0.05


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the gradient-flow chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "gradflow"

    model: str = param("lenet_paper", "the model behind the input step (the paper's LeNet)")
    levels: list[int] = param([2, 4], "input steps: levels per pixel (2 binarises at 0.5)")
    eps: float = param(0.25, "white-box FGSM: the L∞ budget of the tables (must be in eps_values)")
    eps_values: list[float] = param(
        [0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5],
        "FGSM: the budgets of the curves (white- and black-box), from 0 (no attack)",
    )
    n_eval: int = param(500, "white-box FGSM: test digits per model")
    n_jsma: int = param(3, "white-box JSMA: test digits, each toward its 9 other classes, per model")
    n_lbfgs: int = param(3, "white-box L-BFGS: test digits, each toward one random class, per model")
    c_init: float = param(0.1, "L-BFGS: first penalty weight c")
    search_steps: int = param(6, "L-BFGS: geometric bisections of c once a success and a failure bracket it")
    bracket_steps: int = param(6, "L-BFGS: at most this many ×10 / ÷10 moves of c to find the bracket")
    max_iter: int = param(100, "L-BFGS: L-BFGS-B iterations per optimisation")
    n_seed: int = param(150, "black-box: the attacker's seed digits, labelled by the target (theirs 150)")
    rounds: int = param(6, "black-box: substitute training rounds ρ, each but the last doubling the set (6)")
    sub_epochs: int = param(10, "black-box: substitute training epochs per round (10)")
    lam: float = param(0.1, "black-box: the augmentation step λ (0.1)")
    tau: int = param(3, "black-box: λ changes sign every τ rounds (3)")
    sub_lr: float = param(0.001, "black-box: the substitute's Adam learning rate (0.001)")
    bb_eps: float = param(0.3, "black-box: FGSM's L∞ budget on the substitute (theirs 0.3)")
    n_bb: int = param(1000, "black-box: test digits (none of the seed) sent to the target, FGSM")
    n_bb_jsma: int = param(20, "black-box: of those, the first digits JSMA attacks toward one random class")
    seed: int = param(0, "seed of every random draw of the chapter")

    def validate(self) -> None:
        super().validate()
        from advsamples.params import check_choice

        check_choice("model", self.model, M.MODEL_KEYS)
        if (
            not isinstance(self.levels, list)
            or not self.levels
            or len(self.levels) > 4
            or any(isinstance(v, bool) or not isinstance(v, int) or not 2 <= v <= 256 for v in self.levels)
            or sorted(set(self.levels)) != self.levels
        ):
            raise ValueError(
                f"parameter levels={self.levels!r} must be 1 to 4 increasing integers in [2, 256]"
            )
        check_number("eps", self.eps, lo=0, lo_open=True, hi=1)
        check_numbers("eps_values", self.eps_values, lo=0, hi=1, increasing=True, max_len=51)
        if not any(math.isclose(e, self.eps) for e in self.eps_values):
            raise ValueError(f"parameter eps_values={self.eps_values!r} must include eps={self.eps!r}")
        if self.eps_values[0] != 0:
            raise ValueError(
                f"parameter eps_values={self.eps_values!r} must start at 0 "
                "(the models' error on the clean digits)"
            )
        check_count("n_eval", self.n_eval, _TEST_DIGITS, "test digits")
        check_count("n_jsma", self.n_jsma, _TEST_DIGITS, "test digits")
        check_count("n_lbfgs", self.n_lbfgs, _TEST_DIGITS, "test digits")
        check_search(self)
        check_int("n_seed", self.n_seed, 1, _TEST_DIGITS - 1, "test digits, leaving some to attack")
        check_int("rounds", self.rounds, 1, 12, "the set doubles each round: 2^11 times the seed at most")
        check_int("sub_epochs", self.sub_epochs, 1, 1000, "a bound that keeps the run finite")
        check_number("lam", self.lam, lo=0, lo_open=True, hi=1)
        check_int("tau", self.tau, 1, 100, "rounds")
        check_number("sub_lr", self.sub_lr, lo=0, lo_open=True, hi=1)
        check_number("bb_eps", self.bb_eps, lo=0, lo_open=True, hi=1)
        check_int("n_bb", self.n_bb, 1, _TEST_DIGITS - self.n_seed, "the test digits left after the seed")
        check_int("n_bb_jsma", self.n_bb_jsma, 1, self.n_bb, "at most n_bb")
        check_int("seed", self.seed, 0, _MAX_SEED, "a 31-bit torch seed")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}

    def variants(self) -> list[str]:
        """:func:`variant_names` of the chapter's levels."""
        return variant_names(self.levels)

    def oracles(self) -> list[str]:
        """:func:`oracle_names` of the chapter's levels."""
        return oracle_names(self.levels)


def variant_names(levels: list[int]) -> list[str]:
    """The white-box models: ``plain``, then ``masked<L>`` and ``bpda<L>`` for each level."""
    return ["plain"] + [f"{kind}{L}" for L in levels for kind in ("masked", "bpda")]


def oracle_names(levels: list[int]) -> list[str]:
    """The black-box targets: ``plain`` and each ``masked<L>``."""
    return ["plain"] + [f"masked{L}" for L in levels]


def _parse(name: str) -> tuple[str, int] | None:
    """``(kind, levels)`` of a ``masked<L>`` or ``bpda<L>`` name, ``None`` for anything else."""
    for kind in ("masked", "bpda"):
        if name.startswith(kind) and name[len(kind) :].isdigit():
            return kind, int(name[len(kind) :])
    return None


def _step_word(levels: int) -> str:
    """The step as an adjective: ``binarised`` or ``<L>-level``."""
    return "binarised" if levels == 2 else f"{levels}-level"


def variant_model(net: nn.Module, name: str) -> nn.Module:
    """``net`` itself (``plain``), behind the ``L``-level step (``masked<L>``), or behind it with
    the straight-through backward pass (``bpda<L>``).

    Raises:
        ValueError: for any other name.
    """
    if name == "plain":
        return net
    parsed = _parse(name)
    if parsed is not None:
        kind, levels = parsed
        return M.InputStep(net, levels, straight_through=kind == "bpda").eval()
    raise ValueError(f"unknown variant={name!r}: plain, masked<L> or bpda<L>")


def _label(name: str) -> str:
    if name == "plain":
        return "undefended"
    parsed = _parse(name)
    if parsed is None:
        return name
    kind, levels = parsed
    step = "binarised" if levels == 2 else f"{levels} levels"
    return f"{step}, {'masked' if kind == 'masked' else 'straight-through'}"


# --------------------------------------------------------------------------- the work
def input_gradient(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:math:`\\nabla_x L(f(x), y)`, the cross-entropy's input gradient, per digit (``x``'s shape)."""
    x_in = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(net(x_in), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x_in)
    return grad


def flippable(x: torch.Tensor, levels: int, eps: float) -> torch.Tensor:
    """Per digit, the share of pixels whose step value a change of at most ``eps`` (inside
    [0, 1]) can alter: the only pixels an L∞ attack at ``eps`` can move past the step."""
    q = M.quantize(x, levels)
    up = M.quantize((x + eps).clamp(0, 1), levels) != q
    down = M.quantize((x - eps).clamp(0, 1), levels) != q
    return (up | down).flatten(1).double().mean(1)


def eval_digits(params: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """The test digits of the white-box FGSM evaluation (seeded), and their labels."""
    m = load_mnist()
    idx = sample_indices(len(m.x_test), params.n_eval, params.seed)
    return m.x_test[idx], m.y_test[idx]


def eval_chunk(params: Params, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """White-box FGSM along ``eps_values`` on every variant: ``wrong`` ``(k, variants, budgets)``
    whether each digit is misclassified after the attack; ``zero_grad`` ``(k, variants)`` whether
    its input gradient is exactly zero; ``flippable`` ``(k, levels, budgets)`` (:func:`flippable`)."""
    wrong, zero = [], []
    for name in params.variants():
        model = variant_model(net, name)
        zero.append((input_gradient(model, x, y).flatten(1) == 0).all(1).numpy())
        per = []
        for e in params.eps_values:
            with torch.no_grad():
                per.append((model(fgsm(model, x, y, e)).argmax(1) != y).numpy())
        wrong.append(np.stack(per, 1))
    flip = [np.stack([flippable(x, L, e).numpy() for e in params.eps_values], 1) for L in params.levels]
    return {"wrong": np.stack(wrong, 1), "zero_grad": np.stack(zero, 1), "flippable": np.stack(flip, 1)}


def lbfgs_digits(params: Params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, target)``: the white-box L-BFGS digits (seeded) and one random other class each."""
    m = load_mnist()
    idx = sample_indices(len(m.x_test), params.n_lbfgs, params.seed + 1)
    y = m.y_test[idx]
    return m.x_test[idx], y, random_targets(y, params.seed)


def lbfgs_chunk(
    params: Params, net: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> dict[str, np.ndarray]:
    """Szegedy et al.'s L-BFGS toward ``target`` on every variant: ``success`` ``(k, variants)``
    (the variant predicts the target) and ``l2`` (its L2 distance, NaN where it failed)."""
    n = x[0].numel()
    ok, l2 = [], []
    for name in params.variants():
        settings: dict[str, Any] = search_settings(params)
        lb = lbfgs_trace(variant_model(net, name), x, target, **settings)
        s = lb.success.numpy() & ~lb.already_target.numpy()
        ok.append(s)
        l2.append(np.where(s, lb.distortion.double().numpy() * math.sqrt(n), np.nan))
    return {"success": np.stack(ok, 1), "l2": np.stack(l2, 1)}


def jsma_digits(params: Params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The white-box JSMA digits (seeded), their labels and their test-set indices."""
    m = load_mnist()
    idx = sample_indices(len(m.x_test), params.n_jsma, params.seed + 2)
    return m.x_test[idx], m.y_test[idx], idx


def blackbox_digits(params: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the attacker's seed digits and, disjoint from them, of the digits it attacks:
    the first ``n_seed`` and the next ``n_bb`` test digits of one seeded order (each sorted)."""
    g = torch.Generator().manual_seed(params.seed)
    order = torch.randperm(_TEST_DIGITS, generator=g)
    return order[: params.n_seed].sort().values, order[
        params.n_seed : params.n_seed + params.n_bb
    ].sort().values


@torch.no_grad()
def oracle_labels(model: nn.Module, x: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    """The target's answer to a query: its predicted label, nothing more."""
    return torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def _substitute() -> nn.Module:
    # the reference tutorial's substitute: 784-200-200-10, ReLU
    return M.MLP((200, 200), activation="relu")


def blackbox_chunk(params: Params, net: nn.Module, oracle_name: str) -> dict[str, np.ndarray]:
    """Papernot et al.'s attack on one oracle: a substitute trained on its labels, round by round
    the oracle's error on FGSM samples (``bb_eps``) crafted on the substitute, then along
    ``eps_values`` and JSMA's transfer at the last round. Every array has a leading axis of 1
    (one oracle): ``queries`` and ``sub_accuracy`` ``(1, rounds)``; ``fgsm_wrong``
    ``(1, rounds, n_bb)``; ``curve_wrong`` ``(1, n_bb, budgets)``; ``clean_wrong`` ``(1, n_bb)``;
    ``jsma_target``, ``jsma_wrong`` and ``jsma_sub`` ``(1, n_bb_jsma)`` (the oracle predicts the
    target; it misclassifies; the substitute predicts the target)."""
    m = load_mnist()
    seed_idx, bb_idx = blackbox_digits(params)
    oracle_net = variant_model(net, oracle_name)

    def oracle(x: torch.Tensor) -> torch.Tensor:
        return oracle_labels(oracle_net, x)

    run = train_substitute(
        oracle,
        m.x_test[seed_idx],
        _substitute,
        rounds=params.rounds,
        epochs=params.sub_epochs,
        lam=params.lam,
        tau=params.tau,
        lr=params.sub_lr,
        batch_size=SUB_BATCH,
        seed=params.seed,
    )
    x, y = m.x_test[bb_idx], m.y_test[bb_idx]
    sub = _substitute().eval()
    fgsm_wrong, sub_acc = [], []
    for state in run.states:
        sub.load_state_dict(state)
        own = oracle_labels(sub, x)  # FGSM on the substitute's own labels: no query spent
        sub_acc.append(float((own == y).double().mean()))
        fgsm_wrong.append((oracle(fgsm(sub, x, own, params.bb_eps)) != y).numpy())
    # ``sub`` and ``own`` are now the last round's
    curve = np.stack([(oracle(fgsm(sub, x, own, e)) != y).numpy() for e in params.eps_values], 1)
    k = params.n_bb_jsma
    target = random_targets(y[:k], params.seed)
    js = jsma_trace(sub, x[:k], target, theta=THETA, gamma=GAMMA, use_logits=USE_LOGITS)
    sent = oracle(js.x_adv)
    return {
        "queries": np.array([run.queries]),
        "sub_accuracy": np.array([sub_acc]),
        "fgsm_wrong": np.stack(fgsm_wrong)[None],
        "curve_wrong": curve[None],
        "clean_wrong": (oracle(x) != y).numpy()[None],
        "jsma_target": (sent == target).numpy()[None],
        "jsma_wrong": (sent != y[:k]).numpy()[None],
        "jsma_sub": js.success.numpy()[None],
    }


@dataclass(frozen=True)
class Result(ChapterResult):
    """What the chapter measured.

    Attributes:
        params: the chapter's parameters (:meth:`Params.as_dict`).
        test_error: ``(1 + levels,)`` test error on the whole test set of the undefended model
            and of the model behind each step (the ``bpda<L>`` forward is ``masked<L>``'s).
        fgsm_error: ``(variants, budgets)`` white-box FGSM error along ``eps_values``.
        zero_grad: ``(variants,)`` share of the FGSM digits whose input gradient is exactly 0.
        flippable: ``(levels, budgets)`` mean share of pixels an L∞ change of ε can move past
            the step.
        jsma_success / jsma_distortion: ``(variants,)`` white-box JSMA's success and the mean
            distortion of its successes (NaN where none).
        lbfgs_success / lbfgs_l2: ``(variants, n_lbfgs)`` white-box L-BFGS per digit.
        bb_*: per oracle (``Params.oracles`` order), from :func:`blackbox_chunk`: ``bb_queries``,
            ``bb_sub_accuracy`` and ``bb_fgsm_error`` ``(oracles, rounds)``; ``bb_curve``
            ``(oracles, budgets)``; ``bb_clean_error``, ``bb_jsma_target``, ``bb_jsma_wrong`` and
            ``bb_jsma_sub`` ``(oracles,)``.
        eval_wrong: ``(n_eval, variants, budgets)`` the per-digit white-box FGSM record that
            ``make audit`` computes again.
    """

    params: dict[str, Any]
    test_error: np.ndarray
    fgsm_error: np.ndarray
    zero_grad: np.ndarray
    flippable: np.ndarray
    jsma_success: np.ndarray
    jsma_distortion: np.ndarray
    lbfgs_success: np.ndarray
    lbfgs_l2: np.ndarray
    bb_queries: np.ndarray
    bb_sub_accuracy: np.ndarray
    bb_fgsm_error: np.ndarray
    bb_curve: np.ndarray
    bb_clean_error: np.ndarray
    bb_jsma_target: np.ndarray
    bb_jsma_wrong: np.ndarray
    bb_jsma_sub: np.ndarray
    eval_wrong: np.ndarray


def _model_key(params: Params) -> str:
    return M.info(params.model, params.schedule).key


def run(params: Params, *, progress: bool = True) -> Result:
    """All the chapter's work, cached by ``params`` and the model's checkpoint key."""
    return cached(
        params, Result, lambda: _compute(params, progress), version=_VERSION, models=[_model_key(params)]
    )


def _compute(params: Params, progress: bool) -> Result:
    p = params
    key = _model_key(p)
    net = M.load(p.model, p.schedule)
    common: dict[str, Any] = {"version": _VERSION, "models": [key], "progress": progress}
    m = load_mnist()
    test_error = [1 - M.evaluate(net, m.x_test, m.y_test)] + [
        1 - M.evaluate(variant_model(net, f"masked{L}"), m.x_test, m.y_test) for L in p.levels
    ]
    xe, ye = eval_digits(p)
    ev = chunked(
        p,
        len(xe),
        EVAL_CHUNK,
        lambda a, b: eval_chunk(p, net, xe[a:b], ye[a:b]),
        step="eval",
        desc="white-box FGSM",
        unit="digit",
        **common,
    )
    xl, _, tl = lbfgs_digits(p)
    lb = chunked(
        p,
        len(xl),
        LBFGS_CHUNK,
        lambda a, b: lbfgs_chunk(p, net, xl[a:b], tl[a:b]),
        step="lbfgs",
        desc="white-box L-BFGS",
        unit="digit",
        **common,
    )
    xj, yj, ij = jsma_digits(p)
    js_success, js_dist = [], []
    for name in p.variants():
        s = summarize(
            craft(
                variant_model(net, name),
                xj,
                yj,
                ij,
                model_key=f"{key}-{name}",
                progress=progress,
                desc=f"JSMA, {_label(name)}",
                theta=THETA,
                gamma=GAMMA,
                use_logits=USE_LOGITS,
            )
        )
        js_success.append(s.success)
        js_dist.append(s.distortion_success)
    oracles = p.oracles()
    bb = chunked(
        p,
        len(oracles),
        1,
        lambda a, b: blackbox_chunk(p, net, oracles[a]),
        step="blackbox",
        desc="black-box substitutes",
        unit="oracle",
        **common,
    )
    wrong = ev["wrong"].astype(bool)
    return Result(
        params=p.as_dict(),
        test_error=np.array(test_error),
        fgsm_error=wrong.mean(0),
        zero_grad=ev["zero_grad"].astype(bool).mean(0),
        flippable=ev["flippable"].mean(0),
        jsma_success=np.array(js_success, dtype=float),
        jsma_distortion=np.array(js_dist, dtype=float),
        lbfgs_success=lb["success"].astype(bool).T,
        lbfgs_l2=lb["l2"].T,
        bb_queries=bb["queries"].astype(np.int64),
        bb_sub_accuracy=bb["sub_accuracy"],
        bb_fgsm_error=bb["fgsm_wrong"].astype(bool).mean(2),
        bb_curve=bb["curve_wrong"].astype(bool).mean(1),
        bb_clean_error=bb["clean_wrong"].astype(bool).mean(1),
        bb_jsma_target=bb["jsma_target"].astype(bool).mean(1),
        bb_jsma_wrong=bb["jsma_wrong"].astype(bool).mean(1),
        bb_jsma_sub=bb["jsma_sub"].astype(bool).mean(1),
        eval_wrong=wrong,
    )


# --------------------------------------------------------------------------- what the prose says
def _at(values: list[float], eps: float) -> int:
    return next(i for i, e in enumerate(values) if math.isclose(e, eps))


def _join(items: list[str]) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _stopped(success: float) -> bool:
    """An attack counts as stopped when its success is at most :data:`CLOSE`."""
    return success <= CLOSE


def _as_high(rate: float, reference: float) -> bool:
    """A rate counts as back to (or as high as) a reference when within :data:`CLOSE` below it."""
    return rate >= reference - CLOSE


def stops_phrase(masked: dict[str, float], plain: dict[str, float]) -> str:
    """Whether the masked gradient stopped each white-box attack (``{attack: success}`` of the
    masked and of the undefended model): stopped when the success is at most :data:`CLOSE`."""
    stopped = [a for a, v in masked.items() if _stopped(v)]
    kept = [f"{a} ({masked[a]:.0%} against {plain[a]:.0%} undefended)" for a in masked if a not in stopped]
    if not kept:
        return f"it stops every white-box attack ({_join(stopped)})"
    if not stopped:
        return f"it stops none of them: {_join(kept)}"
    return f"it stops {_join(stopped)}, but not {_join(kept)}"


def restores_phrase(bpda: dict[str, float], plain: dict[str, float]) -> str:
    """Whether the straight-through gradient gave each attack back its undefended success
    (within :data:`CLOSE`), ``{attack: success}`` of the straight-through and undefended model."""
    back = [a for a in bpda if _as_high(bpda[a], plain[a])]
    short = [f"{a} ({bpda[a]:.0%} against {plain[a]:.0%})" for a in bpda if a not in back]
    if not short:
        return f"it gives every attack back its undefended success ({_join(back)})"
    if not back:
        return f"it gives none of them back its undefended success: {_join(short)}"
    their = "its" if len(back) == 1 else "their"
    return f"it gives {_join(back)} back {their} undefended success, not {_join(short)}"


def kept_back_phrase(bpda: dict[str, float], plain: dict[str, float]) -> str:
    """What the step still holds back once the gradient flows: nothing, or what its forward
    pass does (a per-pixel budget too small to cross it)."""
    if all(_as_high(bpda[a], plain[a]) for a in bpda):
        return "the step hid the gradient and removed nothing"
    return (
        "what the step still holds back is what its forward pass does, a budget per pixel too small "
        "to cross it, not the gradient it hid"
    )


def blackbox_phrase(masked: dict[str, float], plain: dict[str, float], model: str) -> str:
    """Whether the label-only attack fools ``model`` (a masked one) as often as it fools the
    undefended model: ``{attack: the target's error on the transferred samples}`` of each. An
    attack transfers as well when its error is within :data:`CLOSE` of the undefended one's."""
    parts = []
    for a in masked:
        same = _as_high(masked[a], plain[a])
        parts.append(
            f"the samples of {a} {'fool' if same else 'do not fool'} {model} as often as the "
            f"undefended one ({masked[a]:.1%} against {plain[a]:.1%})"
        )
    return "; ".join(parts)


def transfers(masked: dict[str, float], plain: dict[str, float]) -> bool:
    """Whether some black-box attack fools the masked model as often as the undefended one."""
    return any(_as_high(masked[a], plain[a]) for a in masked)


def rounds_phrase(first: float, last: float, queries_first: int, queries_last: int) -> str:
    """How the target's error on the transferred FGSM samples moves from the substitute's first
    round to its last."""
    move = f"{first:.1%} after {queries_first:,} queries to {last:.1%} after {queries_last:,}"
    if last > first + CLOSE:
        return f"it grows with the queries, from {move}"
    if last < first - CLOSE:
        return f"it falls as the substitute learns more of the target, from {move}"
    return f"it barely moves with the queries, from {move}"


def verdict_phrase(stopped: bool, restored: bool, transferred: bool) -> str:
    """The chapter's conclusion from its three claims: the masked gradient stopped the white-box
    attacks, the straight-through gradient restored them, a black-box attack fooled the masked
    model as often as the undefended one."""
    if stopped and restored and transferred:
        return (
            "The report's claim holds from both sides: the attacks need a gradient that flows, but not "
            "the model's own; a straight-through one, or a substitute's, serves as well"
        )
    failed = [
        what
        for what, ok in (
            ("the masked gradient did not stop every white-box attack", stopped),
            ("the straight-through gradient did not restore every attack", restored),
            ("no black-box attack fooled the masked model as often as the undefended one", transferred),
        )
        if not ok
    ]
    return f"The report's claim holds only in part here: {'; '.join(failed)}"


def glue_values(result: Result) -> dict[str, Any]:
    """Every glue key the chapter's prose quotes, and its value."""
    r, p = result, result.params
    j = _at(p["eps_values"], p["eps"])
    jb = (
        _at(p["eps_values"], p["bb_eps"])
        if any(math.isclose(e, p["bb_eps"]) for e in p["eps_values"])
        else None
    )
    variants = variant_names(p["levels"])
    oracles = oracle_names(p["levels"])
    g: dict[str, Any] = {
        k: p[k]
        for k in (
            "eps",
            "bb_eps",
            "n_eval",
            "n_lbfgs",
            "n_seed",
            "rounds",
            "sub_epochs",
            "lam",
            "tau",
            "n_bb",
            "n_bb_jsma",
        )
    }
    g["n_jsma_attacks"] = 9 * p["n_jsma"]
    g["paper_bb_error"] = BB["misclassified"]
    g["paper_bb_queries"] = BB["queries"]
    g["test_error_plain"] = float(r.test_error[0])
    for i, L in enumerate(p["levels"]):
        g[f"test_error_masked{L}"] = float(r.test_error[1 + i])
        g[f"flippable{L}"] = float(r.flippable[i, j])
        g[f"flippable{L}_half"] = float(r.flippable[i, -1])  # at the largest budget
    g["eps_max"] = p["eps_values"][-1]
    for v, name in enumerate(variants):
        g[f"fgsm_error_{name}"] = float(r.fgsm_error[v, j])
        g[f"clean_error_{name}"] = float(r.fgsm_error[v, 0])
        # what FGSM adds to the model's own error on those digits: its success
        g[f"fgsm_added_{name}"] = float(r.fgsm_error[v, j] - r.fgsm_error[v, 0])
        g[f"fgsm_error_{name}_max"] = float(r.fgsm_error[v, -1])
        g[f"zero_grad_{name}"] = float(r.zero_grad[v])
        g[f"jsma_success_{name}"] = float(r.jsma_success[v])
        g[f"jsma_distortion_{name}"] = float(r.jsma_distortion[v])
        g[f"lbfgs_success_{name}"] = float(r.lbfgs_success[v].mean())
        l2 = r.lbfgs_l2[v][np.isfinite(r.lbfgs_l2[v])]
        g[f"lbfgs_l2_{name}"] = float(l2.mean()) if l2.size else math.nan
    for o, name in enumerate(oracles):
        g[f"bb_queries_{name}"] = int(r.bb_queries[o, -1])
        g[f"bb_fgsm_error_{name}"] = float(r.bb_fgsm_error[o, -1])
        g[f"bb_fgsm_error_first_{name}"] = float(r.bb_fgsm_error[o, 0])
        g[f"bb_sub_accuracy_{name}"] = float(r.bb_sub_accuracy[o, -1])
        g[f"bb_sub_accuracy_first_{name}"] = float(r.bb_sub_accuracy[o, 0])
        g[f"bb_clean_error_{name}"] = float(r.bb_clean_error[o])
        g[f"bb_jsma_target_{name}"] = float(r.bb_jsma_target[o])
        g[f"bb_jsma_wrong_{name}"] = float(r.bb_jsma_wrong[o])
        g[f"bb_jsma_sub_{name}"] = float(r.bb_jsma_sub[o])
        g[f"bb_curve_max_{name}"] = float(r.bb_curve[o, -1])
        if jb is not None:
            g[f"bb_curve_at_{name}"] = float(r.bb_curve[o, jb])
    g["queries_first"] = int(r.bb_queries[0, 0])

    # the claims, per attack: success of the white-box attacks (FGSM: the error it adds at ε)
    def rates(name: str) -> dict[str, float]:
        return {
            "FGSM": g[f"fgsm_added_{name}"],
            "JSMA": g[f"jsma_success_{name}"],
            "L-BFGS": g[f"lbfgs_success_{name}"],
        }

    for L in p["levels"]:
        g[f"stops_phrase{L}"] = stops_phrase(rates(f"masked{L}"), rates("plain"))
        g[f"restores_phrase{L}"] = restores_phrase(rates(f"bpda{L}"), rates("plain"))
    # the conclusion, on the first step (the binariser by default)
    first = f"masked{p['levels'][0]}"
    masked, plain, bpda = rates(first), rates("plain"), rates(f"bpda{p['levels'][0]}")

    # the black-box attack on each masked model beside the undefended one (the target's error)
    def sent(name: str) -> dict[str, float]:
        return {
            f"FGSM at ε = {p['bb_eps']:g}": g[f"bb_fgsm_error_{name}"],
            "JSMA": g[f"bb_jsma_wrong_{name}"],
        }

    for L in p["levels"]:
        g[f"blackbox_phrase{L}"] = blackbox_phrase(
            sent(f"masked{L}"), sent("plain"), f"the {_step_word(L)} LeNet"
        )
    g["rounds_phrase"] = rounds_phrase(
        g["bb_fgsm_error_first_plain"], g["bb_fgsm_error_plain"], g["queries_first"], g["bb_queries_plain"]
    )
    g["kept_back_phrase"] = kept_back_phrase(bpda, plain)
    g["verdict_phrase"] = verdict_phrase(
        all(_stopped(v) for v in masked.values()),
        # JSMA and L-BFGS are not bound per pixel; FGSM's budget may not cross the step (the prose)
        all(_as_high(bpda[a], plain[a]) for a in ("JSMA", "L-BFGS")),
        transfers(sent(first), sent("plain")),
    )
    return g


def headline(result: Result) -> Headline:
    """The chapter's opening box: the straight-through attack against the masked gradient, and
    the black-box attack beside Papernot et al.'s figure."""
    g = glue_values(result)
    L = result.params["levels"][0]
    step = _step_word(L)
    return Headline(
        "Athalye et al. (2018); Papernot et al. (2017), abstract",
        (
            (
                f"white-box JSMA against the {step} LeNet: autograd → straight-through",
                "a masked gradient hides the weakness, it does not remove it",
                f"{g[f'jsma_success_masked{L}']:.0%} → {g[f'jsma_success_bpda{L}']:.0%} "
                f"(undefended {g['jsma_success_plain']:.0%})",
            ),
            (
                f"black-box FGSM (ε = {g['bb_eps']:g}) from a label-trained substitute",
                f"{g['paper_bb_error']:.2%} misclassified after {g['paper_bb_queries']:,} queries (MetaMind)",
                f"{g['bb_fgsm_error_plain']:.1%} after {g['bb_queries_plain']:,} queries (LeNet)",
            ),
            (
                f"black-box JSMA against the {step} LeNet: misclassified",
                "not reported",
                f"{g[f'bb_jsma_wrong_masked{L}']:.1%} (FGSM: {g[f'bb_fgsm_error_masked{L}']:.1%})",
            ),
        ),
        "the papers' own targets: MNIST classifiers (Athalye et al. attack published defences)",
        f"{result.params['model']}, {g['n_jsma_attacks']:,} JSMA attacks per model, "
        f"{g['n_bb']:,} digits sent to each black-box target",
    )


def fidelity(result: Result) -> list[Gap]:
    """Papernot et al.'s black-box figure beside ours. No experiment here isolates a cause: their
    target is MetaMind's hosted network, trained on data and for a time they do not give."""
    g = glue_values(result)
    return known(
        Gap.maybe(
            f"black-box FGSM (ε = {g['bb_eps']:g}): target's error on the transferred samples",
            "rate",
            g["paper_bb_error"],
            g["bb_fgsm_error_plain"],
            note=(
                f"their target is MetaMind's hosted network after {g['paper_bb_queries']:,} queries, ours "
                f"the paper's LeNet after {g['bb_queries_plain']:,}; their substitute's architecture and "
                "training schedule are not in the abstract (ours: the reference tutorial's)"
            ),
        ),
    )


# --------------------------------------------------------------------------- views
def summary_frame(result: Result) -> pd.DataFrame:
    """Per white-box variant: whether its gradient is zero, and each attack's success."""
    g = glue_values(result)
    p = result.params
    variants = variant_names(p["levels"])
    rows = []
    for name in variants:
        rows.append(
            {
                "model": _label(name),
                "input gradient zero": g[f"zero_grad_{name}"],
                "error, clean digits": g[f"clean_error_{name}"],
                f"FGSM error (ε = {p['eps']:g})": g[f"fgsm_error_{name}"],
                f"FGSM error (ε = {p['eps_values'][-1]:g})": g[f"fgsm_error_{name}_max"],
                "JSMA success": g[f"jsma_success_{name}"],
                "L-BFGS success": g[f"lbfgs_success_{name}"],
                "L-BFGS mean L2": g[f"lbfgs_l2_{name}"],
            }
        )
    return pd.DataFrame(rows).set_index("model")


def summary_table(result: Result) -> Styler:
    """:func:`summary_frame`, formatted."""
    frame = summary_frame(result)
    fmt = {c: "{:.1%}" for c in frame.columns}
    fmt["L-BFGS mean L2"] = "{:.2f}"
    return frame.style.format(fmt, na_rep="—")


def queries_figure(result: Result) -> Figure:
    """The black-box targets' error on FGSM samples crafted on the substitute, against the
    number of label queries the substitute was trained on; Papernot et al.'s point marked."""
    p = result.params
    oracles = oracle_names(p["levels"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for o, name in enumerate(oracles):
        ax.plot(result.bb_queries[o], result.bb_fgsm_error[o], marker="o", label=_label(name).split(",")[0])
    ax.plot(
        [BB["queries"]],
        [BB["misclassified"]],
        marker="*",
        markersize=13,
        color="k",
        linestyle="none",
        label="Papernot et al. (MetaMind)",
    )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("label queries to the target")
    ax.set_ylabel(f"target's error, FGSM ε = {p['bb_eps']:g}")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(frameon=False, fontsize=8)
    return plotting.finish(fig)


def eps_figure(result: Result) -> Figure:
    """FGSM error along ε: white-box on each variant (left), black-box on each target (right)."""
    p = result.params
    eps = p["eps_values"]
    variants = variant_names(p["levels"])
    oracles = oracle_names(p["levels"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.6, 3.8), sharey=True)
    for v, name in enumerate(variants):
        style = "--" if name.startswith("masked") else "-"
        a.plot(eps, result.fgsm_error[v], style, marker="o", label=_label(name))
    for o, name in enumerate(oracles):
        b.plot(eps, result.bb_curve[o], marker="o", label=_label(name).split(",")[0])
    a.set_title("white-box")
    b.set_title("black-box (substitute's last round)")
    for ax in (a, b):
        ax.set_xlabel("ε (L∞ budget)")
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.legend(frameon=False, fontsize=7)
    a.set_ylabel("error on the attacked digits")
    return plotting.finish(fig)
