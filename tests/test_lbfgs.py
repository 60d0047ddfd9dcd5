"""Tests for the box-constrained L-BFGS attack (Szegedy et al. 2014, Sec. 4.1) and the noise baseline."""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import nn

from advsamples.attacks.lbfgs import LBFGSResult, gaussian_noise, lbfgs, lbfgs_objective, lbfgs_trace

lbfgs_module = importlib.import_module("advsamples.attacks.lbfgs")  # the module, not the function

CLASSES = 5  # deliberately not 10: the class count must come from the logits


def _mlp(dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """Smooth (tanh) MLP on (N, 1, 4, 4) inputs with 5 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, CLASSES), nn.Dropout(0.5)
    ).to(dtype)


def _inputs(n: int, dtype: torch.dtype = torch.float32, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, 1, 4, 4, dtype=dtype)


def _other_targets(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The runner-up class of each sample (reachable inside the box for these small models)."""
    with torch.no_grad():
        return model.eval()(x).topk(2, dim=1).indices[:, 1]


def _fun_grad(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray]]:
    return (lambda r: fun(r)[0]), (lambda r: fun(r)[1].copy())


# --------------------------------------------------------------------------- objective / gradient


@pytest.mark.parametrize("model_dtype", [torch.float64, torch.float32], ids=["model-f64", "model-f32"])
@pytest.mark.parametrize("c", [0.0, 0.7, "per-sample"], ids=["c=0", "c=0.7", "c-per-sample"])
def test_check_grad_of_objective_is_small(model_dtype: torch.dtype, c: float | str) -> None:
    model = _mlp(model_dtype)
    x = _inputs(3, model_dtype)
    target = torch.tensor([0, 2, 4])
    cval = torch.tensor([0.1, 1.0, 3.0]) if c == "per-sample" else c
    f, g = _fun_grad(lbfgs_objective(model, x, target, cval))
    r0 = np.random.default_rng(0).normal(scale=0.1, size=x.numel())
    err = scipy.optimize.check_grad(f, g, r0)
    assert err < 1e-5 * max(1.0, float(np.linalg.norm(g(r0))))


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda g, r: 1.01 * g, id="scaled-1pct"),
        pytest.param(lambda g, r: g - 2 * 0.7 * r, id="penalty-term-dropped"),
        pytest.param(lambda g, r: np.where(np.arange(g.size) == 5, -g, g), id="one-coordinate-sign"),
    ],
)
def test_check_grad_detects_a_wrong_gradient(corrupt: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    model = _mlp(torch.float64)
    x = _inputs(3, torch.float64)
    f, g = _fun_grad(lbfgs_objective(model, x, torch.tensor([0, 2, 4]), 0.7))
    r0 = np.random.default_rng(1).normal(scale=0.3, size=x.numel())
    good = scipy.optimize.check_grad(f, g, r0)
    bad = scipy.optimize.check_grad(f, lambda r: corrupt(g(r), r), r0)
    scale = max(1.0, float(np.linalg.norm(g(r0))))
    assert good < 1e-5 * scale
    assert bad > 1e-3 * scale


def test_objective_is_the_sum_of_per_sample_objectives() -> None:
    model = _mlp(torch.float64)
    x = _inputs(3, torch.float64)
    target, c = torch.tensor([1, 3, 0]), torch.tensor([0.2, 0.5, 2.0])
    r = np.random.default_rng(2).normal(scale=0.1, size=x.numel())
    value, grad = lbfgs_objective(model, x, target, c)(r)
    parts = [
        lbfgs_objective(model, x[i : i + 1], target[i : i + 1], c[i])(r[16 * i : 16 * (i + 1)])
        for i in range(3)
    ]
    assert value == pytest.approx(sum(v for v, _ in parts), rel=1e-12)
    np.testing.assert_allclose(grad, np.concatenate([gi for _, gi in parts]), rtol=1e-10, atol=1e-14)
    # r = 0 gives the plain cross-entropy, whatever c is.
    v0, _ = lbfgs_objective(model, x, target, c)(np.zeros(x.numel()))
    with torch.no_grad():
        ce = nn.functional.cross_entropy(model.eval()(x), target, reduction="sum")
    assert v0 == pytest.approx(float(ce), rel=1e-12)


# --------------------------------------------------------------------------- attack outputs


@pytest.mark.parametrize("clip", [(0.0, 1.0), (-1.0, 2.0)], ids=["box-0-1", "box-m1-2"])
def test_outputs_inside_box_and_success_means_target_prediction(clip: tuple[float, float]) -> None:
    model = _mlp()
    x = _inputs(4, lo=clip[0], hi=clip[1])
    target = _other_targets(model, x)
    res = lbfgs_trace(model, x, target, c_init=0.1, search_steps=3, max_iter=50, clip=clip)
    assert isinstance(res, LBFGSResult)
    assert res.x_adv.shape == x.shape and res.x_adv.dtype == x.dtype
    assert float(res.x_adv.min()) >= clip[0] and float(res.x_adv.max()) <= clip[1]
    with torch.no_grad():
        pred = model.eval()(res.x_adv).argmax(dim=1)
    assert torch.equal(res.success, pred == target)
    assert bool(res.success.any())
    dist = (res.x_adv.double() - x.double()).flatten(1).square().mean(dim=1).sqrt()
    torch.testing.assert_close(res.distortion, dist, rtol=1e-12, atol=1e-12)
    assert torch.equal(res.x_adv[~res.success], x[~res.success])
    assert torch.equal(lbfgs(model, x, target, c_init=0.1, search_steps=3, max_iter=50, clip=clip), res.x_adv)


def test_sample_already_in_target_class_comes_back_unchanged() -> None:
    model = _mlp()
    x = _inputs(2)
    with torch.no_grad():
        pred = model.eval()(x).argmax(dim=1)
    target = torch.stack([pred[0], (pred[1] + 1) % CLASSES])
    res = lbfgs_trace(model, x, target, search_steps=2, max_iter=30)
    assert torch.equal(res.x_adv[0], x[0])
    assert bool(res.success[0]) and bool(res.already_target[0]) and not bool(res.already_target[1])
    assert float(res.distortion[0]) == 0.0 and math.isnan(float(res.c[0]))
    assert res.tried[0] == () and len(res.tried[1]) >= 1


def _linear_two_class(shape: tuple[int, ...], margin: float, seed: int) -> tuple[nn.Module, torch.Tensor]:
    """A float64 2-class linear model and an x in the middle of the box, at logit margin ``margin``."""
    gen = torch.Generator().manual_seed(seed)
    dim = math.prod(shape)
    x = (0.5 + 0.05 * torch.randn((1, *shape), generator=gen, dtype=torch.float64)).clamp(0.3, 0.7)
    lin = nn.Linear(dim, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(2, dim, generator=gen, dtype=torch.float64))
        d = lin.weight[1] - lin.weight[0]
        lin.bias.copy_(torch.tensor([0.0, -float(d @ x.flatten()) + margin], dtype=torch.float64))
    return nn.Sequential(nn.Flatten(), lin), x


@pytest.mark.parametrize(
    ("shape", "margin", "seed"),
    [((16,), -0.5, 0), ((1, 4, 4), -0.3, 1), ((40,), -1.0, 2)],
    ids=["flat16-m0.5", "image4x4-m0.3", "flat40-m1.0"],
)
def test_linear_model_matches_closed_form_projection(
    shape: tuple[int, ...], margin: float, seed: int
) -> None:
    model, x = _linear_two_class(shape, margin, seed)
    lin = model[1]
    w = (lin.weight[1] - lin.weight[0]).detach()
    b = float(lin.bias[1].detach() - lin.bias[0].detach())
    xf = x.flatten()
    r_star = -(float(w @ xf) + b) / float(w @ w) * w  # projection onto the decision boundary
    assert float(r_star.abs().max()) < 0.25  # the box [0, 1] is not active
    res = lbfgs_trace(model, x, torch.tensor([1]), c_init=1.0, search_steps=20, bracket_steps=8, max_iter=200)
    assert bool(res.success[0])
    r = (res.x_adv - x).flatten()
    assert float(r.norm()) == pytest.approx(float(r_star.norm()), rel=1e-3)
    assert float(r @ r_star) / float(r.norm() * r_star.norm()) > 1 - 1e-6
    new_margin = float(w @ res.x_adv.flatten()) + b
    assert 0.0 < new_margin < 1e-3 * abs(margin)  # just across the boundary
    assert float(res.distortion[0]) == pytest.approx(float(r_star.norm()) / math.sqrt(xf.numel()), rel=1e-3)


# --------------------------------------------------------------------------- the c search


def test_search_keeps_the_smallest_successful_perturbation_it_tried() -> None:
    model = _mlp()
    x = _inputs(3)
    target = _other_targets(model, x)
    res = lbfgs_trace(model, x, target, c_init=0.1, search_steps=4, bracket_steps=4, max_iter=50)
    assert bool(res.success.all())
    for i, trials in enumerate(res.tried):
        assert trials[0][0] == pytest.approx(0.1)
        assert 1 <= len(trials) <= 1 + 4 + 4
        wins = [(c, d) for c, ok, d in trials if ok]
        c_best, d_best = min(wins, key=lambda cd: cd[1])
        assert float(res.distortion[i]) == pytest.approx(d_best, rel=1e-12)
        assert all(float(res.distortion[i]) <= d + 1e-15 for _, d in wins)
        assert float(res.c[i]) == c_best


def test_search_schedule_and_best_over_whole_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake optimiser: success, failure, then a *larger* success; the first one must be returned."""
    model, x = _linear_two_class((16,), -0.5, 0)
    w = (model[1].weight[1] - model[1].weight[0]).detach()
    unit_cross = 0.5 / float(w @ w) * w  # exactly onto the boundary; scale > 1 crosses it
    scales = iter([1.2, 0.0, 3.0, 0.0, 0.0])

    def fake_minimise(fun: object, lower: np.ndarray, upper: np.ndarray, max_iter: int) -> np.ndarray:
        return (next(scales) * unit_cross).numpy()

    monkeypatch.setattr(lbfgs_module, "_minimise", fake_minimise)
    res = lbfgs_trace(model, x, torch.tensor([1]), c_init=2.0, search_steps=3, bracket_steps=5)
    cs = [c for c, _, _ in res.tried[0]]
    oks = [ok for _, ok, _ in res.tried[0]]
    assert oks == [True, False, True, False, False]
    assert cs[:2] == [2.0, 20.0]  # x10 after a success
    assert cs[2] == pytest.approx(math.sqrt(2.0 * 20.0))  # then geometric bisection
    assert cs[3] == pytest.approx(math.sqrt(cs[2] * 20.0))  # success at cs[2] raised the lower end
    assert cs[4] == pytest.approx(math.sqrt(cs[2] * cs[3]))
    assert float(res.c[0]) == 2.0
    torch.testing.assert_close(res.x_adv, x + 1.2 * unit_cross.reshape(x.shape))


def test_search_divides_c_after_failure_and_gives_up_after_bracket_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, x = _linear_two_class((16,), -0.5, 0)
    monkeypatch.setattr(lbfgs_module, "_minimise", lambda fun, lower, upper, max_iter: np.zeros_like(lower))
    res = lbfgs_trace(model, x, torch.tensor([1]), c_init=1.0, search_steps=5, bracket_steps=3)
    assert [c for c, _, _ in res.tried[0]] == pytest.approx([1.0, 0.1, 0.01, 0.001])
    assert not bool(res.success[0]) and torch.equal(res.x_adv, x)
    assert float(res.distortion[0]) == 0.0 and math.isnan(float(res.c[0]))


def test_batch_matches_one_by_one() -> None:
    model = _mlp()
    x = _inputs(3)
    target = _other_targets(model, x)
    kw = {"c_init": 0.1, "search_steps": 3, "max_iter": 40}
    batch = lbfgs_trace(model, x, target, **kw)
    for i in range(3):
        one = lbfgs_trace(model, x[i : i + 1], target[i : i + 1], **kw)
        torch.testing.assert_close(one.x_adv[0], batch.x_adv[i], rtol=0, atol=1e-7)
        np.testing.assert_allclose(np.array(one.tried[0], dtype=float), np.array(batch.tried[i], dtype=float))


# --------------------------------------------------------------------------- model state & validation


def test_model_state_unchanged() -> None:
    model = _mlp().train()
    model[1].weight.grad = torch.full_like(model[1].weight, 0.25)
    model[3].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    x = _inputs(2)
    target = _other_targets(model, x)
    model.train()
    lbfgs(model, x, target, search_steps=1, max_iter=20)
    lbfgs_objective(model, x, target, 0.5)(np.full(x.numel(), 0.01))
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model[1].weight.grad, torch.full_like(model[1].weight, 0.25))
    assert all(p.grad is None for name, p in model.named_parameters() if name != "1.weight")


class _Uncopyable(nn.Module):
    """A model holding a lock, so ``copy.deepcopy`` fails and the functional_call path is used."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_uncopyable_model_uses_functional_fallback_with_same_result() -> None:
    inner = _mlp()
    wrapped = _Uncopyable(inner).train()
    x = _inputs(2)
    target = _other_targets(inner, x)
    r = np.random.default_rng(3).normal(scale=0.1, size=x.numel())
    v1, g1 = lbfgs_objective(inner, x, target, 0.3)(r)
    v2, g2 = lbfgs_objective(wrapped, x, target, 0.3)(r)
    assert v1 == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-14)
    wrapped.train()
    res = lbfgs_trace(wrapped, x, target, search_steps=1, max_iter=20)
    assert wrapped.training and all(p.requires_grad for p in wrapped.parameters())
    torch.testing.assert_close(res.x_adv, lbfgs(inner, x, target, search_steps=1, max_iter=20))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        pytest.param({"c_init": 0.0}, "c_init", id="c_init-zero"),
        pytest.param({"c_init": -1.0}, "c_init", id="c_init-negative"),
        pytest.param({"c_init": float("nan")}, "c_init", id="c_init-nan"),
        pytest.param({"c_init": float("inf")}, "c_init", id="c_init-inf"),
        pytest.param({"search_steps": -1}, "search_steps", id="search_steps-negative"),
        pytest.param({"search_steps": 2.0}, "search_steps", id="search_steps-float"),
        pytest.param({"search_steps": True}, "search_steps", id="search_steps-bool"),
        pytest.param({"bracket_steps": -1}, "bracket_steps", id="bracket_steps-negative"),
        pytest.param({"max_iter": 0}, "max_iter", id="max_iter-zero"),
        pytest.param({"max_iter": 10.5}, "max_iter", id="max_iter-float"),
        pytest.param({"clip": (1.0, 0.0)}, "clip", id="clip-reversed"),
        pytest.param({"clip": (0.0, 0.0)}, "clip", id="clip-empty"),
        pytest.param({"clip": (0.0, 0.5)}, "x", id="x-outside-clip"),
        pytest.param({"x": torch.zeros(2, 16, dtype=torch.int64)}, "x", id="x-integer"),
        pytest.param({"target": torch.tensor([0, CLASSES])}, "target", id="target-too-large"),
        pytest.param({"target": torch.tensor([0, -1])}, "target", id="target-negative"),
        pytest.param({"target": torch.tensor([0])}, "target", id="target-wrong-shape"),
        pytest.param({"target": torch.tensor([0.0, 1.0])}, "target", id="target-float"),
    ],
)
def test_invalid_arguments_rejected(kwargs: dict[str, object], name: str) -> None:
    model = _mlp()
    args: dict[str, object] = {"x": _inputs(2), "target": torch.tensor([0, 1])}
    args.update(kwargs)
    x, target = args.pop("x"), args.pop("target")
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        lbfgs(model, x, target, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        lbfgs_trace(model, x, target, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("c", "target", "name"),
    [
        (-0.1, torch.tensor([0, 1]), "c"),
        (float("nan"), torch.tensor([0, 1]), "c"),
        (torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 1]), "c"),
        (0.1, torch.tensor([0, CLASSES]), "target"),
    ],
    ids=["c-negative", "c-nan", "c-wrong-shape", "target-out-of-range"],
)
def test_objective_rejects_invalid_arguments(
    c: float | torch.Tensor, target: torch.Tensor, name: str
) -> None:
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        lbfgs_objective(_mlp(), _inputs(2), target, c)


