"""JSMA (Papernot et al. 2016, Algorithms 2 and 3): fast batched attack vs the plain reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from advsamples.attacks._jsma_reference import reference_best_pair, reference_jsma
from advsamples.attacks.jsma import (
    JSMAResult,
    adversarial_distance,
    best_pairs,
    jsma,
    jsma_budget,
    jsma_trace,
    saliency_map,
    success_at_budgets,
)

# ----------------------------------------------------------------------------- fixtures


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),  # 8x8 -> 6x6
        nn.MaxPool2d(2),  # -> 3x3 (zero derivative for the pixels the max drops)
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(27, 4),
    )


def _tiny_mlp() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 5))


def _mnist_cnn() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(576, 10))


_MODELS = {
    "cnn": (_tiny_cnn, (1, 8, 8), 4),
    "mlp": (_tiny_mlp, (16,), 5),
}


def _inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> torch.Tensor:
    """Random float64 inputs in [0, 1] with many features exactly at 0 and at 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g, dtype=torch.float64)
    x[x < 0.3] = 0.0
    x[x > 0.85] = 1.0
    return x


def _model(kind: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    build, shape, classes = _MODELS[kind]
    model = build().double().eval()
    x = _inputs(shape, 6)
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    target = (pred + 1 + torch.arange(6) % (classes - 1)) % classes  # never the prediction
    target[0] = pred[0]  # one row already at its target
    return model, x, target


def _linear(weight: list[list[float]], bias: list[float]) -> nn.Module:
    lin = nn.Linear(len(weight[0]), len(weight)).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(weight, dtype=torch.float64))
        lin.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    return lin.eval()


# Hand-worked linear model, target 0: a = dF_0/dx = W[0] = [1, 2, 0.5, -1] and
# b = W[1] + W[2] = [-1, -3, 0, 1]. Pairs (alpha, beta, -alpha*beta) for theta > 0:
# (0,1): (3, -4, 12)  (0,2): (1.5, -1, 1.5)  (0,3): alpha = 0 no  (1,2): (2.5, -3, 7.5)
# (1,3): (1, -2, 2)  (2,3): alpha = -0.5 no.  Best: (0, 1).
_W = [[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 1.0, 1.0], [-1.0, -2.0, -1.0, 0.0]]


# ----------------------------------------------------------------------------- reference


def _check_against_reference(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    theta: float,
    gamma: float,
    use_logits: bool,
    batch_size: int = 256,
) -> JSMAResult:
    res = jsma_trace(model, x, target, theta=theta, gamma=gamma, use_logits=use_logits, batch_size=batch_size)
    n = x[0].numel()
    assert res.budget == jsma_budget(n, gamma)
    for i in range(x.shape[0]):
        x_ref, ok, it = reference_jsma(
            model, x[i], int(target[i]), theta=theta, gamma=gamma, use_logits=use_logits
        )
        assert torch.equal(res.x_adv[i], x_ref), f"row {i}"
        assert bool(res.success[i]) == ok, f"row {i}"
        assert int(res.iterations[i]) == it, f"row {i}"
        assert float(res.distortion[i]) == (x_ref != x[i]).sum().item() / n
    return res


