"""FGSM: known answers, budget and box, direction, batching, validation, model state."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advsamples.attacks.fgsm import fgsm


def _hand_linear() -> nn.Linear:
    """3 classes, 4 features, weights chosen so every gradient sign is fixed by hand.

    Rows: W0 = [1, -1, 0, 0.5], W1 = [0, 0, 0, 1], W2 = [-1, 1, 0, 2], bias 0.
    The CE gradient for label y is sum_{k != y} p_k (W_k - W_y) with p_k > 0, so its sign is
    the common sign of the differences W_k - W_y (when they agree coordinate-wise):
      y = 0: W1 - W0 = [-1, 1, 0, .5], W2 - W0 = [-2, 2, 0, 1.5]  -> sign [-1, +1, 0, +1]
      y = 2: W0 - W2 = [2, -2, 0, -1.5], W1 - W2 = [1, -1, 0, -1] -> sign [+1, -1, 0, -1]
    """
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 2.0]]))
        lin.bias.zero_()
    return lin.eval()


def _small_cnn(classes: int = 10) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Tanh(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, classes),
    ).eval()


def _mlp(classes: int = 10, dropout: bool = False) -> nn.Module:
    torch.manual_seed(2)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.0))
    layers.append(nn.Linear(16, classes))
    return nn.Sequential(*layers)


X4 = torch.tensor([[0.5, 0.5, 0.5, 0.95]])


# --- known answers ------------------------------------------------------------------------


def test_known_answer_untargeted() -> None:
    # y = 0: sign of gradient [-1, +1, 0, +1]; x + 0.1 * sign, then clip the last to 1.
    x_adv = fgsm(_hand_linear(), X4, torch.tensor([0]), eps=0.1)
    expected = torch.tensor([[0.5 - 0.1, 0.5 + 0.1, 0.5, 1.0]])
    torch.testing.assert_close(x_adv, expected)


def test_known_answer_targeted() -> None:
    # target t = 2: sign of gradient [+1, -1, 0, -1]; x - 0.1 * sign, then clip the last to 1.
    x_adv = fgsm(_hand_linear(), X4, torch.tensor([2]), eps=0.1, targeted=True)
    expected = torch.tensor([[0.5 - 0.1, 0.5 + 0.1, 0.5, 1.0]])
    torch.testing.assert_close(x_adv, expected)


def test_known_answer_batch_and_wide_clip() -> None:
    # Two samples, labels 0 and 2, clip (-1, 1) so nothing is clipped.
    x = torch.tensor([[0.0, 0.2, -0.3, 0.9], [0.0, 0.2, -0.3, 0.9]])
    x_adv = fgsm(_hand_linear(), x, torch.tensor([0, 2]), eps=0.05, clip=(-1.0, 1.0))
    expected = torch.tensor([[-0.05, 0.25, -0.3, 0.95], [0.05, 0.15, -0.3, 0.85]])
    torch.testing.assert_close(x_adv, expected)


# --- budget, box, eps = 0 -----------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.3, 0.9], ids=lambda e: f"eps={e}")
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_linf_budget_and_clip(eps: float, targeted: bool) -> None:
    model = _small_cnn()
    x = torch.rand(6, 1, 8, 8)
    x[:, :, 0, :] = 0.0  # on the lower bound: clipping must be active for large eps
    x[:, :, -1, :] = 1.0
    y = torch.randint(0, 10, (6,))
    x_adv = fgsm(model, x, y, eps, targeted=targeted)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert not x_adv.requires_grad
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    # every coordinate either moves by exactly eps or is stopped by the box
    moved = (x_adv - x).abs()
    at_bound = (x_adv == 0.0) | (x_adv == 1.0)
    assert bool((((moved - eps).abs() < 1e-6) | at_bound).all())


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_eps_zero_returns_x(targeted: bool) -> None:
    x = torch.rand(5, 1, 8, 8)
    x_adv = fgsm(_small_cnn(), x, torch.randint(0, 10, (5,)), 0.0, targeted=targeted)
    assert torch.equal(x_adv, x)


def test_float64_input_keeps_dtype() -> None:
    model = _small_cnn().double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    assert fgsm(model, x, torch.tensor([1, 2, 3]), 0.1).dtype == torch.float64


# --- direction ----------------------------------------------------------------------------


def _linear10() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()


@pytest.mark.parametrize("eps", [0.02, 0.1], ids=lambda e: f"eps={e}")
def test_untargeted_raises_true_label_loss(eps: float) -> None:
    model = _linear10()
    x = torch.rand(16, 1, 8, 8) * 0.5 + 0.25  # interior: no clipping
    y = torch.randint(0, 10, (16,))
    x_adv = fgsm(model, x, y, eps)
    with torch.no_grad():
        before = F.cross_entropy(model(x), y, reduction="none")
        after = F.cross_entropy(model(x_adv), y, reduction="none")
    assert bool((after > before).all())


@pytest.mark.parametrize("eps", [0.02, 0.1], ids=lambda e: f"eps={e}")
def test_targeted_lowers_target_loss(eps: float) -> None:
    model = _linear10()
    x = torch.rand(16, 1, 8, 8) * 0.5 + 0.25
    t = torch.randint(0, 10, (16,))
    x_adv = fgsm(model, x, t, eps, targeted=True)
    with torch.no_grad():
        before = F.cross_entropy(model(x), t, reduction="none")
        after = F.cross_entropy(model(x_adv), t, reduction="none")
    assert bool((after < before).all())


# --- batch consistency --------------------------------------------------------------------


@pytest.mark.parametrize("model_fn", [_small_cnn, _mlp], ids=["cnn", "mlp"])
@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_batch_equals_one_by_one(model_fn: Callable[[], nn.Module], targeted: bool) -> None:
    model = model_fn().eval()
    torch.manual_seed(4)
    x = torch.rand(7, 1, 8, 8)
    y = torch.randint(0, 10, (7,))
    batched = fgsm(model, x, y, 0.1, targeted=targeted)
    single = torch.cat([fgsm(model, x[i : i + 1], y[i : i + 1], 0.1, targeted=targeted) for i in range(7)])
    assert torch.equal(batched, single)


# --- validation ---------------------------------------------------------------------------

X_OK = torch.full((2, 4), 0.5)
Y_OK = torch.tensor([0, 2])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": -0.1}, r"eps"),
        ({"eps": math.nan}, r"eps"),
        ({"eps": math.inf}, r"eps"),
        ({"clip": (1.0, 0.0)}, r"clip"),
        ({"clip": (0.5, 0.5)}, r"clip"),
        ({"x": torch.tensor([[0.5, 0.5, 0.5, 1.5], [0.5] * 4])}, r"x must lie inside clip"),
        ({"x": torch.full((2, 4), -0.01)}, r"x must lie inside clip"),
        ({"x": torch.full((2, 4), 0.5), "clip": (0.6, 1.0)}, r"x must lie inside clip"),
        ({"y": torch.tensor([[0], [2]])}, r"y must have shape \(2,\)"),
        ({"y": torch.tensor([0, 1, 2])}, r"y must have shape \(2,\)"),
        ({"y": torch.tensor([0, 3])}, r"y must lie in \[0, 3\)"),
        ({"y": torch.tensor([-1, 0])}, r"y must lie in \[0, 3\)"),
        ({"y": torch.tensor([0.0, 2.0])}, r"y must hold integer"),
    ],
    ids=[
        "eps=-0.1",
        "eps=nan",
        "eps=inf",
        "clip=(1,0)",
        "clip=(0.5,0.5)",
        "x-above-clip",
        "x-below-clip",
        "x-below-custom-clip",
        "y-2d",
        "y-wrong-length",
        "y=3-with-3-classes",
        "y=-1",
        "y-float",
    ],
)
def test_invalid_arguments_rejected(kwargs: dict[str, object], match: str) -> None:
    args = {"x": X_OK, "y": Y_OK, "eps": 0.1, **kwargs}
    clip = args.pop("clip", (0.0, 1.0))
    with pytest.raises(ValueError, match=match):
        fgsm(_hand_linear(), args["x"], args["y"], args["eps"], clip=clip)


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_label_range_comes_from_logits(targeted: bool) -> None:
    # label 2 is fine for the 3-class model, and 9 fine for a 10-class one
    fgsm(_hand_linear(), X_OK, torch.tensor([2, 2]), 0.1, targeted=targeted)
    fgsm(_small_cnn(10), torch.rand(1, 1, 8, 8), torch.tensor([9]), 0.1, targeted=targeted)


# --- model and input state ----------------------------------------------------------------


def _snapshot(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor | None, bool]]:
    return [
        (p.detach().clone(), None if p.grad is None else p.grad.clone(), p.requires_grad)
        for p in model.parameters()
    ]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("grad_state", ["no-grad", "existing-grad", "some-frozen"])
def test_model_state_unchanged(mode: str, grad_state: str) -> None:
    model = _mlp(dropout=True)
    model.train(mode == "train")
    params = list(model.parameters())
    if grad_state == "existing-grad":
        for p in params:
            p.grad = torch.randn_like(p)
    if grad_state == "some-frozen":
        params[0].requires_grad_(False)
    before = _snapshot(model)
    x = torch.rand(4, 1, 8, 8)
    x_copy = x.clone()
    fgsm(model, x, torch.tensor([0, 1, 2, 3]), 0.1)
    after = _snapshot(model)
    assert model.training == (mode == "train")
    assert all(m.training == (mode == "train") for m in model.modules())
    for (p0, g0, r0), (p1, g1, r1) in zip(before, after, strict=True):
        assert torch.equal(p0, p1)
        assert r0 == r1
        assert (g0 is None and g1 is None) or (g0 is not None and g1 is not None and torch.equal(g0, g1))
    assert torch.equal(x, x_copy)


def test_input_requiring_grad_untouched() -> None:
    x = torch.rand(2, 4).requires_grad_(True)
    x_adv = fgsm(_hand_linear(), x, Y_OK, 0.1)
    assert x.grad is None and x.requires_grad and not x_adv.requires_grad


def test_state_restored_after_error() -> None:
    model = _hand_linear().train()
    with pytest.raises(ValueError, match="y must lie"):
        fgsm(model, X_OK, torch.tensor([0, 5]), 0.1)
    assert model.training
    assert all(p.requires_grad for p in model.parameters())
