"""PGD: one step is FGSM, the ball and the box, the loss rises, batching, validation, model state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advsamples.attacks import fgsm, pgd


def _mlp(classes: int = 10) -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, classes)).eval()


def _batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.03, 0.25])
def test_one_step_of_eps_without_random_start_is_fgsm_exactly(eps: float, targeted: bool) -> None:
    model = _mlp()
    x, y = _batch()
    a = pgd(model, x, y, eps, steps=1, alpha=eps, targeted=targeted)
    b = fgsm(model, x, y, eps, targeted=targeted)
    assert torch.equal(a, b)


def test_iterates_stay_in_the_ball_and_the_box() -> None:
    model = _mlp()
    x, y = _batch()
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0  # pixels at the bounds
    for start in (False, True):
        adv = pgd(model, x, y, 0.1, steps=7, random_start=start, generator=torch.Generator().manual_seed(1))
        assert float((adv - x).abs().max()) <= 0.1 + 1e-7
        assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


def test_more_steps_raise_the_loss_beyond_fgsm() -> None:
    """On a smooth model, 20 steps reach a higher loss than one step inside the same ball."""
    model = _mlp()
    x, y = _batch(32)
    a, b = fgsm(model, x, y, 0.05), pgd(model, x, y, 0.05, steps=20)
    with torch.no_grad():
        one, many = F.cross_entropy(model(a), y), F.cross_entropy(model(b), y)
    assert float(many) > float(one)


def test_targeted_lowers_the_targets_loss() -> None:
    model = _mlp()
    x, _ = _batch(32)
    t = torch.full((32,), 3)
    adv = pgd(model, x, t, 0.1, steps=10, targeted=True)
    with torch.no_grad():
        before, after = F.cross_entropy(model(x), t), F.cross_entropy(model(adv), t)
    assert float(after) < float(before)


def test_a_batch_gives_what_its_samples_give_one_by_one() -> None:
    model = _mlp()
    x, y = _batch(5)
    g = torch.Generator().manual_seed(3)
    batch = pgd(model, x, y, 0.1, steps=5, random_start=True, generator=g)
    g = torch.Generator().manual_seed(3)
    noise = torch.rand(x.shape, generator=g)  # the same draws, split by sample
    single = []
    for i in range(5):
        start = (x[i : i + 1] + (2 * noise[i : i + 1] - 1) * 0.1).clamp(0, 1)
        # a start inside the ball, then 5 steps: rebuild them from the documented iteration
        xa = start
        for _ in range(5):
            xi = xa.clone().requires_grad_(True)
            (gr,) = torch.autograd.grad(F.cross_entropy(model(xi), y[i : i + 1], reduction="sum"), xi)
            xa = torch.minimum(
                torch.maximum(xa + 0.05 * gr.sign(), x[i : i + 1] - 0.1), x[i : i + 1] + 0.1
            ).clamp(0, 1)
        single.append(xa.detach())
    assert torch.allclose(batch, torch.cat(single), atol=1e-6)
    plain = pgd(model, x, y, 0.1, steps=5)
    assert torch.allclose(
        plain, torch.cat([pgd(model, x[i : i + 1], y[i : i + 1], 0.1, steps=5) for i in range(5)])
    )


def test_the_model_is_left_as_it_was() -> None:
    model = _mlp().train()
    x, y = _batch()
    pgd(model, x, y, 0.1, steps=3)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eps": -0.1}, "eps must be"),
        ({"eps": float("nan")}, "eps must be"),
        ({"steps": 0}, "steps must be"),
        ({"steps": 1.5}, "steps must be"),
        ({"steps": True}, "steps must be"),
        ({"steps": 10**6}, "steps must be"),
        ({"alpha": -1.0}, "alpha must be"),
        ({"clip": (1.0, 0.0)}, "clip must"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict, match: str) -> None:
    model = _mlp()
    x, y = _batch()
    args = {"eps": 0.1} | kwargs
    with pytest.raises(ValueError, match=match):
        pgd(model, x, y, **args)


def test_bad_labels_and_inputs_are_refused() -> None:
    model = _mlp()
    x, y = _batch()
    with pytest.raises(ValueError, match=r"y must lie in \[0, 10\)"):
        pgd(model, x, y + 10, 0.1)
    with pytest.raises(ValueError, match="inside clip"):
        pgd(model, x + 2, y, 0.1)
