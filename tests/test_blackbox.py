"""The input step with its straight-through variant, and Papernot et al.'s substitute training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advsamples import models as M
from advsamples.attacks.blackbox import augmentation_step, jacobian_augmentation, train_substitute
from advsamples.attacks.fgsm import fgsm
from advsamples.attacks.jsma import jsma_trace


def _linear(seed: int = 0, classes: int = 10, n: int = 784) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(n, classes)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(classes, n, generator=g))
        lin.bias.copy_(torch.randn(classes, generator=g))
    return nn.Sequential(nn.Flatten(), lin).eval()


def _images(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- the input step
def test_quantize_is_the_nearest_level() -> None:
    x = torch.tensor([0.0, 0.2, 0.49, 0.5, 0.51, 0.8, 1.0])
    assert M.quantize(x, 2).tolist() == [0, 0, 0, 1, 1, 1, 1]
    # 4 levels: 0, 1/3, 2/3, 1
    q4 = M.quantize(x, 4)
    assert torch.allclose(q4 * 3, torch.tensor([0.0, 1, 1, 2, 2, 2, 3]))
    assert torch.equal(M.quantize(q4, 4), q4)  # idempotent


@pytest.mark.parametrize("bad", [1, 0, 2.0, True, "2"])
def test_quantize_rejects_bad_levels(bad: object) -> None:
    with pytest.raises(ValueError, match="levels"):
        M.quantize(torch.zeros(2), bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="levels"):
        M.InputStep(nn.Identity(), bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("levels", [2, 4])
@pytest.mark.parametrize("straight", [False, True])
def test_the_step_forward_is_the_network_on_the_quantised_input(levels: int, straight: bool) -> None:
    net, x = _linear(), _images()
    wrapped = M.InputStep(net, levels, straight_through=straight)
    assert torch.equal(wrapped(x), net(M.quantize(x, levels)))


@pytest.mark.parametrize("levels", [2, 4])
def test_the_masked_gradient_is_zero_and_the_straight_through_one_is_the_networks(levels: int) -> None:
    net, x = _linear(), _images()
    q = M.quantize(x, levels)

    def grad(model: nn.Module, at: torch.Tensor) -> torch.Tensor:
        z = at.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(z)[:, 3].sum(), z)
        return g

    assert torch.equal(grad(M.InputStep(net, levels), x), torch.zeros_like(x))
    # straight-through: the identity's gradient, i.e. the network's gradient at q(x)
    st = grad(M.InputStep(net, levels, straight_through=True), x)
    assert torch.allclose(st, grad(net, q))
    assert st.abs().sum() > 0


def test_fgsm_and_jsma_through_the_masked_step_change_nothing() -> None:
    net, x = _linear(), _images()
    masked = M.InputStep(net, 2)
    y = masked(x).argmax(1)
    assert torch.equal(fgsm(masked, x, y, 0.3), x)
    r = jsma_trace(masked, x, (y + 1) % 10)
    assert not r.success.any() and torch.equal(r.x_adv, x)
    # straight-through gives JSMA its pixels back
    assert jsma_trace(M.InputStep(net, 2, straight_through=True), x, (y + 1) % 10).iterations.sum() > 0


# --------------------------------------------------------------------------- augmentation
def test_augmentation_matches_its_formula_on_a_linear_model() -> None:
    """For F = softmax(Wx + b), dF_k/dx = p_k (W_k - sum_j p_j W_j): Eq. 4 by hand."""
    net, x = _linear(seed=3), _images(5, seed=4) * 0.6 + 0.2  # inside, so no clipping
    lin = net[1]
    labels = torch.tensor([0, 3, 9, 3, 5])
    p = net(x).softmax(1).double()
    w = lin.weight.double()
    grad = p.gather(1, labels[:, None]) * (w[labels] - p @ w)
    want = x.flatten(1).double() + 0.1 * grad.sign()
    got = jacobian_augmentation(net, x, labels, 0.1)
    assert torch.allclose(got.flatten(1).double(), want)
    assert got.shape == x.shape


def test_augmentation_stays_in_the_box_and_leaves_the_model_as_it_was() -> None:
    net, x = _linear(), _images()
    net.train()
    out = jacobian_augmentation(net, x, torch.zeros(len(x), dtype=torch.long), 0.7)
    assert out.min() >= 0 and out.max() <= 1 and net.training
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": math.nan}, "lam"),
        ({"lam": True}, "lam"),
        ({"labels": torch.zeros(5, dtype=torch.long)}, "labels"),
        ({"labels": torch.full((6,), 10)}, "labels"),
        ({"x": torch.full((6, 1, 28, 28), 2.0)}, "clip"),
    ],
)
def test_augmentation_rejects_bad_inputs(kwargs: dict, match: str) -> None:
    args = {"x": _images(), "labels": torch.zeros(6, dtype=torch.long), "lam": 0.1} | kwargs
    with pytest.raises(ValueError, match=match):
        jacobian_augmentation(_linear(), args["x"], args["labels"], args["lam"])


def test_the_step_changes_sign_every_tau_rounds() -> None:
    assert [augmentation_step(0.1, r, 3) for r in range(7)] == [0.1, 0.1, 0.1, -0.1, -0.1, -0.1, 0.1]


def _mlp() -> nn.Module:
    return M.MLP((16,), activation="relu")


def test_substitute_training_doubles_the_set_and_counts_the_queries() -> None:
    oracle_net = _linear(seed=7)
    asked: list[int] = []

    def oracle(z: torch.Tensor) -> torch.Tensor:
        asked.append(len(z))
        return oracle_net(z).argmax(1)

    x0 = _images(10, seed=8)
    run = train_substitute(oracle, x0, _mlp, rounds=4, epochs=2, batch_size=8, seed=0)
    assert run.queries == (10, 20, 40, 80) and asked == [10, 10, 20, 40]
    assert len(run.x) == 80 and torch.equal(run.x[:10], x0) and len(run.states) == 4
    assert torch.equal(run.labels, oracle_net(run.x).argmax(1))  # every label is the oracle's


def test_substitute_training_is_a_function_of_its_seed() -> None:
    oracle_net = _linear(seed=7)

    def oracle(z: torch.Tensor) -> torch.Tensor:
        return oracle_net(z).argmax(1)

    x0 = _images(10, seed=8)
    a = train_substitute(oracle, x0, _mlp, rounds=3, epochs=2, batch_size=8, seed=5)
    b = train_substitute(oracle, x0, _mlp, rounds=3, epochs=2, batch_size=8, seed=5)
    c = train_substitute(oracle, x0, _mlp, rounds=3, epochs=2, batch_size=8, seed=6)
    assert all(torch.equal(a.states[-1][k], b.states[-1][k]) for k in a.states[-1])
    assert not torch.equal(a.states[-1]["out.weight"], c.states[-1]["out.weight"])


def test_augmentation_teaches_the_substitute_its_oracle() -> None:
    """A 3-class linear oracle on 2-D points: the substitute trained on its 10 seed points alone
    agrees with it on 68% of fresh points; four rounds of augmentation (160 points) take it
    above 95% (fixed seeds: a regression test of Algorithm 1 as a whole)."""
    w = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    lin = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)

    def oracle(z: torch.Tensor) -> torch.Tensor:
        return lin(z.flatten(1) - 0.5).argmax(1)

    def small() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))

    x0 = torch.rand(10, 1, 2, generator=torch.Generator().manual_seed(10))
    run = train_substitute(oracle, x0, small, rounds=5, epochs=50, batch_size=16, lr=0.01, seed=0, tau=100)
    fresh = torch.rand(2000, 1, 2, generator=torch.Generator().manual_seed(1))
    agree = []
    for state in run.states:
        sub = small()
        sub.load_state_dict(state)
        agree.append(float((sub(fresh).argmax(1) == oracle(fresh)).double().mean()))
    assert agree[0] < 0.75 and agree[-1] > 0.95


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"rounds": 0}, "rounds"), ({"epochs": 0}, "epochs"), ({"tau": 0}, "tau"), ({"lr": 0}, "lr")],
)
def test_substitute_training_rejects_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_substitute(lambda z: torch.zeros(len(z), dtype=torch.long), _images(), _mlp, **kwargs)
