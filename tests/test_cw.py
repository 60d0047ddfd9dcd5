"""C&W L2: the exact minimum on linear models, the box, success, batching, validation, model state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advsamples.attacks import cw_l2, cw_l2_trace
from advsamples.linear import linear_min_distortion


def _linear(n: int = 16, classes: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    lin = nn.Linear(n, classes)
    return nn.Sequential(nn.Flatten(), lin).eval()


def _mlp(classes: int = 10) -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, classes)).eval()


def _inputs(n: int, shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1


def test_on_a_linear_model_it_reaches_the_exact_minimum_distance() -> None:
    """The box-constrained QP (linear.linear_min_distortion) is the true minimum: C&W cannot
    go below it and, with its search of c, ends within a few percent above it."""
    model = _linear()
    lin = model[1]
    x = _inputs(6, (1, 4, 4)).double()
    model = model.double()
    with torch.no_grad():
        pred = model(x).argmax(1)
    target = (pred + 1) % 4
    trace = cw_l2_trace(model, x, target, targeted=True, search_steps=12, max_iter=2000, lr=0.01)
    exact = linear_min_distortion(lin.weight.detach(), lin.bias.detach(), x, target).double()
    ours = trace.l2 / math.sqrt(16)  # the QP's distortion is sqrt(Σr²/n)
    assert bool(trace.success.all())
    assert bool((ours >= exact * (1 - 1e-6)).all()), (ours, exact)
    assert bool((ours <= exact * 1.03 + 1e-4).all()), (ours, exact)


def test_successes_reach_their_target_inside_the_box() -> None:
    model = _mlp()
    x = _inputs(8, (1, 8, 8))
    t = torch.full((8,), 7)
    trace = cw_l2_trace(model, x, t, targeted=True, max_iter=300, search_steps=5)
    assert float(trace.adv.min()) >= 0.0 and float(trace.adv.max()) <= 1.0
    with torch.no_grad():
        hit = model(trace.adv).argmax(1) == 7
    assert bool(hit[trace.success].all())
    assert bool(trace.success.any())
    assert torch.allclose(trace.l2.float(), (trace.adv - x).flatten(1).norm(dim=1), atol=1e-5)
    assert bool((trace.l2[~trace.success] == 0).all())
    assert torch.equal(trace.adv[~trace.success], x[~trace.success])


def test_untargeted_leaves_the_label_and_kappa_buys_a_margin() -> None:
    model = _mlp()
    x = _inputs(8, (1, 8, 8))
    with torch.no_grad():
        y = model(x).argmax(1)
    plain = cw_l2_trace(model, x, y, max_iter=300, search_steps=5)
    sure = cw_l2_trace(model, x, y, kappa=0.3, max_iter=300, search_steps=8)
    with torch.no_grad():
        z = model(sure.adv)
        assert bool((model(plain.adv).argmax(1) != y)[plain.success].all())
    both = plain.success & sure.success
    assert bool(both.any())
    top_other = z.scatter(1, y[:, None], -math.inf).amax(1)
    assert bool((top_other - z.gather(1, y[:, None])[:, 0] >= 0.3 - 1e-4)[sure.success].all())
    assert bool((sure.l2[both] >= plain.l2[both]).all())  # a margin costs distance


def test_a_batch_gives_what_its_samples_give_one_by_one() -> None:
    model = _mlp().double()
    x = _inputs(4, (1, 8, 8)).double()
    t = torch.tensor([1, 2, 3, 4])
    batch = cw_l2_trace(model, x, t, targeted=True, max_iter=200, search_steps=4)
    for i in range(4):
        one = cw_l2_trace(model, x[i : i + 1], t[i : i + 1], targeted=True, max_iter=200, search_steps=4)
        assert torch.allclose(one.adv, batch.adv[i : i + 1], atol=1e-9)
        assert bool(one.success[0] == batch.success[i]) and int(one.iterations[0]) == int(batch.iterations[i])


def test_cw_l2_returns_the_traces_samples_and_leaves_the_model_as_it_was() -> None:
    model = _mlp().train()
    x = _inputs(3, (1, 8, 8))
    t = torch.tensor([0, 1, 2])
    adv = cw_l2(model.eval(), x, t, targeted=True, max_iter=50, search_steps=2)
    assert torch.equal(adv, cw_l2_trace(model, x, t, targeted=True, max_iter=50, search_steps=2).adv)
    model.train()
    cw_l2(model, x, t, max_iter=5, search_steps=1)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kappa": -1.0}, "kappa must be"),
        ({"c_init": 0.0}, "c_init must be > 0"),
        ({"c_init": float("inf")}, "c_init must be"),
        ({"lr": -0.1}, "lr must be"),
        ({"search_steps": 0}, "search_steps must be"),
        ({"search_steps": 2.0}, "search_steps must be"),
        ({"max_iter": 10**7}, "max_iter must be"),
        ({"max_iter": True}, "max_iter must be"),
        ({"clip": (0.0, 0.0)}, "clip must"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cw_l2(_mlp(), _inputs(2, (1, 8, 8)), torch.tensor([0, 1]), **kwargs)


def test_bad_labels_and_inputs_are_refused() -> None:
    x = _inputs(2, (1, 8, 8))
    with pytest.raises(ValueError, match=r"y must lie in \[0, 10\)"):
        cw_l2(_mlp(), x, torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="y must have shape"):
        cw_l2(_mlp(), x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="inside clip"):
        cw_l2(_mlp(), x - 1, torch.tensor([0, 1]))


def test_the_bench_compares_the_batch_with_the_loop_at_the_same_answers() -> None:
    from advsamples.bench import bench_cw, format_bench_cw

    model = _mlp()
    x = _inputs(4, (1, 8, 8))
    d = bench_cw(model, x, torch.tensor([1, 2, 3, 4]), threads=1, max_iter=20, search_steps=2)
    assert d["attacks"] == d["compared"] == 4 and d["agree"] == 4 and d["threads"] == 1
    assert d["speedup"] == pytest.approx(d["batch_attacks_per_s"] / d["loop_attacks_per_s"])
    assert d["agree_close"] == 4 and d["pass_speedup"] > 0
    assert d["batch_step_over_pass"] > 0 and d["max_speedup"] > 0 and "batch's limit" in format_bench_cw(d)
    assert "speed-up" in format_bench_cw(d) and "network bound" in format_bench_cw(d)
    with pytest.raises(ValueError, match="threads"):
        bench_cw(model, x, torch.tensor([1, 2, 3, 4]), threads=0)
    with pytest.raises(ValueError, match="one_by_one"):
        bench_cw(model, x, torch.tensor([1, 2, 3, 4]), threads=1, one_by_one=9)
