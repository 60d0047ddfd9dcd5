"""Tests for the L-BFGS and transferability chapters' computations (tiny models, no MNIST)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import nn

from advsamples import papers
from advsamples.attacks.lbfgs import LBFGSResult, lbfgs_trace
from advsamples.experiments import lbfgs as L
from advsamples.experiments import transfer as T

CLASSES = 4


def _linear(seed: int = 0, n: int = 6) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n, CLASSES)).eval()


def _inputs(k: int, n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(k, 1, n, generator=torch.Generator().manual_seed(seed))


class _Constant(nn.Module):
    """Predicts class ``c`` for every input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), CLASSES)
        out[:, self.c] = 1.0
        return out


class _Threshold(nn.Module):
    """Class 1 where the mean pixel exceeds ``t``, else class 0."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.reshape(len(x), -1).mean(1)
        out = torch.zeros(len(x), CLASSES)
        out[:, 1] = (m > self.t).float()
        out[:, 0] = (m <= self.t).float()
        return out


# --------------------------------------------------------------------------- model keys, targets
def test_model_spec_parses_keys() -> None:
    assert L.model_spec("fc10(0.0001)") == ("fc10", {"weight_decay": 0.0001})
    assert L.model_spec(L.fc10_key(1)) == ("fc10", {"weight_decay": 1.0})
    assert L.model_spec("lenet_relu") == ("lenet_relu", {})
    for key in L.SZEGEDY_KEYS:
        assert key in papers.SZEGEDY_TABLE1 and key in papers.SZEGEDY_TABLE2_COLUMNS


@pytest.mark.parametrize("bad", ["fc10", "logreg_3v7", "fc10(-1)", "fc10(abc)", "fc10(inf)", "resnet", 3])
def test_model_spec_rejects_bad_keys(bad: object) -> None:
    with pytest.raises(ValueError, match="model key"):
        L.model_spec(bad)  # type: ignore[arg-type]


def test_slug_is_glue_safe() -> None:
    assert L.slug("fc10(0.0001)") == "fc10_0p0001"
    assert L.slug("noise(0.1)") == "noise_0p1"
    assert all(ch.isalnum() or ch == "_" for ch in L.slug("FC100-100-10' (P2)"))


def test_random_targets_differ_from_labels_and_cover_all_classes() -> None:
    y = torch.arange(10).repeat(200)
    t = L.random_targets(y, seed=3)
    assert (t != y).all() and t.min() >= 0 and t.max() <= 9
    assert set(t[y == 4].tolist()) == set(range(10)) - {4}
    assert torch.equal(t, L.random_targets(y, seed=3))
    assert not torch.equal(t, L.random_targets(y, seed=4))
    with pytest.raises(ValueError, match="labels"):
        L.random_targets(torch.tensor([10]), seed=0)


def test_correct_indices_are_correct_distinct_and_seeded() -> None:
    x = torch.rand(200, 1, 4, generator=torch.Generator().manual_seed(0))
    model = _Threshold(0.5)
    y = (x.reshape(200, -1).mean(1) > 0.5).long()
    y[:50] = 2  # never predicted: these are "misclassified"
    idx = L.correct_indices(model, x, y, 30, seed=1)
    assert len(idx) == 30 and len(set(idx.tolist())) == 30 and (idx >= 50).all()
    assert torch.equal(idx, L.correct_indices(model, x, y, 30, seed=1))
    with pytest.raises(ValueError, match="classifies only"):
        L.correct_indices(model, x, y, 151, seed=1)
    with pytest.raises(ValueError, match="n must be"):
        L.correct_indices(model, x, y, 0, seed=1)


# --------------------------------------------------------------------------- attack wrapper, refinement
def test_the_batched_attack_with_its_bar_matches_one_sample_at_a_time() -> None:
    """The chapters call lbfgs_trace once on a batch, with its own bar (no wrapper loop)."""
    model = _linear()
    x = _inputs(3)
    target = (model(x).argmax(1) + 1) % CLASSES
    batched = lbfgs_trace(model, x, target, search_steps=3, progress=True)
    singles = [lbfgs_trace(model, x[i : i + 1], target[i : i + 1], search_steps=3) for i in range(3)]
    assert torch.equal(batched.x_adv, torch.cat([s.x_adv for s in singles]))
    assert torch.equal(batched.success, torch.cat([s.success for s in singles]))
    assert batched.tried == tuple(t for s in singles for t in s.tried)


def test_search_refinement_is_a_decreasing_prefix_ending_at_the_result() -> None:
    model = _linear()
    x = _inputs(4)
    target = (model(x).argmax(1) + 1) % CLASSES
    res = lbfgs_trace(model, x, target, search_steps=5)
    curve = L.search_refinement(res, 5)
    assert curve.shape == (6,)
    assert np.all(np.diff(curve) <= 1e-12)
    assert curve[-1] == pytest.approx(float(res.distortion[res.success].mean()))
    short = lbfgs_trace(model, x, target, search_steps=2)
    assert curve[2] == pytest.approx(float(short.distortion[short.success].mean()))
    with pytest.raises(ValueError, match="search_steps"):
        L.search_refinement(res, -1)


def test_search_refinement_without_success_is_rejected() -> None:
    res = LBFGSResult(
        x_adv=torch.zeros(1, 2),
        success=torch.tensor([False]),
        c=torch.tensor([math.nan]),
        distortion=torch.tensor([0.0]),
        already_target=torch.tensor([False]),
        tried=(((0.1, False, 0.2),),),
    )
    with pytest.raises(ValueError, match="no successful"):
        L.search_refinement(res, 2)


# --------------------------------------------------------------------------- exact linear minimum
def _slsqp_min(w: np.ndarray, b: np.ndarray, x: np.ndarray, t: int) -> float:
    others = [j for j in range(len(w)) if j != t]
    a, c = w[t] - w[others], (w[t] - w[others]) @ x + b[t] - b[others]
    res = scipy.optimize.minimize(
        lambda r: (r @ r, 2 * r),
        np.zeros_like(x),
        jac=True,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda r: a @ r + c, "jac": lambda r: a}],
        bounds=scipy.optimize.Bounds(-x, 1 - x),
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert res.success
    return math.sqrt(res.fun / len(x))


def test_linear_min_distortion_matches_a_generic_qp_solver() -> None:
    net = _linear(seed=2, n=12)
    lin = net[1]
    x = _inputs(6, n=12, seed=5)
    pred = net(x).argmax(1)
    target = (pred + 1 + torch.arange(6) % 3) % CLASSES
    got = L.linear_min_distortion(lin.weight, lin.bias, x, target)
    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    for i in range(6):
        want = _slsqp_min(w, b, x[i].reshape(-1).double().numpy(), int(target[i]))
        assert float(got[i]) == pytest.approx(want, rel=1e-4, abs=1e-7)


def test_linear_min_distortion_special_cases_and_lower_bound_of_the_attack() -> None:
    net = _linear(seed=3, n=8)
    lin = net[1]
    x = _inputs(3, n=8, seed=2)
    pred = net(x).argmax(1)
    assert torch.equal(
        L.linear_min_distortion(lin.weight, lin.bias, x, pred), torch.zeros(3, dtype=torch.float64)
    )
    target = (pred + 1) % CLASSES
    exact = L.linear_min_distortion(lin.weight, lin.bias, x, target)
    res = lbfgs_trace(net, x, target, search_steps=6)
    ok = res.success
    assert (res.distortion[ok] >= exact[ok] - 1e-6).all()  # the attack never beats the true minimum
    # A class that no point of the box can make the winner is unreachable.
    w = torch.zeros(CLASSES, 8)
    bias = torch.tensor([0.0, 0.0, 0.0, -5.0])
    assert math.isinf(float(L.linear_min_distortion(w, bias, x[:1], torch.tensor([3]))[0]))
    with pytest.raises(ValueError, match="values per sample"):
        L.linear_min_distortion(lin.weight, lin.bias, torch.rand(1, 5), torch.tensor([0]))
    with pytest.raises(ValueError, match="target"):
        L.linear_min_distortion(lin.weight, lin.bias, x, torch.tensor([0, 1, CLASSES]))


# --------------------------------------------------------------------------- intervals and phrases
def test_rate_interval_and_relation() -> None:
    lo, hi = L.rate_interval(5, 20)
    assert 0 < lo < 0.25 < hi < 1
    assert L.rate_interval(0, 10)[0] == 0.0 and L.rate_interval(10, 10)[1] == 1.0
    assert L.relation(0.5, 0.6, 0.9) == "above the paper's"
    assert L.relation(0.95, 0.6, 0.9) == "below the paper's"
    assert L.relation(0.7, 0.6, 0.9).startswith("within")
    with pytest.raises(ValueError):
        L.rate_interval(3, 2)
    mean, lo, hi = L.mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and lo < 2.0 < hi
    assert all(math.isnan(v) for v in L.mean_interval([]))


# --------------------------------------------------------------------------- transfer matrices
def test_transfer_matrix_diagonal_is_white_box_error_and_rows_count_clean_mistakes() -> None:
    y = torch.tensor([0, 0, 1, 1])
    models = {"m0": _Constant(0), "m1": _Constant(1)}
    samples = {"m0": torch.rand(4, 1, 3), "m1": torch.rand(4, 1, 3), "clean": torch.rand(4, 1, 3)}
    target = torch.tensor([1, 1, 0, 0])
    m = T.transfer_matrix(samples, models, y, target)
    assert m.rows == ("m0", "m1", "clean") and m.cols == ("m0", "m1") and m.n == 4
    assert m.error.shape == (3, 2) and m.target_rate is not None
    # A constant model errs on exactly the samples of the other class, whatever the row.
    assert np.allclose(m.error, 0.5)
    assert np.allclose(m.target_rate, 0.5)
    assert np.allclose(m.diagonal(), [0.5, 0.5])
    assert sorted(m.off_diagonal().tolist()) == [0.5, 0.5]  # noise/clean rows are not transfers
    assert m.cell("clean", "m1") == 0.5


def test_transfer_matrix_off_diagonal_and_untargeted() -> None:
    x = torch.full((4, 1, 2), 0.2)
    y = torch.zeros(4, dtype=torch.long)
    models = {"a": _Threshold(0.5), "b": _Threshold(0.8)}
    # "a"'s samples cross a's threshold (0.6) but not b's; "b"'s cross both (0.9).
    m = T.transfer_matrix({"a": x + 0.4, "b": x + 0.7}, models, y)
    assert m.target_rate is None
    assert m.cell("a", "a") == 1.0 and m.cell("a", "b") == 0.0
    assert m.cell("b", "a") == 1.0 and m.cell("b", "b") == 1.0
    assert m.diagonal().tolist() == [1.0, 1.0]
    assert sorted(m.off_diagonal().tolist()) == [0.0, 1.0]


def test_transfer_matrix_rejects_bad_arguments() -> None:
    y = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one"):
        T.transfer_matrix({}, {"a": _Constant(0)}, y)
    with pytest.raises(ValueError, match="holds 2 samples"):
        T.transfer_matrix({"r": torch.rand(2, 1, 2)}, {"a": _Constant(0)}, y)
    with pytest.raises(ValueError, match="target holds"):
        T.transfer_matrix(
            {"r": torch.rand(3, 1, 2)}, {"a": _Constant(0)}, y, torch.zeros(2, dtype=torch.long)
        )


def test_noise_rows_keys_shapes_seeding_and_clipping() -> None:
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rows = T.noise_rows(x, [0.1, 0.3], seed=7)
    assert list(rows) == ["noise(0.1)", "noise(0.3)"]
    assert list(rows) == [k for k in papers.SZEGEDY_TABLE2 if k.startswith("noise")]
    for v in rows.values():
        assert v.shape == x.shape and v.dtype == x.dtype and v.min() >= 0 and v.max() <= 1
    again = T.noise_rows(x, [0.1, 0.3], seed=7)
    assert all(torch.equal(rows[k], again[k]) for k in rows)
    # A row does not depend on which other rows are drawn.
    assert torch.equal(T.noise_rows(x, [0.1], seed=7)["noise(0.1)"], rows["noise(0.1)"])
    raw = T.noise_rows(x, [0.1, 0.3], seed=7, clip=None)
    assert raw["noise(0.3)"].min() < 0 or raw["noise(0.3)"].max() > 1
    assert torch.equal(raw["noise(0.3)"].clamp(0, 1), rows["noise(0.3)"])  # the same draws
    assert float((raw["noise(0.1)"] - x).std()) == pytest.approx(0.1, rel=0.15)
    with pytest.raises(ValueError, match="at least one"):
        T.noise_rows(x, [], seed=0)
    with pytest.raises(ValueError, match="distinct"):
        T.noise_rows(x, [0.1, 0.1], seed=0)
    with pytest.raises(ValueError, match="sigma"):
        T.noise_rows(x, [-0.1], seed=0)


def test_rescale_perturbation_std_and_rms_readings() -> None:
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(4, 1, 10, 10, generator=g)
    r = 0.01 * torch.randn(4, 1, 10, 10, generator=g) + 0.005
    x_adv = x + r
    std = T.rescale_perturbation(x, x_adv, 0.05, measure="std")
    rms = T.rescale_perturbation(x, x_adv, 0.05, measure="rms")
    d_std, d_rms = (std - x).reshape(4, -1).double(), (rms - x).reshape(4, -1).double()
    assert torch.allclose(
        d_std.std(dim=1, unbiased=False), torch.full((4,), 0.05, dtype=torch.float64), rtol=1e-4
    )
    assert torch.allclose(
        d_rms.square().mean(1).sqrt(), torch.full((4,), 0.05, dtype=torch.float64), rtol=1e-4
    )
    # The perturbation has a non-zero mean, so the two readings differ: std < rms for the same r.
    assert (d_std.square().mean(1) > d_rms.square().mean(1)).all()
    # Direction is kept; per-sample sizes; clipping; unchanged samples stay unchanged.
    cos = torch.nn.functional.cosine_similarity(d_std, r.reshape(4, -1).double(), dim=1)
    assert torch.allclose(cos, torch.ones(4, dtype=torch.float64), atol=1e-5)
    per = T.rescale_perturbation(x, x_adv, torch.tensor([0.01, 0.02, 0.03, 0.04]), measure="rms")
    assert torch.allclose(
        (per - x).reshape(4, -1).double().square().mean(1).sqrt(),
        torch.tensor([0.01, 0.02, 0.03, 0.04], dtype=torch.float64),
        rtol=1e-4,
    )
    big = T.rescale_perturbation(x, x_adv, 5.0)
    assert big.min() >= 0 and big.max() <= 1
    assert torch.equal(T.rescale_perturbation(x, x.clone(), 0.1), x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": -0.1}, "size"),
        ({"size": float("nan")}, "size"),
        ({"size": torch.tensor([0.1, 0.2])}, "size"),
        ({"size": 0.1, "measure": "l2"}, "measure"),
    ],
)
def test_rescale_perturbation_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    x = torch.rand(3, 1, 4)
    with pytest.raises(ValueError, match=match):
        T.rescale_perturbation(x, x + 0.01, **kwargs)


def test_rescale_perturbation_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        T.rescale_perturbation(torch.rand(3, 4), torch.rand(2, 4), 0.1)


# --------------------------------------------------------------------------- the paper's tables
def test_paper_table2_alignment() -> None:
    rows = ["fc10(0.0001)", "fc100_100_10", "noise(0.1)", "lenet_paper", "clean"]
    cols = ["fc10(0.0001)", "fc100_100_10", "lenet_paper"]
    m = T.paper_table2(rows, cols)
    assert m.shape == (5, 3)
    assert m[0, 0] == 1.0 and m[1, 1] == 1.0  # the paper's diagonal
    assert m[0, 1] == papers.SZEGEDY_TABLE2["fc10(0.0001)"][3]
    assert m[2, 1] == papers.SZEGEDY_TABLE2["noise(0.1)"][3]
    assert np.isnan(m[3]).all() and np.isnan(m[4]).all() and np.isnan(m[:, 2]).all()


def test_paper_noise_vs_errors_uses_the_papers_own_numbers() -> None:
    gaps = T.paper_noise_vs_errors(0.1)
    assert set(gaps) == {"train", "test"} and all(0 <= v < 1 for v in gaps.values())
    # FC100-100-10 alone: noise 0 %, train error 0 %, test error 1.64 %.
    j = papers.SZEGEDY_TABLE2_COLUMNS.index("fc100_100_10")
    assert papers.SZEGEDY_TABLE2["noise(0.1)"][j] == papers.SZEGEDY_TABLE1["fc100_100_10"]["train_error"]


def test_disjoint_models_are_the_papers_three() -> None:
    specs = list(T.DISJOINT_MODELS.values())
    assert [s[1].get("data") for s in specs] == ["half1", "half1", "half2"]
    assert specs[1][1]["hidden"] == (123, 456)
    assert all(s[0] == "fc100_100_10" for s in specs)


def test_matrix_figure_panels_and_bad_shapes() -> None:
    rows, cols = ["a", "b"], ["a", "b", "c"]
    fig = T.matrix_figure(
        [("x", np.zeros((2, 3))), ("d", np.full((2, 3), np.nan))], rows, cols, diverging=[False, True]
    )
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="expected"):
        T.matrix_figure([("x", np.zeros((3, 3)))], rows, cols)
    assert T.mean_abs(np.array([1.0, -3.0, np.nan])) == 2.0
    assert math.isnan(T.mean_abs(np.array([np.nan])))


def test_base_sample_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split"):
        T.base_sample("validation", 10, 0)  # type: ignore[arg-type]


def test_single_threaded_blas_restores_thread_counts() -> None:
    from advsamples.attacks._blas import _openblas_setters

    before = [n for _, n in _openblas_setters()]
    with L.single_threaded_blas():
        inside = [n for _, n in _openblas_setters()]
        assert all(n == 1 for n in inside)
    assert [n for _, n in _openblas_setters()] == before
