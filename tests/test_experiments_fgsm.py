"""The FGSM and formulation chapters' computations, on tiny models (no MNIST, no training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from advsamples import models as M
from advsamples.attacks.fgsm import fgsm
from advsamples.experiments import common as C
from advsamples.experiments import fgsm as E
from advsamples.experiments import formulation as Fm


def _linear10(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()


def _data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def _labelled_by(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


# --- sampling ------------------------------------------------------------------------------


def test_sample_indices_are_seeded_sorted_distinct_and_capped() -> None:
    a = C.sample_indices(100, 10, seed=3)
    assert torch.equal(a, C.sample_indices(100, 10, seed=3))
    assert not torch.equal(a, C.sample_indices(100, 10, seed=4))
    assert torch.equal(a, a.sort().values) and len(set(a.tolist())) == 10
    assert torch.equal(C.sample_indices(5, 10, seed=0), torch.arange(5))


@pytest.mark.parametrize(("n_total", "n"), [(0, 1), (10, 0), (10, -1), (10, 2.5), (True, 1)])
def test_sample_indices_rejects_bad_counts(n_total: object, n: object) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        C.sample_indices(n_total, n, seed=0)  # type: ignore[arg-type]


class _ClassFromPixel(nn.Module):
    """Predicts class round(10 * x[0, 0, 0]): a model whose answers a test can set by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((torch.arange(10.0) - 10 * x[:, :1, 0, 0]) ** 2)


def test_correct_per_class_keeps_correct_samples_of_each_class() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat(4)  # four samples per class
    x = torch.rand(40, 1, 28, 28, generator=g)
    x[:, 0, 0, 0] = y / 10
    x[:10, 0, 0, 0] = ((y[:10] + 1) % 10) / 10  # the first of each class is misclassified
    idx = C.correct_per_class(_ClassFromPixel(), x, y, 3, seed=0)
    assert idx.shape == (10, 3)
    assert torch.equal(y[idx], torch.arange(10)[:, None].expand(10, 3))
    assert bool((idx >= 10).all())  # never a misclassified sample
    assert torch.equal(idx, C.correct_per_class(_ClassFromPixel(), x, y, 3, seed=0))
    with pytest.raises(ValueError, match="only 3 correctly classified"):
        C.correct_per_class(_ClassFromPixel(), x, y, 4, seed=0)


def test_correct_per_class_rejects_too_many() -> None:
    model = _linear10()
    x, _ = _data(20)
    y = _labelled_by(model, x)
    with pytest.raises(ValueError, match="n_per_class"):
        C.correct_per_class(model, x, y, 0, seed=0)


# --- error curves --------------------------------------------------------------------------


def test_error_at_eps_zero_is_the_clean_error() -> None:
    model = _linear10()
    x, y = _data(50)
    clean = float((_labelled_by(model, x) != y).float().mean())
    stats = E.attack_stats(model, x, y, 0.0)
    assert stats.error == pytest.approx(clean) and stats.n == 50 and stats.eps == 0.0
    curves = E.error_curves({"lin": (model, x, y)}, [0.0, 0.1, 0.3])
    assert curves["lin"][0] == stats
    assert [s.eps for s in curves["lin"]] == [0.0, 0.1, 0.3]
    for s in curves["lin"]:
        assert 0.0 <= s.error <= 1.0
        assert math.isnan(s.confidence) or 0.0 < s.confidence <= 1.0


def test_confidence_is_nan_without_errors_and_attack_raises_error() -> None:
    model = _linear10()
    x, _ = _data(30)
    y = _labelled_by(model, x)
    clean = E.attack_stats(model, x, y, 0.0)
    assert clean.error == 0.0 and math.isnan(clean.confidence)
    assert E.attack_stats(model, x, y, 0.5).error > 0.5


def test_confidence_is_the_mean_probability_of_the_wrong_predictions() -> None:
    model = _linear10()
    x, y = _data(60)
    with torch.no_grad():
        p = model(x).softmax(1)
    wrong = p.argmax(1) != y
    assert E.attack_stats(model, x, y, 0.0).confidence == pytest.approx(float(p.max(1).values[wrong].mean()))


def test_error_curves_and_stats_reject_bad_arguments() -> None:
    model = _linear10()
    x, y = _data(4)
    with pytest.raises(ValueError, match="eps_values"):
        E.error_curves({"lin": (model, x, y)}, [])
    with pytest.raises(ValueError, match="eps"):
        E.attack_stats(model, x, y, -0.1)
    with pytest.raises(ValueError, match="at least one sample"):
        E.attack_stats(model, x[:0], y[:0], 0.1)


def test_stats_at_reuses_the_curve_and_computes_otherwise() -> None:
    model = _linear10()
    x, y = _data(20)
    marker = E.AttackStats(0.1, 0.123, 0.5, 20)  # not what the attack gives: proves reuse
    got = E.stats_at({"lin": [marker]}, {"lin": (model, x, y)}, 0.1)
    assert got["lin"] is marker
    fresh = E.stats_at({"lin": [marker]}, {"lin": (model, x, y)}, 0.2)["lin"]
    assert fresh == E.attack_stats(model, x, y, 0.2)


