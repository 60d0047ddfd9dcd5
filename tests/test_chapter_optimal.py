"""The optimal-attack chapter: parameters, the three solvers on a linear model, the cases, the
arithmetic of the glue and the views."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from advsamples import papers
from advsamples.experiments import optimal as O

MODELS = ["fc10(0.0001)", "fc100_100_10", "lenet_paper"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"models": ["nope"]}, "models"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_cases": 7}, "n_cases"),
        ({"cw_search": 0}, "cw_search"),
        ({"cw_lr": 0.0}, "cw_lr"),
        ({"eps_values": [0.2, 0.1]}, "eps_values"),
        ({"pgd_steps": 0}, "pgd_steps"),
        ({"search_steps": -1}, "search_steps"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        O.Params(**overrides)


def test_cw_settings_are_targeted_with_the_chapters_search() -> None:
    p = O.Params(cw_search=4, cw_steps=50, cw_lr=0.05)
    assert p.cw_settings() == {"targeted": True, "search_steps": 4, "max_iter": 50, "lr": 0.05}


class _Linear(nn.Module):
    def __init__(self, n: int = 16, classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.flat = nn.Flatten()
        self.out = nn.Linear(n, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.flat(x))


class _MLP(_Linear):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(self.flat(x))))


def test_is_linear_tells_a_softmax_regression_from_a_deeper_model() -> None:
    assert O.is_linear(_Linear()) and not O.is_linear(_MLP())
    assert not O.is_linear(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))  # no `out` layer


def test_on_a_linear_model_neither_attack_goes_below_the_exact_minimum() -> None:
    net = _Linear().double().eval()
    x = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        target = (net(x).argmax(1) + 3) % 10
    p = O.Params(n_samples=4, cw_steps=500)
    out = O.attack_chunk(p, net, x, target)
    exact = out["exact_l2"]
    assert np.isfinite(exact).all() and (exact > 0).all()
    for a in O.ATTACKS:
        ok = out[f"{a}_success"]
        assert ok.all(), a
        assert (out[f"{a}_l2"] >= exact * (1 - 1e-6)).all(), a  # the minimum is a lower bound
        assert (out[f"{a}_l2"] <= exact * 1.5).all(), a  # and both come near it
        assert (out[f"{a}_seconds"] > 0).all() and len(set(out[f"{a}_seconds"])) == 1
    deep = O.attack_chunk(p, _MLP().double().eval(), x, target)
    assert np.isnan(deep["exact_l2"]).all()  # no exact minimum for a deeper model


def test_cases_attack_every_other_class() -> None:
    net = _Linear().eval()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([3, 7])
    out = O.cases_chunk(O.Params(cw_steps=100, cw_search=3), net, x, y)
    assert out["success"].shape == (2, 9) and out["l2"].shape == (2, 9)
    assert np.isnan(out["l2"][~out["success"]]).all()


def _result(**overrides: Any) -> O.Result:
    eps = O.Params().eps_values
    nan = math.nan
    values: dict[str, Any] = dict(
        params=O.Params(n_samples=2, n_cases=2).as_dict(),
        n_pixels=784,
        test_error=np.array([0.07, 0.02, 0.01]),
        success=np.array([[[1, 1], [1, 1], [1, 0]], [[1, 1], [1, 1], [1, 1]]], dtype=bool),
        l2=np.array([[[2.0, 2.2], [1.0, 1.2], [1.5, nan]], [[1.9, 2.0], [1.1, 1.3], [1.6, 1.8]]]),
        seconds=np.array([[[0.1, 0.1], [0.2, 0.2], [1.0, 1.0]], [[0.5, 0.5], [0.4, 0.4], [2.0, 2.0]]]),
        exact_l2=np.array([[1.8, 2.0], [nan, nan], [nan, nan]]),
        cases_success=np.ones((3, 2, 9), dtype=bool),
        cases_l2=np.tile(np.arange(1.0, 10.0), (3, 2, 1)),
        fgsm_error=np.tile(np.linspace(0.0, 0.9, len(eps)), (3, 1)),
        pgd_error=np.tile(np.linspace(0.0, 1.0, len(eps)), (3, 1)),
        eval_fgsm_wrong=np.zeros((3, 4, len(eps)), dtype=bool),
        eval_pgd_wrong=np.ones((3, 4, len(eps)), dtype=bool),
    )
    values.update(overrides)
    return O.Result(**values)


def test_glue_values_pin_the_arithmetic() -> None:
    g = O.glue_values(_result())
    assert g["lbfgs_l2_fc10_0p0001"] == pytest.approx(2.1)
    assert g["lbfgs_success_lenet_paper"] == 0.5 and g["lbfgs_l2_lenet_paper"] == 1.5  # failures left out
    assert g["cw_ms_lenet_paper"] == pytest.approx(2000.0)
    assert g["exact_l2_fc10_0p0001"] == pytest.approx(1.9)
    # mean excess over the exact minimum, attack by attack: (2/1.8 + 2.2/2)/2 - 1 and (1.9/1.8 + 1)/2 - 1
    assert g["lbfgs_excess"] == pytest.approx((2 / 1.8 + 1.1) / 2 - 1)
    assert g["cw_excess"] == pytest.approx((1.9 / 1.8 + 1.0) / 2 - 1)
    assert g["closest_phrase"].startswith("C&W ends nearer the minimum")
    assert (g["cw_best_l2_lenet_paper"], g["cw_worst_l2_lenet_paper"]) == (1.0, 9.0)
    assert g["cw_best_success_lenet_paper"] == 1.0
    assert g["cw_over_lbfgs_lenet_paper"] == pytest.approx(1.7 / 1.5)
    assert g["pgd_phrase_lenet_paper"].startswith("at every budget above zero PGD's error is at least FGSM's")
    assert g["fgsm_error_0p1_lenet_paper"] == pytest.approx(0.3)
    assert g["paper_cw_average"] == papers.CARLINI_TABLE4["l2"]["average"][0]


def test_the_worst_case_needs_every_target_to_succeed() -> None:
    ok = np.ones((3, 2, 9), dtype=bool)
    ok[2, 0, 4] = False
    g = O.glue_values(_result(cases_success=ok))
    assert g["cw_worst_success_lenet_paper"] == 0.5 and g["cw_worst_l2_lenet_paper"] == 9.0
    assert g["cw_best_success_lenet_paper"] == 1.0


def test_phrases_turn_on_their_numbers() -> None:
    assert O.closest_phrase(0.02, 0.05).startswith("L-BFGS ends nearer")
    assert O.closest_phrase(math.nan, 0.05).startswith("cannot be compared")
    assert O.pgd_phrase([0.1, -0.05]).startswith("PGD's error is below FGSM's at some budgets")
    assert O.pgd_phrase([]) == "no budget above zero was run"
    assert O.linearity_phrase(0.04, 0.28).startswith(
        "iterating gains less on the linear model (4.0 points at most on the linear model against 28.0"
    )
    assert O.linearity_phrase(0.3, 0.28).startswith("iterating gains no less")
    assert O.linearity_phrase(math.nan, 0.28).startswith("cannot be compared")


def test_headline_and_fidelity_set_table_iv_beside_the_lenet() -> None:
    r = _result()
    h = O.headline(r)
    assert h.rows[1][1] == "1.76 (100%)" and h.rows[1][2] == "1.70 (100%)"
    gaps = {x.quantity: x for x in O.fidelity(r)}
    assert len(gaps) == 6
    avg = gaps["C&W L2, average case: mean L2"]
    assert (avg.paper, avg.ours, avg.kind) == (1.76, pytest.approx(1.7), "distortion")
    assert "their CNN" in avg.note
    no_cnn = _result(params=O.Params(models=["fc10(0.0001)"]).as_dict())
    assert O.fidelity(no_cnn) == []


def test_result_round_trip_and_views(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = O.Result.load(tmp_path / "r")
    assert np.array_equal(back.l2, r.l2, equal_nan=True)
    frame = O.summary_frame(r)
    assert list(frame.index) == MODELS and frame.loc["lenet_paper", "C&W L2: mean L2"] == pytest.approx(1.7)
    html = O.summary_table(r).to_html()
    assert "—" in html  # no exact minimum for the deeper models
    assert len(O.distance_figure(r).axes) == 3 and len(O.fgsm_pgd_figure(r).axes) == 3
