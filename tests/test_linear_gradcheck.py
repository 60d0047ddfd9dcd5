"""The L-infinity box optimum three ways, FGSM as that optimum, and the gradient check."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from advsamples.attacks.fgsm import fgsm
from advsamples.gradcheck import input_gradient_error
from advsamples.linear import brute_force_linf_optimum, linf_box_optimum, lp_linf_optimum

# --- linf_box_optimum ---------------------------------------------------------------------


def test_box_optimum_known_answer() -> None:
    w = torch.tensor([2.0, -1.0, 0.0, 3.0, -0.5])
    x = torch.tensor([0.5, 0.05, 0.5, 0.97, 0.3])
    expected = torch.tensor([0.6, 0.0, 0.5, 1.0, 0.2])  # up, down to 0, stays, up to 1, down
    torch.testing.assert_close(linf_box_optimum(w, x, 0.1, (0.0, 1.0)), expected)


def _instance(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor, float, tuple[float, float]]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, generator=g, dtype=torch.float64)
    w[torch.rand(n, generator=g) < 0.2] = 0.0  # some zero weights
    lo, hi = (-1.0, 2.0) if seed % 2 else (0.0, 1.0)
    x = lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
    x[0], x[-1] = lo, hi  # points on the box edges
    eps = [0.0, 0.05, 0.3, 5.0][seed % 4]  # 5.0: the clip box is the whole feasible set
    return w, x, eps, (lo, hi)


@pytest.mark.parametrize("n", [1, 3, 8, 12], ids=lambda n: f"n={n}")
@pytest.mark.parametrize("seed", range(8), ids=lambda s: f"seed={s}")
def test_box_optimum_matches_brute_force_and_lp(seed: int, n: int) -> None:
    w, x, eps, clip = _instance(seed, n)
    closed = linf_box_optimum(w, x, eps, clip)
    brute = brute_force_linf_optimum(w, x, eps, clip)
    lp = lp_linf_optimum(w, x, eps, clip)
    assert torch.equal(closed, brute)
    torch.testing.assert_close(lp, closed, atol=1e-9, rtol=0)
    assert float((closed - x).abs().max()) <= eps + 1e-12
    assert float(closed.min()) >= clip[0] and float(closed.max()) <= clip[1]


def test_box_optimum_keeps_shape_and_dtype() -> None:
    w = torch.randn(2, 3)
    x = torch.rand(2, 3)
    for f in (linf_box_optimum, brute_force_linf_optimum, lp_linf_optimum):
        out = f(w, x, 0.1, (0.0, 1.0))
        assert out.shape == (2, 3) and out.dtype == torch.float32


@pytest.mark.parametrize(
    ("f", "w", "x", "eps", "clip", "match"),
    [
        (linf_box_optimum, torch.ones(3), torch.full((3,), 0.5), -0.1, (0.0, 1.0), r"eps"),
        (linf_box_optimum, torch.ones(3), torch.full((3,), 0.5), 0.1, (1.0, 0.0), r"clip"),
        (linf_box_optimum, torch.ones(3), torch.full((3,), 1.5), 0.1, (0.0, 1.0), r"x must lie"),
        (linf_box_optimum, torch.ones(2), torch.full((3,), 0.5), 0.1, (0.0, 1.0), r"same shape"),
        (brute_force_linf_optimum, torch.ones(17), torch.full((17,), 0.5), 0.1, (0.0, 1.0), r"n=17"),
        (lp_linf_optimum, torch.ones(3), torch.full((3,), 0.5), math.nan, (0.0, 1.0), r"eps"),
    ],
    ids=["eps<0", "clip=(1,0)", "x-outside", "shape-mismatch", "brute-n=17", "lp-eps=nan"],
)
def test_box_optimum_rejects(
    f: Callable[..., torch.Tensor],
    w: torch.Tensor,
    x: torch.Tensor,
    eps: float,
    clip: tuple[float, float],
    match: str,
) -> None:
    with pytest.raises(ValueError, match=match):
        f(w, x, eps, clip)


# --- FGSM is the box optimum for a linear binary model -----------------------------------


@pytest.mark.parametrize("eps", [0.05, 0.2, 0.6], ids=lambda e: f"eps={e}")
@pytest.mark.parametrize("y", [0, 1], ids=["y=0", "y=1"])
def test_fgsm_is_box_optimum_for_linear_binary(eps: float, y: int) -> None:
    # Logits Wx + b with 2 classes: grad_x CE(., y) = p_other (W_other - W_y), p_other > 0, so
    # untargeted FGSM maximises (W_other - W_y) . x' over the box: linf_box_optimum exactly.
    torch.manual_seed(5)
    n = 12
    lin = nn.Linear(n, 2)
    with torch.no_grad():
        lin.weight.mul_(0.5)
        lin.weight[1, :3] = lin.weight[0, :3]  # three zero coordinates of W_1 - W_0
    x = torch.rand(1, n)
    x[0, 3], x[0, 4] = 0.0, 1.0  # clipping active
    x_adv = fgsm(lin, x, torch.tensor([y]), eps)
    w_dir = (lin.weight[1 - y] - lin.weight[y]).detach()
    expected = linf_box_optimum(w_dir, x[0], eps, (0.0, 1.0))
    assert torch.equal(expected, brute_force_linf_optimum(w_dir, x[0], eps, (0.0, 1.0)))
    # Where W_other = W_y autograd computes (p - onehot) @ W, whose float rounding leaves a
    # tiny non-zero gradient of arbitrary sign: any value there is optimal, so compare the rest.
    nonzero = w_dir != 0
    assert int(nonzero.sum()) == n - 3
    assert torch.equal(x_adv[0][nonzero], expected[nonzero])
    assert float((w_dir * x_adv[0]).sum()) == pytest.approx(float((w_dir * expected).sum()), abs=1e-6)


# --- input_gradient_error -----------------------------------------------------------------


def _tanh_cnn() -> nn.Module:
    torch.manual_seed(6)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 16),
        nn.Tanh(),
        nn.Linear(16, 5),
    )


class _WrongTanh(torch.autograd.Function):
    """tanh forward, but the backward of the identity: a deliberately wrong gradient."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad


class _WrongTanhLayer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _WrongTanh.apply(x)


def _wrong_cnn() -> nn.Module:
    model = _tanh_cnn()
    model[1] = _WrongTanhLayer()
    return model


@pytest.mark.parametrize("n_coords", [None, 40], ids=["all-coords", "40-coords"])
def test_gradcheck_passes_on_tanh_cnn(n_coords: int | None) -> None:
    model = _tanh_cnn()
    x = torch.rand(3, 1, 8, 8)
    y = torch.tensor([0, 3, 4])
    err = input_gradient_error(model, x, y, n_coords=n_coords, generator=torch.Generator().manual_seed(0))
    assert err < 1e-6


def test_gradcheck_passes_on_linear_model() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    assert input_gradient_error(model, torch.rand(2, 1, 4, 4), torch.tensor([1, 3])) < 1e-6


@pytest.mark.parametrize("n_coords", [None, 40], ids=["all-coords", "40-coords"])
def test_gradcheck_fails_on_wrong_backward(n_coords: int | None) -> None:
    x = torch.rand(3, 1, 8, 8)
    y = torch.tensor([0, 3, 4])
    g = torch.Generator().manual_seed(0)
    assert input_gradient_error(_wrong_cnn(), x, y, n_coords=n_coords, generator=g) > 1e-2


def test_gradcheck_leaves_model_alone() -> None:
    model = _tanh_cnn().train()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = [p.detach().clone() for p in model.parameters()]
    input_gradient_error(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), n_coords=10)
    assert model.training
    assert all(p.dtype == torch.float32 and p.requires_grad for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight))


def test_gradcheck_coordinate_choice_reproducible() -> None:
    model, x, y = _wrong_cnn(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    e1 = input_gradient_error(model, x, y, n_coords=7, generator=torch.Generator().manual_seed(3))
    e2 = input_gradient_error(model, x, y, n_coords=7, generator=torch.Generator().manual_seed(3))
    assert e1 == e2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"h": 0.0}, r"h must be > 0"),
        ({"h": -1e-6}, r"h must be"),
        ({"h": math.inf}, r"h must be"),
        ({"n_coords": 0}, r"n_coords"),
        ({"n_coords": 10_000}, r"n_coords"),
        ({"y": torch.tensor([0, 5])}, r"y must lie in \[0, 5\)"),
        ({"y": torch.tensor([0.0, 1.0])}, r"y must hold integer"),
    ],
    ids=["h=0", "h<0", "h=inf", "n_coords=0", "n_coords-too-big", "y-out-of-range", "y-float"],
)
def test_gradcheck_rejects(kwargs: dict[str, object], match: str) -> None:
    args = {"y": torch.tensor([0, 1]), **kwargs}
    y = args.pop("y")
    with pytest.raises(ValueError, match=match):
        input_gradient_error(_tanh_cnn(), torch.rand(2, 1, 8, 8), y, **args)