@pytest.mark.parametrize("gamma", [0.1, 0.5, 1.0], ids=lambda g: f"gamma{g}")
@pytest.mark.parametrize("use_logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("theta", [1.0, -1.0], ids=["theta+1", "theta-1"])
@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_agrees_with_reference(kind: str, theta: float, use_logits: bool, gamma: float) -> None:
    model, x, target = _model(kind)
    res = _check_against_reference(
        model, x, target, theta=theta, gamma=gamma, use_logits=use_logits, batch_size=4
    )
    assert res.iterations[0] == 0 and res.success[0]


@pytest.mark.parametrize("theta", [1.0, -1.0, 0.4], ids=["theta+1", "theta-1", "theta0.4"])
def test_agrees_with_reference_mnist_sized(theta: float) -> None:
    model = _mnist_cnn().double().eval()
    x = _inputs((1, 28, 28), 2, seed=5)
    res = _check_against_reference(model, x, torch.tensor([3, 7]), theta=theta, gamma=0.145, use_logits=True)
    assert res.iterations.sum() > 0


# ----------------------------------------------------------------------------- known answers


def test_known_answer_linear() -> None:
    model = _linear(_W, [0.0, 1.0, 0.5])  # x = 0 -> class 1
    x = torch.zeros(1, 4, dtype=torch.float64)
    res = jsma_trace(model, x, torch.tensor([0]), gamma=1.0)
    # Best pair (0, 1) -> x = [1, 1, 0, 0], logits [3, 0, -2.5]: target reached in one step.
    assert res.x_adv.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert res.success.tolist() == [True] and res.iterations.tolist() == [1]
    assert res.distortion.tolist() == [0.5] and res.budget == 2


def test_known_answer_theta_negative() -> None:
    model = _linear(_W, [-10.0, 0.0, 0.0])
    x = torch.ones(1, 4, dtype=torch.float64)
    res = jsma_trace(model, x, torch.tensor([0]), theta=-1.0, gamma=1.0)
    # theta < 0: alpha < 0 and beta > 0 holds only for (2, 3): alpha = -0.5, beta = 1. Then
    # the domain {0, 1} holds (0, 1), alpha = 3 > 0: no admissible pair, stop after 1 step.
    assert res.x_adv.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert res.iterations.tolist() == [1] and res.success.tolist() == [False]


def test_tie_goes_to_lexicographically_smallest_pair() -> None:
    # a = [1, 1, 1, 0.5], b = -a: (0,1), (0,2), (1,2) tie at 4; (0,1) wins, then (2,3).
    w = [[1.0, 1.0, 1.0, 0.5], [-1.0, -1.0, -1.0, -0.5]]
    model = _linear(w, [0.0, 100.0])
    x = torch.zeros(1, 4, dtype=torch.float64)
    res = jsma_trace(model, x, torch.tensor([0]), theta=0.25, gamma=1.0)
    assert res.x_adv.tolist() == [[0.25, 0.25, 0.25, 0.25]]
    assert res.iterations.tolist() == [2]
    p, q, found = best_pairs(
        torch.tensor([[1.0, 1.0, 1.0, 0.5]]),
        -torch.tensor([[1.0, 1.0, 1.0, 0.5]]),
        torch.ones(1, 4, dtype=torch.bool),
        1,
    )
    assert (int(p), int(q), bool(found)) == (0, 1, True)


def test_no_admissible_pair_stops_early() -> None:
    model = _linear(_W, [0.0, 5.0, 0.0])  # after (0, 1): logits [3, 4, -3], not yet class 0
    x = torch.zeros(1, 4, dtype=torch.float64)
    res = jsma_trace(model, x, torch.tensor([0]), gamma=1.0)
    # Domain {2, 3}: pair (2, 3) has alpha = -0.5, inadmissible -> stop below the budget 2.
    assert res.x_adv.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert res.iterations.tolist() == [1] and res.success.tolist() == [False]


def test_feature_at_bound_never_chosen() -> None:
    model = _linear(_W, [-3.0, 1.0, 0.0])  # logits [-1, 0, -2]: class 1
    x = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)  # feature 1 already at max
    res = jsma_trace(model, x, torch.tensor([0]), gamma=1.0)
    # Without feature 1 the best pair is (0, 2), score 1.5 (not (0, 1), 12, nor (1, 2), 7.5)
    # -> logits [0.5, 1, -4]; then only feature 3 is left: no pair, stop.
    assert res.x_adv.tolist() == [[1.0, 1.0, 1.0, 0.0]]
    assert res.iterations.tolist() == [1] and res.success.tolist() == [False]


def test_every_feature_in_the_domain_can_waste_a_pick_on_one_at_the_bound() -> None:
    """``domain="all"`` (Algorithm 2's Gamma = {1..|X|} read literally, advertorch's rule): the
    best pair is then (0, 1), score 12, with feature 1 already at the maximum: it is clipped back
    (no change) and only feature 0 moves: logits [0, 0, -3], where the tie goes to class 0."""
    model = _linear(_W, [-3.0, 1.0, 0.0])
    x = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    res = jsma_trace(model, x, torch.tensor([0]), gamma=1.0, domain="all")
    assert res.x_adv.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert res.iterations.tolist() == [1] and res.distortion.tolist() == [0.25]  # 2 picked, 1 changed
    with pytest.raises(ValueError, match="domain must be 'movable', 'all' or a bool tensor"):
        jsma_trace(model, x, torch.tensor([0]), domain="some")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- rules


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_budget_and_each_feature_modified_once(kind: str) -> None:
    build, shape, classes = _MODELS[kind]
    model = build().double().eval()
    x = torch.full((8, *shape), 0.2, dtype=torch.float64)
    x.view(8, -1)[:, ::3] = 1.0  # at the bound: must never be chosen
    target = torch.arange(8) % classes
    for gamma in (0.1, 0.3):
        res = jsma_trace(model, x, target, theta=0.3, gamma=gamma)
        n = x[0].numel()
        assert res.budget == math.floor(n * gamma / 2)
        assert (res.iterations <= res.budget).all()
        changed = res.x_adv != x
        # Modified once: 0.2 -> 0.5, never 0.8; features at 1.0 untouched; 2 per iteration.
        assert torch.all(res.x_adv[changed] == torch.tensor(0.2, dtype=torch.float64) + 0.3)
        assert changed.flatten(1).sum(1).tolist() == (2 * res.iterations).tolist()
        assert (res.distortion <= gamma).all()
    assert (res.iterations == res.budget).any()  # some rows did run out of budget