# --------------------------------------------------------------------------- Gaussian noise baseline


def test_gaussian_noise_sigma_zero_is_identity() -> None:
    x = _inputs(3)
    out = gaussian_noise(x, 0.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and out is not x


@pytest.mark.parametrize("clip", [(0.0, 1.0), (-0.5, 0.5)], ids=["box-0-1", "box-m0.5-0.5"])
def test_gaussian_noise_is_clipped_reproducible_and_has_sigma(clip: tuple[float, float]) -> None:
    lo, hi = clip
    x = _inputs(50, lo=lo, hi=hi)
    big = gaussian_noise(x, 10.0, generator=torch.Generator().manual_seed(0), clip=clip)
    assert float(big.min()) == lo and float(big.max()) == hi
    a = gaussian_noise(x, 0.3, generator=torch.Generator().manual_seed(7), clip=clip)
    b = gaussian_noise(x, 0.3, generator=torch.Generator().manual_seed(7), clip=clip)
    assert torch.equal(a, b) and a.dtype == x.dtype and a.shape == x.shape
    mid = torch.full((2000, 16), (lo + hi) / 2)
    small = gaussian_noise(mid, 0.01, generator=torch.Generator().manual_seed(1), clip=clip)
    assert float((small - mid).std()) == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize(
    ("sigma", "kwargs", "name"),
    [
        (-0.1, {}, "sigma"),
        (float("nan"), {}, "sigma"),
        (float("inf"), {}, "sigma"),
        (0.1, {"clip": (1.0, 0.0)}, "clip"),
        (0.1, {"clip": (0.0, 0.5)}, "x"),
        (0.1, {"generator": 0}, "generator"),
    ],
    ids=[
        "sigma-negative",
        "sigma-nan",
        "sigma-inf",
        "clip-reversed",
        "x-outside-clip",
        "generator-not-a-generator",
    ],
)
def test_gaussian_noise_rejects_invalid_arguments(sigma: float, kwargs: dict[str, object], name: str) -> None:
    args: dict[str, object] = {"generator": torch.Generator().manual_seed(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        gaussian_noise(_inputs(2), sigma, **args)  # type: ignore[arg-type]