def test_crossing_eps_interpolates() -> None:
    stats = [E.AttackStats(e, err, math.nan, 10) for e, err in [(0.0, 0.0), (0.1, 0.4), (0.2, 0.8)]]
    assert E.crossing_eps(stats, 0.5) == pytest.approx(0.125)
    assert E.crossing_eps(stats, 0.0) == 0.0
    assert math.isnan(E.crossing_eps(stats, 0.9))


def test_eps_for_error_finds_the_first_budget() -> None:
    model = _linear10()
    x, _ = _data(30)
    y = _labelled_by(model, x)
    assert E.eps_for_error(model, x, y, 0.0, [0.3, 0.0]) == 0.0
    assert math.isnan(E.eps_for_error(model, x, y, 1.01, [0.0, 0.1]))


# --- targeted matrix -----------------------------------------------------------------------


def test_success_matrix_shape_nan_diagonal_and_range() -> None:
    model = _linear10()
    x, _ = _data(10 * 3)
    s = E.targeted_success_matrix(model, x.reshape(10, 3, 1, 28, 28), 0.2)
    assert s.shape == (10, 10)
    assert np.isnan(np.diag(s)).all()
    off = s[~np.eye(10, dtype=bool)]
    assert not np.isnan(off).any() and (off >= 0).all() and (off <= 1).all()
    assert np.array_equal(
        s, E.targeted_success_matrix(model, x.reshape(10, 3, 1, 28, 28), 0.2), equal_nan=True
    )


def test_success_matrix_is_zero_at_eps_zero_for_correct_sources() -> None:
    x = torch.rand(10, 2, 1, 28, 28)
    x[:, :, 0, 0, 0] = (torch.arange(10) / 10)[:, None]  # row s is classified s
    s = E.targeted_success_matrix(_ClassFromPixel(), x, 0.0)
    assert (s[~np.eye(10, dtype=bool)] == 0).all()


def test_success_matrix_rejects_a_flat_batch() -> None:
    with pytest.raises(ValueError, match="classes, n"):
        E.targeted_success_matrix(_linear10(), torch.rand(5, 1, 28, 28)[:, 0, 0], 0.1)


def test_extreme_pairs() -> None:
    m = np.array([[np.nan, 0.5, 1.0], [1.0, np.nan, 0.0], [0.2, 0.3, np.nan]])
    assert C.extreme_pairs(m, "max") == (1.0, "0 → 2, 1 → 0")
    assert C.extreme_pairs(m, "min") == (0.0, "1 → 2")
    assert C.extreme_pairs(m, "max", limit=1) == (1.0, "0 → 2 and 1 more")
    with pytest.raises(ValueError, match="which"):
        C.extreme_pairs(m, "mean")


# --- the linear model's shift --------------------------------------------------------------


def test_linear_logit_shift_is_bounded_by_eps_l1() -> None:
    model = M.BinaryLogistic().eval()
    x = torch.rand(16, 1, 28, 28)
    y = _labelled_by(model, x)
    x_adv = fgsm(model, x, y, 0.1)
    shift = E.linear_logit_shift(model, x, x_adv, y, 0.1)
    assert shift.eps_l1 == pytest.approx(0.1 * float(model.linear.weight.detach().abs().sum()))
    assert 0 < shift.mean_shift <= shift.eps_l1 + 1e-4
    assert shift.median_margin >= 0 and 0 <= shift.flipped <= 1


# --- figures -------------------------------------------------------------------------------


def test_figures_are_returned() -> None:
    model = _linear10()
    x, y = _data(4)
    curves = E.error_curves({"lin": (model, x, y)}, [0.0, 0.1])
    assert isinstance(E.error_confidence_figure(curves, marks={"paper": (0.1, 0.5, 0.5)}), Figure)
    assert isinstance(E.sample_grid_figure(model, x, fgsm(model, x, y, 0.1), y, 0.1), Figure)
    clean = torch.rand(2, 3, 1, 28, 28)
    assert isinstance(E.fig2_figure(torch.randn(784), clean, clean, 0.25), Figure)
    with pytest.raises(ValueError, match="equal shapes"):
        E.fig2_figure(torch.randn(784), clean, clean[:, :2], 0.25)


# --- formulation: gradients ----------------------------------------------------------------


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_chain_rule_matches_autograd(act: str) -> None:
    torch.manual_seed(0)
    model = M.MLP((7, 5), act).eval()  # type: ignore[arg-type]
    x, y = _data(3)
    by_hand = Fm.chain_rule_input_gradient(model, x, y)
    x_in = x.double().requires_grad_(True)
    m64 = M.MLP((7, 5), act).double()  # type: ignore[arg-type]
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    (auto,) = torch.autograd.grad(F.cross_entropy(m64(x_in), y, reduction="sum"), x_in)
    assert by_hand.shape == x.shape and by_hand.dtype == torch.float64
    torch.testing.assert_close(by_hand, auto, rtol=1e-10, atol=1e-12)
    assert Fm.chain_rule_check(model, x, y) < 1e-12