def test_sample_at_target_unchanged() -> None:
    model, x, _ = _model("cnn")
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    res = jsma_trace(model, x, pred)
    assert torch.equal(res.x_adv, x)
    assert res.success.all() and (res.iterations == 0).all() and (res.distortion == 0).all()


@pytest.mark.parametrize("batch_size", [1, 2, 5, 64])
def test_batch_matches_one_by_one(batch_size: int) -> None:
    model, x, target = _model("cnn")
    full = jsma_trace(model, x, target, gamma=0.5, batch_size=batch_size)
    for i in range(x.shape[0]):
        one = jsma_trace(model, x[i : i + 1], target[i : i + 1], gamma=0.5)
        assert torch.equal(full.x_adv[i], one.x_adv[0])
        assert full.iterations[i] == one.iterations[0] and full.success[i] == one.success[0]
    assert torch.equal(jsma(model, x, target, gamma=0.5), full.x_adv)


def test_success_at_budgets_matches_smaller_gamma() -> None:
    model, x, target = _model("cnn")
    big = jsma_trace(model, x, target, gamma=1.0)
    gammas = [0.05, 0.2, 0.5, 1.0]
    rates = success_at_budgets(big, gammas)
    masks = success_at_budgets(big, gammas, per_sample=True)
    assert rates.shape == (4,) and masks.shape == (4, 6)
    for gamma, rate, mask in zip(gammas, rates, masks, strict=True):
        small = jsma_trace(model, x, target, gamma=gamma)
        assert torch.equal(mask, small.success)
        assert float(rate) == pytest.approx(small.success.double().mean().item())
    with pytest.raises(ValueError, match="budget"):
        success_at_budgets(jsma_trace(model, x, target, gamma=0.2), [0.5])


# ----------------------------------------------------------------------------- arguments/state


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"theta": 0.0}, "theta"),
        ({"theta": 1.5}, "theta"),
        ({"theta": float("inf")}, "theta"),
        ({"theta": -2.0}, "theta"),
        ({"clip": (1.0, 0.0)}, "clip"),
        ({"batch_size": 0}, "batch_size"),
        ({"target": torch.tensor([0, 1])}, "target"),
        ({"target": torch.tensor([0, 1, 4, 0, 0, 0])}, r"\[0, 4\)"),
        ({"target": torch.zeros(6)}, "target"),
        ({"x": torch.full((6, 1, 8, 8), 1.5, dtype=torch.float64)}, "clip"),
    ],
    ids=[
        "gamma0",
        "gamma>1",
        "gamma-nan",
        "theta0",
        "theta>range",
        "theta-inf",
        "theta<-range",
        "clip-reversed",
        "batch0",
        "target-shape",
        "target-range",
        "target-float",
        "x-outside-clip",
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], match: str) -> None:
    model, x, target = _model("cnn")
    args: dict[str, object] = {"x": x, "target": target} | kwargs
    with pytest.raises(ValueError, match=match):
        jsma_trace(model, **args)  # type: ignore[arg-type]


def test_model_state_unchanged() -> None:
    model, x, target = _model("cnn")
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    list(model.parameters())[0].requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    jsma_trace(model, x, target)
    saliency_map(model, x, target)
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))


# ----------------------------------------------------------------------------- saliency


