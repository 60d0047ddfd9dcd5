"""The JSMA and hardness chapters' computations (advsamples.experiments.jsma, .jsma_runs and
.hardness) on tiny models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from advsamples.attacks.jsma import jsma_budget
from advsamples.experiments import hardness as H
from advsamples.experiments import jsma as J
from advsamples.experiments import jsma_runs
from advsamples.papers import PAPERNOT

CLASSES = 4


def _tiny_model() -> nn.Module:
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3),  # 8x8 -> 6x6
        nn.MaxPool2d(2),  # -> 3x3
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(27, CLASSES),
    )
    return model.eval()


def _data(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 1, 8, 8), generator=g)
    x[x < 0.4] = 0.0
    y = torch.arange(n) % CLASSES
    return x, y


@pytest.fixture
def cache_root(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    return tmp_path


def _crafted(success: list[bool], iterations: list[int], source: list[int], target: list[int]) -> J.Crafted:
    n = 16
    it = torch.tensor(iterations)
    return J.Crafted(
        index=torch.arange(len(success)),
        source=torch.tensor(source),
        target=torch.tensor(target),
        success=torch.tensor(success),
        iterations=it,
        distortion=(2 * it).float() / n,
        gamma=0.5,
        budget=4,
        n_features=n,
        theta=1.0,
        use_logits=True,
    )


# ----------------------------------------------------------------------------- crafting


def test_other_targets_cover_every_other_class() -> None:
    y = torch.tensor([0, 3, 1])
    rows, targets = J.other_targets(y, CLASSES)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert targets.tolist() == [1, 2, 3, 0, 1, 2, 0, 2, 3]


@pytest.mark.parametrize("use_logits", [True, False])
def test_truncation_rule_matches_actual_reruns(use_logits: bool) -> None:
    """One run at the largest budget tells every smaller one: success iff success within k
    iterations; distortion recorded if iterations <= k else 2k / n (checked on real reruns)."""
    model = _tiny_model()
    x, y = _data(10)
    big = J.craft(model, x, y, gamma=1.0, use_logits=use_logits, cache=False, batch_size=7)
    n = big.n_features
    # every iteration changes exactly two features of the search domain
    assert torch.equal(big.distortion, (2 * big.iterations).float() / n)
    saw_cut = False
    for gamma in (0.04, 0.1, 0.2, 0.35, 0.6):
        direct = J.craft(model, x, y, gamma=gamma, use_logits=use_logits, cache=False, batch_size=5)
        cut = J.truncate(big, gamma)
        assert cut.budget == direct.budget == jsma_budget(n, gamma)
        assert torch.equal(cut.success, direct.success)
        assert torch.equal(cut.iterations, direct.iterations)
        assert torch.equal(cut.distortion, direct.distortion)
        saw_cut |= bool((big.iterations > cut.budget).any())
    assert saw_cut, "the test should truncate some runs"


def test_truncate_rejects_a_larger_budget_and_keeps_same_budget() -> None:
    c = _crafted([True, False], [1, 4], [0, 1], [1, 0])
    with pytest.raises(ValueError, match="more than the run's budget"):
        J.truncate(c, 0.9)
    with pytest.raises(ValueError, match="gamma must lie"):
        J.truncate(c, 0.0)
    assert torch.equal(J.truncate(c, 0.5).success, c.success)


def test_truncate_by_hand() -> None:
    c = _crafted([True, True, False, False], [1, 3, 2, 4], [0, 0, 1, 1], [1, 1, 0, 0])
    t = J.truncate(c, 2 * 2 / 16)  # k = 2 iterations
    assert t.budget == 2
    assert t.success.tolist() == [True, False, False, False]
    assert t.iterations.tolist() == [1, 2, 2, 2]
    assert torch.allclose(t.distortion, torch.tensor([2, 4, 4, 4]) / 16.0)


def test_cache_hit_returns_identical_tensors(cache_root, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    model = _tiny_model()
    x, y = _data(6)
    idx = torch.tensor([3, 5, 8, 13, 21, 34])
    first = J.craft(model, x, y, idx, gamma=0.5, model_key="tiny")
    assert len(list((cache_root / "cache" / "jsma").glob("*.pt"))) == 1

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("the attack ran although the cache holds the run")

    monkeypatch.setattr(jsma_runs, "jsma_trace", boom)
    again = J.craft(model, x, y, idx, gamma=0.5, model_key="tiny")
    for name in ("index", "source", "target", "success", "iterations", "distortion"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert again.index.tolist() == idx.repeat_interleave(CLASSES - 1).tolist()
    # a smaller budget is read from the cached run
    smaller = J.craft(model, x, y, idx, gamma=0.2, model_key="tiny")
    assert torch.equal(smaller.success, J.truncate(first, 0.2).success)
    # another setting, other indices or another model key are other runs
    for kwargs in ({"use_logits": False}, {"theta": -1.0}):
        with pytest.raises(AssertionError, match="cache holds"):
            J.craft(model, x, y, idx, gamma=0.5, model_key="tiny", **kwargs)
    with pytest.raises(AssertionError, match="cache holds"):
        J.craft(model, x, y, idx + 1, gamma=0.5, model_key="tiny")
    with pytest.raises(AssertionError, match="cache holds"):
        J.craft(model, x, y, idx, gamma=0.5, model_key="other")


def test_cache_keeps_the_largest_budget(cache_root) -> None:  # type: ignore[no-untyped-def]
    model = _tiny_model()
    x, y = _data(4)
    J.craft(model, x, y, gamma=0.2, model_key="tiny")
    big = J.craft(model, x, y, gamma=0.6, model_key="tiny")
    J.craft(model, x, y, gamma=0.1, model_key="tiny")  # served from the larger run
    files = list((cache_root / "cache" / "jsma").glob("*.pt"))
    assert len(files) == 1
    again = J.craft(model, x, y, gamma=0.6, model_key="tiny")
    assert again.gamma == big.gamma and torch.equal(again.iterations, big.iterations)


def test_keep_adv_returns_the_adversarial_samples(cache_root) -> None:  # type: ignore[no-untyped-def]
    model = _tiny_model()
    x, y = _data(4)
    c = J.craft(model, x, y, gamma=0.3, keep_adv=True, model_key="tiny")
    assert c.x_adv is not None and c.x_adv.shape == (len(c), 1, 8, 8)
    rows, targets = J.other_targets(y, CLASSES)
    changed = (c.x_adv != x[rows]).flatten(1).float().mean(1)
    assert torch.allclose(changed, c.distortion)
    with torch.no_grad():
        pred = model(c.x_adv).argmax(1)
    assert torch.equal(pred == targets, c.success)
    cached = J.craft(model, x, y, gamma=0.3, keep_adv=True, model_key="tiny")
    assert cached.x_adv is not None and torch.equal(cached.x_adv, c.x_adv)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 0.0}, "gamma must lie"),
        ({"gamma": 1.5}, "gamma must lie"),
        ({"classes": 1}, "classes must be"),
        ({"indices": torch.arange(3)}, "indices must hold"),
        ({"theta": 0.0}, "theta must be"),
    ],
)
def test_craft_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    model = _tiny_model()
    x, y = _data(4)
    kwargs = {"classes": CLASSES, **kwargs}
    with pytest.raises(ValueError, match=match):
        J.craft(model, x, y, cache=False, **kwargs)  # type: ignore[arg-type]


def test_craft_rejects_bad_labels() -> None:
    model = _tiny_model()
    x, y = _data(4)
    with pytest.raises(ValueError, match="labels y must lie"):
        J.craft(model, x, y + CLASSES, classes=CLASSES, cache=False)
    with pytest.raises(ValueError, match="y must be a tensor"):
        J.craft(model, x, y[:2], classes=CLASSES, cache=False)
    with pytest.raises(ValueError, match="non-empty batch"):
        J.craft(model, x[:0], y[:0], classes=CLASSES, cache=False)


# ----------------------------------------------------------------------------- summaries


def test_summarize_by_hand() -> None:
    c = _crafted([True, True, False, True], [0, 1, 4, 2], [0, 0, 1, 1], [1, 2, 0, 2])
    s = J.summarize(c)
    assert s.success == pytest.approx(0.75)
    assert s.distortion_all == pytest.approx((0 + 2 + 8 + 4) / 16 / 4)
    assert s.distortion_success == pytest.approx((0 + 2 + 4) / 16 / 3)
    assert s.at_start == pytest.approx(0.25)
    assert s.gave_up == 0.0
    assert (s.n_attacks, s.n_samples) == (4, 4)
    gave_up = _crafted([False], [3], [0], [1])
    assert J.summarize(gave_up).gave_up == 1.0
    assert math.isnan(J.summarize(gave_up).distortion_success)
    with pytest.raises(ValueError, match="empty"):
        J.summarize(c.select(torch.zeros(4, dtype=torch.bool)))


def test_pair_matrix_shape_nan_diagonal_and_values() -> None:
    c = _crafted([True, False, True, True], [1, 4, 2, 3], [0, 0, 1, 2], [1, 1, 0, 0])
    m = J.pair_matrix(c, "success", CLASSES)
    assert m.shape == (CLASSES, CLASSES)
    assert np.isnan(np.diag(m)).all()
    assert m[0, 1] == 0.5 and m[1, 0] == 1.0 and m[2, 0] == 1.0
    assert np.isnan(m[0, 2])  # no attack
    d = J.pair_matrix(c, "distortion_success", CLASSES)
    assert d[0, 1] == pytest.approx(2 / 16)
    assert J.pair_matrix(c, "distortion_all", CLASSES)[0, 1] == pytest.approx((2 + 8) / 2 / 16)
    assert J.pair_matrix(c, "count", CLASSES)[0, 1] == 2
    with pytest.raises(ValueError, match="unknown value"):
        J.pair_matrix(c, "hardness", CLASSES)  # type: ignore[arg-type]


def test_matrices_of_a_real_run_have_the_right_shape() -> None:
    model = _tiny_model()
    x, y = _data(12)
    c = J.craft(model, x, y, gamma=0.6, classes=CLASSES, cache=False)
    tau, eps = J.budget_curves(c, [0.1, 0.3, 0.6], CLASSES)
    assert tau.shape == eps.shape == (3, CLASSES, CLASSES)
    assert np.isnan(tau[:, range(CLASSES), range(CLASSES)]).all()
    off = ~np.eye(CLASSES, dtype=bool)
    assert (np.diff(tau[:, off], axis=0) >= 0).all()  # success grows with the budget
    h = H.hardness(tau, eps)
    assert h.shape == (CLASSES, CLASSES) and np.isnan(np.diag(h)).all() and (h[off] >= 0).all()
    a = H.distance_matrix(model, x, y, classes=CLASSES, batch_size=5)
    assert a.shape == (CLASSES, CLASSES) and np.isnan(np.diag(a)).all()
    assert ((a[off] >= 0) & (a[off] <= 1)).all()


# ----------------------------------------------------------------------------- hardness


def test_trapezoid_by_hand() -> None:
    assert H.trapezoid(np.array([0.0, 1.0, 1.0]), np.array([0.0, 0.5, 1.0])) == pytest.approx(0.75)
    # a flat segment adds nothing even where y is undefined
    assert H.trapezoid(np.array([np.nan, 2.0, 4.0]), np.array([0.0, 0.0, 1.0])) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="at least two points"):
        H.trapezoid(np.array([1.0]), np.array([0.0]))


def test_hardness_by_hand() -> None:
    """H = ∫ ε dτ over the points (τ, ε) = (0, 0), (0.5, 0.02), (1, 0.04): 0.5·0.01 + 0.5·0.03."""
    tau = np.full((3, 2, 2), np.nan)
    eps = np.full((3, 2, 2), np.nan)
    tau[:, 0, 1] = [0.0, 0.5, 1.0]
    eps[:, 0, 1] = [np.nan, 0.02, 0.04]  # no success yet: ε undefined, taken as 0
    tau[:, 1, 0] = [0.2, 0.2, 0.2]  # never improves: zero-width integral
    eps[:, 1, 0] = [0.01, 0.01, 0.01]
    h = H.hardness(tau, eps)
    assert h[0, 1] == pytest.approx(0.02)
    assert h[1, 0] == 0.0
    assert np.isnan(h[0, 0]) and np.isnan(h[1, 1])


def test_hardness_rejects_bad_input() -> None:
    tau = np.zeros((2, 2, 2))
    with pytest.raises(ValueError, match="equal shapes"):
        H.hardness(tau, np.zeros((3, 2, 2)))
    dec = np.zeros((2, 2, 2))
    dec[0, 0, 1] = 0.5
    with pytest.raises(ValueError, match="must not decrease"):
        H.hardness(dec, np.zeros((2, 2, 2)))


def test_rank_correlation() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((5, 5))
    np.fill_diagonal(a, np.nan)
    same = H.rank_correlation(a, 2 * a + 1)
    assert same.spearman == pytest.approx(1.0) and same.kendall == pytest.approx(1.0)
    assert same.n_pairs == 20
    assert H.rank_correlation(a, -a).spearman == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="equal square"):
        H.rank_correlation(a, a[:4, :4])


def test_implied_failure_distortion() -> None:
    assert J.implied_failure_distortion(0.5, 0.1, 0.05) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="success"):
        J.implied_failure_distortion(1.0, 0.1, 0.1)
    # the paper's Fig. 11 numbers imply failures above its own budget of 14.5%
    pn: dict[str, Any] = PAPERNOT
    implied = J.implied_failure_distortion(
        pn["success"]["test"], pn["distortion_all"]["test"], pn["distortion_success"]["test"]
    )
    assert implied > pn["gamma"]


def test_logit_margin_sign() -> None:
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
        lin.bias.zero_()
    x = torch.tensor([[3.0, 1.0], [0.0, 2.0], [1.0, 0.0]])
    assert J.logit_margin(lin, x, torch.tensor([0, 1, 1])) == pytest.approx(2.0)


def test_concat_and_select() -> None:
    a = _crafted([True], [1], [0], [1])
    b = _crafted([False, True], [4, 2], [1, 2], [0, 0])
    c = J.concat([a, b])
    assert len(c) == 3 and c.success.tolist() == [True, False, True]
    assert len(c.select(c.success)) == 2
    with pytest.raises(ValueError, match="at least one"):
        J.concat([])


def test_figures_are_returned() -> None:
    clean = torch.rand(3, 1, 28, 28)
    adv = torch.rand(3, 3, 1, 28, 28)
    assert isinstance(J.fig1_figure(clean, adv, torch.ones(3, 3, dtype=torch.bool)), Figure)
    with pytest.raises(ValueError, match="adv must be"):
        J.fig1_figure(clean, adv[:2], torch.ones(3, 3, dtype=torch.bool))
    assert isinstance(J.plot_saliency(torch.rand(1, 28, 28), 3, [0, 5, 8], torch.rand(3, 1, 28, 28)), Figure)
    assert isinstance(J.settings_figure(["a", "b"], [0.9, 0.8], [0.04, 0.05], 0.97, 0.04), Figure)


@pytest.mark.parametrize("use_logits", [True, False])
def test_first_step_is_the_attacks_first_iteration(use_logits: bool) -> None:
    model = _tiny_model()
    x, y = _data(8)
    one = J.craft(model, x, y, gamma=2.5 / 64, use_logits=use_logits, keep_adv=True, cache=False)
    assert one.budget == 1
    rows, targets = J.other_targets(y, CLASSES)
    gap, gain = J.first_step(model, x[rows], targets, use_logits=use_logits, batch_size=5)
    assert gap.shape == gain.shape == (len(rows),)
    with torch.no_grad():
        z0, z1 = model(x[rows]), model(one.x_adv)
    moved = one.iterations == 1
    own0 = z0.gather(1, targets[:, None])[:, 0]
    own1 = z1.gather(1, targets[:, None])[:, 0]
    g0 = own0 - z0.scatter(1, targets[:, None], -math.inf).amax(1)
    g1 = own1 - z1.scatter(1, targets[:, None], -math.inf).amax(1)
    assert torch.allclose(gap, g0.double())
    assert torch.allclose(gain[moved], (g1 - g0).double()[moved], atol=1e-6)
    assert moved.any()


def test_homogeneity_p() -> None:
    same = [_crafted([True, False] * 20, [1, 4] * 20, [0, 1] * 20, [1, 0] * 20) for _ in range(3)]
    assert J.homogeneity_p(same) == pytest.approx(1.0)
    differ = [
        _crafted([True] * 40, [1] * 40, [0] * 40, [1] * 40),
        _crafted([False] * 40, [4] * 40, [0] * 40, [1] * 40),
    ]
    assert J.homogeneity_p(differ) < 1e-6
    all_ok = [_crafted([True] * 5, [1] * 5, [0] * 5, [1] * 5)] * 2
    assert J.homogeneity_p(all_ok) == 1.0
    with pytest.raises(ValueError, match="at least two"):
        J.homogeneity_p(same[:1])


def test_column_share() -> None:
    by_target = np.tile(np.arange(4.0), (4, 1))  # entry [s, t] = t
    np.fill_diagonal(by_target, np.nan)
    assert H.column_share(by_target) == pytest.approx(1.0)
    assert H.column_share(by_target.T) < 0.2  # by source: the column means explain little
    with pytest.raises(ValueError, match="at least two"):
        H.column_share(np.full((2, 2), np.nan))


def test_split_half_of_a_real_run() -> None:
    model = _tiny_model()
    x, y = _data(16)
    c = J.craft(model, x, y, gamma=0.6, cache=False)
    r = H.split_half(c, [0.1, 0.3, 0.6], CLASSES)
    assert -1.0 <= r.spearman <= 1.0 and r.n_pairs <= CLASSES * (CLASSES - 1)
    with pytest.raises(ValueError, match="at least two digits"):
        H.split_half(c.select(torch.arange(len(c)) < CLASSES - 1), [0.1, 0.6], CLASSES)


def test_halves_are_balanced_per_class() -> None:
    y = torch.tensor([0, 0, 1, 0, 1, 2, 2, 1])
    h = H.halves(y)
    assert h.tolist() == [True, False, True, True, False, True, False, True]