def test_chain_rule_rejects_other_models() -> None:
    with pytest.raises(ValueError, match="MLP"):
        Fm.chain_rule_input_gradient(_linear10(), *_data(2))  # type: ignore[arg-type]


def test_gradient_checks_on_smooth_and_piecewise_models() -> None:
    torch.manual_seed(0)
    smooth = M.MLP((6,), "sigmoid").eval()
    relu = M.MLP((6,), "relu").eval()
    x, y = _data(2)
    rows = Fm.gradient_checks(
        {"smooth": (smooth, x, y), "relu": (relu, x, y)}, n_coords=50, h=1e-6, delta=0.01, seed=0
    )
    assert [r.model for r in rows] == ["smooth", "relu"]
    assert [r.piecewise for r in rows] == [False, True]
    assert rows[0].raw_error < 1e-6 and rows[0].jittered_error < 1e-6
    assert all(r.n_coords == 50 and r.n_samples == 2 for r in rows)
    capped = Fm.gradient_checks(
        {"smooth": (smooth, x[:1], y[:1])}, n_coords=10**6, h=1e-6, delta=0.01, seed=0
    )
    assert capped[0].n_coords == 784


def test_is_piecewise() -> None:
    assert Fm.is_piecewise(M.LeNet("tanh"))
    assert Fm.is_piecewise(M.MLP((3,), "relu"))
    assert not Fm.is_piecewise(M.MLP((3,), "sigmoid"))
    assert not Fm.is_piecewise(M.BinaryLogistic())


def test_jitter_is_bounded_seeded_float64() -> None:
    x = torch.rand(2, 1, 28, 28)
    j = Fm.jitter(x, 0.01, seed=1)
    assert j.dtype == torch.float64 and float((j - x.double()).abs().max()) <= 0.01
    assert torch.equal(j, Fm.jitter(x, 0.01, seed=1)) and not torch.equal(j, x.double())
    with pytest.raises(ValueError, match="delta"):
        Fm.jitter(x, -1.0, seed=0)


def test_pooling_ties_on_a_blank_image() -> None:
    lenet = M.LeNet("tanh").eval()
    assert Fm.pooling_tie_fraction(lenet, torch.zeros(1, 1, 28, 28)) == 1.0
    assert Fm.pooling_tie_fraction(lenet, Fm.jitter(torch.zeros(1, 1, 28, 28), 0.1, seed=0).float()) == 0.0
    with pytest.raises(ValueError, match="LeNet"):
        Fm.pooling_tie_fraction(M.MLP((3,)), torch.zeros(1, 1, 28, 28))  # type: ignore[arg-type]


# --- formulation: the linear optimum -------------------------------------------------------


def test_random_linear_instance_is_seeded() -> None:
    m1, x1, y1 = Fm.random_linear_instance(8, seed=5)
    m2, x2, y2 = Fm.random_linear_instance(8, seed=5)
    assert torch.equal(m1.w, m2.w) and torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (1, 8) and float(x1.min()) >= 0 and float(x1.max()) <= 1
    with pytest.raises(ValueError, match="n must be"):
        Fm.random_linear_instance(0, seed=0)


@pytest.mark.parametrize("seed", range(4))
def test_fgsm_is_the_linear_optimum(seed: int) -> None:
    model, x, y = Fm.random_linear_instance(10, seed)
    c = Fm.compare_linf_optima(model, x, y, 0.25, n_random=200, seed=seed)
    assert set(c.points) == {"FGSM", "closed form", "brute force", "linear programme"}
    assert c.max_point_diff <= 1e-9 and c.max_loss_diff <= 1e-12
    assert c.losses["FGSM"] >= c.clean_loss
    assert c.best_random_loss <= c.losses["FGSM"] + 1e-12


def test_optima_on_a_digit_sized_logistic_model() -> None:
    torch.manual_seed(0)
    model = M.BinaryLogistic().eval()
    x = torch.rand(1, 1, 28, 28)
    for label in (0, 1):
        c = Fm.compare_linf_optima(model, x, torch.tensor([label]), 0.1)
        assert "brute force" not in c.points  # 784 features: too many corners
        assert c.max_point_diff <= 1e-9 and c.max_loss_diff <= 1e-12
        assert math.isnan(c.best_random_loss)


def test_compare_linf_optima_rejects_bad_arguments() -> None:
    model, x, y = Fm.random_linear_instance(4, 0)
    with pytest.raises(ValueError, match="single input"):
        Fm.compare_linf_optima(model, x.repeat(2, 1), y, 0.1)
    with pytest.raises(ValueError, match="n_random"):
        Fm.compare_linf_optima(model, x, y, 0.1, n_random=-1)
    with pytest.raises(ValueError, match="LinearBinary or BinaryLogistic"):
        Fm.compare_linf_optima(_linear10(), torch.rand(1, 1, 28, 28), torch.tensor([0]), 0.1)


def test_linear_comparisons_count() -> None:
    out = Fm.linear_comparisons(6, 3, 0.2, seed=0)
    assert len(out) == 3 and max(c.max_loss_diff for c in out) <= 1e-12