def test_saliency_map_and_distance_linear() -> None:
    model = _linear(_W, [0.0, 0.0, 0.0])
    x = torch.full((2, 4), 0.5, dtype=torch.float64)
    target = torch.tensor([0, 2])
    # t = 0: a = [1, 2, 0.5, -1], b = [-1, -3, 0, 1] -> S = [1, 6, 0, 0]  (a < 0 or b > 0: 0)
    # t = 2: a = [-1, -2, -1, 0], b = [1, 1, 1.5, 0] -> S = [0, 0, 0, 0]
    s = saliency_map(model, x, target)
    assert s.tolist() == [[1.0, 6.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    # Eq. 9 (decreasing): 0 if a > 0 or b < 0, else |a| * b -> t = 0: [0, 0, 0, 1]
    s_dec = saliency_map(model, x, target, increase=False)
    assert s_dec[0].tolist() == [0.0, 0.0, 0.0, 1.0] and s_dec[1].tolist() == [1.0, 2.0, 1.5, 0.0]
    assert adversarial_distance(model, x, target).tolist() == [0.5, 1.0]


def test_saliency_map_matches_reference_jacobian() -> None:
    from advsamples.attacks._jsma_reference import reference_jacobian

    model, x, target = _model("cnn")
    for use_logits in (True, False):
        s = saliency_map(model, x, target, use_logits=use_logits)
        assert s.shape == x.shape
        for i in range(x.shape[0]):
            jac = reference_jacobian(model, x[i], use_logits)
            a = jac[target[i]]
            b = -a if not use_logits else jac.sum(0) - a
            want = torch.where((a < 0) | (b > 0), 0.0, a * b.abs())
            torch.testing.assert_close(s[i].flatten(), want, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- pair search


def _pair_case(name: str, rows: int, n: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    a = torch.randn(rows, n, generator=g, dtype=torch.float64)
    b = torch.randn(rows, n, generator=g, dtype=torch.float64)
    dom = torch.rand(rows, n, generator=g) > 0.2
    if name == "float32":
        a, b = a.float(), b.float()
    elif name == "zeros":  # max-pool style: most derivatives exactly zero
        z = torch.rand(rows, n, generator=g) < 0.7
        a[z], b[z] = 0.0, 0.0
    elif name == "ties":  # few distinct values: many exact ties of the score
        a = torch.randint(-3, 4, (rows, n), generator=g).double()
        b = torch.randint(-3, 4, (rows, n), generator=g).double()
    elif name == "probs":  # beta = -alpha: score alpha^2
        b = -a
    elif name == "probs-ties":
        a = torch.randint(-2, 3, (rows, n), generator=g).double() / 4
        b = -a
    elif name == "unbalanced":  # |b| >> |a|: the plain AM-GM bound is loose, lam must adapt
        b = 20.0 * b
    elif name == "unbalanced-small":
        b = 0.05 * b
    elif name == "correlated":  # b close to -a: the AM-GM bound is loose, K has to grow
        b = -a + 0.05 * b
    elif name == "trade-off":  # a C&W CNN's shape: big beta-gains cost alpha, the best pair
        # joins one of them with a low-ranked feature (the K x K bounds fail, strips certify)
        gain = 5.0 * b.abs()
        a, b = (-0.25 * gain + 0.8 * a).to(torch.float32), (gain).to(torch.float32)
        dom = torch.ones(rows, n, dtype=torch.bool)
    elif name == "one-sided":  # few admissible pairs, many unbalanced ones
        a = a.abs() * (torch.rand(rows, n, generator=g) < 0.1)
        b = b.abs() - 0.3
    elif name == "none":  # theta > 0 can never be satisfied
        a = -a.abs()
    elif name == "small-domain":
        dom = torch.zeros(rows, n, dtype=torch.bool)
        for r in range(rows):
            dom[r, torch.randperm(n, generator=g)[: r % 4]] = True
    return a, b, dom


_PAIR_CASES = [
    "gauss",
    "float32",
    "zeros",
    "ties",
    "probs",
    "probs-ties",
    "unbalanced",
    "unbalanced-small",
    "correlated",
    "trade-off",
    "one-sided",
    "none",
    "small-domain",
]


@pytest.mark.parametrize("sign", [1, -1], ids=["theta+", "theta-"])
@pytest.mark.parametrize("name", _PAIR_CASES)
def test_pair_search_matches_brute_force(name: str, sign: int) -> None:
    g = torch.Generator().manual_seed(sum(map(ord, name)) + sign)
    n = 784
    a, b, dom = _pair_case(name, 6, n, g)
    want = [reference_best_pair(a[r], b[r], dom[r], float(sign)) for r in range(a.shape[0])]
    for k_start, strip_start in ((32, 8), (2, 1), (2, 3), (32, 400), (n, 8)):
        p, q, found = best_pairs(a, b, dom, sign, k_start=k_start, strip_start=strip_start)
        got = [(int(p[r]), int(q[r])) if found[r] else None for r in range(a.shape[0])]
        assert got == want, f"k_start {k_start}, strip_start {strip_start}"
    if name == "none" and sign == 1:
        assert not found.any()


def test_strips_certify_where_the_square_bound_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the trade-off rows every ``K x K`` certificate fails, yet the strips find the exact
    best pair (the brute force's) without ever scoring the full ``n x n`` matrix."""
    import sys

    J = sys.modules[best_pairs.__module__]  # the module (the package exports a function jsma)
    widths: list[tuple[str, int]] = []
    square, strip = J._pair_scores, J._strip_scores

    def spy(kind: str, f: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args: widths.append((kind, args[3].shape[1])) or f(*args)

    monkeypatch.setattr(J, "_pair_scores", spy("K x K", square))
    monkeypatch.setattr(J, "_strip_scores", spy("strip", strip))
    g = torch.Generator().manual_seed(5)
    n = 784
    for sign in (1, -1):
        a, b, dom = _pair_case("trade-off", 40, n, g)
        a, b = sign * a, sign * b
        widths.clear()
        p, q, found = best_pairs(a, b, dom, sign)
        assert ("strip", 8) in widths and ("K x K", n) not in widths, widths
        assert max(w for kind, w in widths if kind == "strip") <= 128
        for r in range(a.shape[0]):
            want = reference_best_pair(a[r], b[r], dom[r], float(sign))
            assert ((int(p[r]), int(q[r])) if found[r] else None) == want, f"row {r}, sign {sign}"


@pytest.mark.parametrize("n", [2, 3, 5, 17, 64])
def test_pair_search_fuzz_small(n: int) -> None:
    """Many small random rows with heavy ties, zeros and sparse domains vs the brute force."""
    g = torch.Generator().manual_seed(n)
    rows = 120
    a = torch.randint(-2, 3, (rows, n), generator=g).double() * torch.rand(rows, 1, generator=g)
    b = torch.randint(-2, 3, (rows, n), generator=g).double() * torch.rand(rows, 1, generator=g) * 3
    b[: rows // 4] = -a[: rows // 4]  # probability-like rows
    dom = torch.rand(rows, n, generator=g) < torch.rand(rows, 1, generator=g)
    for sign in (1, -1):
        for strip_start in (1, 2):
            p, q, found = best_pairs(a, b, dom, sign, k_start=2, strip_start=strip_start)
            for r in range(rows):
                want = reference_best_pair(a[r], b[r], dom[r], float(sign))
                got = (int(p[r]), int(q[r])) if found[r] else None
                assert got == want, f"row {r}, sign {sign}, strip_start {strip_start}"


# ----------------------------------------------------------------------------- bench


def test_bench_jsma_smoke() -> None:
    from advsamples.bench import bench_jsma, format_bench

    model, x, target = _model("cnn")
    before = torch.get_num_threads()
    d = bench_jsma(model, x, target, threads=1, batch_size=4, reference_samples=2)
    assert torch.get_num_threads() == before
    assert d["attacks"] == 6 and d["threads"] == 1
    assert d["reference_checked"] == 2 and d["reference_agree"] == 2
    assert d["attacks_per_s"] > 0 and d["peak_rss_mib"] > 0 and d["budget"] == jsma_budget(64, 0.145)
    text = format_bench(d)
    assert "threads=1" in text and "attacks/s" in text and "90,000" in text
    # the attack's time over its network passes alone at full batches
    rows = d["sample_iterations_per_s"] * d["seconds"]
    assert d["bound_ratio"] == pytest.approx(d["seconds"] / (rows / d["bound_rows_per_s"]))
    assert "network-only time" in text
    assert d["own_bound_ratio"] == pytest.approx(d["seconds"] / d["own_bound_s"]) and "own batch" in text
    old = {k: v for k, v in d.items() if "bound_" not in k}  # figures cached before the bound
    assert "network bound" not in format_bench(old)
    assert math.isnan(d["small_batch_share"]) and "small batches" not in text  # batch 4: none smaller
    big = bench_jsma(model, x, target, threads=1, batch_size=200, reference_samples=0)
    assert big["small_batch_share"] > 0 and "batch_size=100" in format_bench(big)
    with pytest.raises(ValueError, match="threads"):
        bench_jsma(model, x, target, threads=0, batch_size=4)


def test_network_bound_times_the_attacks_own_passes() -> None:
    from advsamples.bench import network_bound

    model, x, target = _model("cnn")
    assert network_bound(model, x, target, batch_size=16, repeats=2) > 0  # x has 6 rows: tiled
    assert network_bound(model, x, target, batch_size=4, repeats=1, use_logits=False) > 0
    with pytest.raises(ValueError, match="batch_size"):
        network_bound(model, x, target, batch_size=0)
    with pytest.raises(ValueError, match="repeats"):
        network_bound(model, x, target, batch_size=4, repeats=0)


def test_pool_sizes_replay_the_attacks_pool() -> None:
    from advsamples.bench import pool_sizes

    # two rows of 1 and 3 iterations: passes of 2, 1, 1, 1 rows (each row is in iterations + 1)
    assert pool_sizes(torch.tensor([1, 3]), 8) == [2, 2, 1, 1]
    # a pool of 2 refills in order as rows finish: rows 0, 1 run; 0 ends after 1 pass; 2 joins
    assert pool_sizes(torch.tensor([0, 2, 0]), 2) == [2, 2, 1]
    assert sum(pool_sizes(torch.tensor([4, 0, 7, 2]), 3)) == 5 + 1 + 8 + 3
    with pytest.raises(ValueError, match="batch_size"):
        pool_sizes(torch.tensor([1]), 0)


@pytest.mark.parametrize("batch_size", [2, 4, 256])
def test_pool_sizes_are_the_sizes_of_the_attacks_own_passes(
    batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench's replay of the pool against the attack itself: every forward-derivative pass
    jsma_trace makes, in order, has the size pool_sizes gives from its iterations."""
    import sys

    from advsamples.bench import pool_sizes

    mod = sys.modules["advsamples.attacks.jsma"]
    model, x, target = _model("cnn")
    seen: list[int] = []
    real = mod._forward_derivative

    def spy(m: nn.Module, xs: torch.Tensor, t: torch.Tensor, use_logits: bool):  # type: ignore[no-untyped-def]
        seen.append(int(xs.shape[0]))
        return real(m, xs, t, use_logits)

    monkeypatch.setattr(mod, "_forward_derivative", spy)
    res = jsma_trace(model, x, target, batch_size=batch_size)
    assert seen == pool_sizes(res.iterations, batch_size)


def test_the_bound_at_the_attacks_own_sizes_sums_one_pass_per_entry() -> None:
    from advsamples.bench import bound_at_sizes

    model, x, target = _model("cnn")
    one = bound_at_sizes(model, x, target, [3], repeats=2)
    assert one > 0 and bound_at_sizes(model, x, target, [], repeats=1) == 0
    with pytest.raises(ValueError, match="repeats"):
        bound_at_sizes(model, x, target, [3], repeats=0)


def test_progress_bar_runs() -> None:
    model, x, target = _model("mlp")
    res = jsma_trace(model, x, target, progress=True, batch_size=2)
    assert torch.equal(res.x_adv, jsma_trace(model, x, target).x_adv)


def test_trace_leaves_the_callers_model_in_its_memory_format() -> None:
    """The attack runs a channels-last copy for image batches; the caller's weights stay as they were."""
    model, x, target = _model("cnn")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    jsma_trace(model, x, target)
    for k, v in model.state_dict().items():
        assert v.is_contiguous() and torch.equal(v, weights[k]), k


def test_bench_jsma_test_set_attacks_the_model_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench jsma --model``: the named model, each digit toward its other classes."""
    from types import SimpleNamespace

    import advsamples.data
    import advsamples.models
    from advsamples.bench import bench_jsma_test_set, format_bench

    asked: list[tuple[str, str]] = []

    def get_model(name: str, schedule: str, **_: object) -> nn.Module:
        asked.append((name, schedule))
        return _mnist_cnn().eval()

    g = torch.Generator().manual_seed(0)
    digits = SimpleNamespace(x_test=torch.rand(3, 1, 28, 28, generator=g), y_test=torch.tensor([0, 1, 2]))
    monkeypatch.setattr(advsamples.models, "get_model", get_model)
    monkeypatch.setattr(advsamples.data, "load_mnist", lambda: digits)
    monkeypatch.setenv("ADVSAMPLES_DEVICE", "cpu")
    d = bench_jsma_test_set(2, schedule="paper", threads=1, batch_size=8, model="cwnet")
    assert asked == [("cwnet", "paper")] and d["model"] == "cwnet" and d["attacks"] == 2 * 9
    assert d["device"] == "cpu" and "18 attacks on cwnet, cpu" in format_bench(d)
    with pytest.raises(ValueError, match="samples=4"):
        bench_jsma_test_set(4, threads=1, model="cwnet")
