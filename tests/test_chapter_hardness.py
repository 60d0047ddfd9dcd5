"""The hardness chapter in its chapter shape: parameters, result, glue and the phrases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advsamples.experiments import hardness as H

UPS = [0.1, 0.3, 0.6]


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = H.Params.from_profile(profile)
    assert p.profile == profile
    assert p.n_samples == (30 if profile == "quick" else 10000)


def test_quick_defaults_are_the_notebooks() -> None:
    assert H.Params().start_params() == {
        "schedule": "quick",
        "model": "lenet_paper",
        "sets": ["train", "validation", "test"],
        "n_samples": 30,
        "upsilons": [0.003, 0.013, 0.026, 0.051, 0.077, 0.102, 0.128, 0.255, 0.383],
        "use_logits": True,
        "seed": 0,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"use_logits": 1}, "use_logits=1 must be true or false"),
        ({"use_logits": "yes"}, "use_logits='yes'"),
        ({"upsilons": [0.1, 0.1, 0.3]}, "duplicate"),
        ({"upsilons": [0.3, 0.1]}, "increasing"),
        ({"upsilons": [0.3]}, "at least two"),
        ({"upsilons": [0.0, 0.3]}, "upsilons[0]=0.0"),
        ({"upsilons": [0.3, 1.5]}, "upsilons[1]=1.5"),
        ({"upsilons": [0.3, True]}, "upsilons[1]=True"),
        ({"upsilons": [i / 1000 for i in range(1, H.MAX_UPSILONS + 2)]}, "at most"),
        ({"sets": ["train", "train"]}, "duplicate"),
        ({"sets": ["valid"]}, "sets=['valid']"),
        ({"n_samples": 10**9}, "n_samples=1000000000"),
        ({"n_samples": 0}, "n_samples=0"),
        ({"model": "logreg_3v7"}, "model='logreg_3v7'"),
        ({"seed": 1e30}, "seed=1e+30"),
        ({"seed": 2**40}, "32-bit"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="parameter") as err:
        H.Params(**overrides)
    assert message in str(err.value)


# --------------------------------------------------------------------------- phrases and helpers
def test_spearman_brown_and_the_attainable_correlation() -> None:
    assert H.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert H.spearman_brown(1.0) == 1.0
    assert H.spearman_brown(0.0) == 0.0
    assert H.attainable_correlation(0.6, 0.5) == pytest.approx(math.sqrt(0.75 * 2 / 3))
    assert H.attainable_correlation(-0.2, 0.9) == 0.0  # a negative reliability counts as 0
    with pytest.raises(ValueError):
        H.spearman_brown(-1.0)


def test_correlation_words() -> None:
    assert H.correlation_words(0.08) == "weak positive"
    assert H.correlation_words(-0.5) == "moderate negative"
    assert H.correlation_words(0.7) == "strong positive"
    assert H.correlation_words(0.0) == "weak negative"  # the notebook's rule: > 0 is positive


def test_other_phrases() -> None:
    assert H.reading_words(0.9) == "barely changes"
    assert H.reading_words(0.73) == "changes"
    assert H.noise_verdict(0.08, 0.85).startswith("far below")
    assert H.noise_verdict(0.5, 0.85).startswith("within reach")
    assert H.usefulness(0.39) == "cannot stand in for the attack here"
    assert H.usefulness(-0.4) == "can serve as a cheap first screen"
    assert H.significance_words(0.009) == "unlikely to arise by chance (p < 0.01)"
    assert H.significance_words(0.01).startswith("not clearly distinguishable")
    assert H.a_dependence(0.01) == "hardly depends on the source digit"
    assert H.a_dependence(0.1) == "depends on the source digit too"
    assert H.h_dependence(0.33, 0.95) == "far less"
    assert H.h_dependence(0.5, 0.95) == "about as much"


def test_first_at_least_and_extreme_pair() -> None:
    assert H.first_at_least([0.1, 0.2, 0.3], [0.2, 0.5, 0.9], 0.5) == 0.2
    assert math.isnan(H.first_at_least([0.1, 0.2], [0.2, 0.4], 0.5))
    m = np.array([[np.nan, 1.0, 3.0], [0.5, np.nan, 2.0], [4.0, 0.2, np.nan]])
    assert H.extreme_pair(m, "max") == (2, 0)
    assert H.extreme_pair(m, "min") == (2, 1)


# --------------------------------------------------------------------------- a synthetic result
def _result() -> H.Result:
    c = 10
    tau = np.zeros((3, c, c))
    eps = np.zeros((3, c, c))
    for k, (t, e) in enumerate([(0.2, 0.01), (0.6, 0.03), (0.9, 0.05)]):
        tau[k], eps[k] = t, e
    tau[:, 2, 7] = [0.0, 0.1, 0.2]  # a pair that mostly resists
    for m in (tau, eps):
        for k in range(3):
            np.fill_diagonal(m[k], np.nan)
    h = H.hardness(tau, eps)
    a = np.tile(np.linspace(0.4, 0.6, c), (c, 1))
    np.fill_diagonal(a, np.nan)
    at_m = np.full((c, c), 0.8)
    at_m[8, :] = 0.5  # source 8 is the hardest to move
    at_m[:, 1] = 0.1  # target 1 the hardest to reach
    np.fill_diagonal(at_m, np.nan)
    overall = [
        {"upsilon": u, "iterations": i, "success": s, "distortion_success": 0.02, "distortion_all": 0.03}
        for u, i, s in zip(UPS, [2, 7, 14], [0.3, 0.55, 0.9], strict=True)
    ]
    rc = {"spearman": 0.08, "spearman_p": 0.45, "kendall": 0.06, "kendall_p": 0.39, "n_pairs": 90}
    rs = {"spearman": -0.18, "spearman_p": 0.08, "kendall": -0.1, "kendall_p": 0.1, "n_pairs": 90}
    return H.Result(
        params=H.Params(upsilons=UPS).as_dict(),
        values={
            "epochs": 3,
            "test_accuracy": 0.95,
            "n_features": 49,
            "n_attacks": 810,
            "pair_count_min": 5.0,
            "pair_count_max": 15.0,
            "success_at_paper_gamma": 0.86,
            "n_pairs": 90,
            "rho_all_reading": 0.97,
            "rho_upsilon_reading": 0.72,
            "h_split": 0.6,
            "a_split": 0.5,
        },
        overall=overall,
        correlations={"A vs H": rc, "A vs success": rs},
        tau=tau,
        eps=eps,
        hardness_matrix=h,
        distance_matrix=a,
        success_at_paper_gamma=at_m,
    )


def test_glue_values_pin_the_notebooks_arithmetic() -> None:
    g = H.glue_values(_result())
    assert g["upsilon_max"] == 0.6 and g["budget_max"] == math.floor(49 * 0.6 / 2)
    assert g["budget_first"] == 2  # floor(49 * 0.1 / 2)
    assert g["our_upsilons"] == "10.0%, 30.0%, 60.0%"
    assert g["upsilon_half"] == 0.3  # the first budget with at least half the attacks succeeding
    assert g["success_first"] == 0.3 and g["success_last"] == 0.9
    assert (g["hardest_source"], g["hardest_source_success"]) == (8, pytest.approx((0.1 + 8 * 0.5) / 9))
    assert g["hardest_target"] == 1 and g["hardest_target_success"] == pytest.approx(0.1)
    # A grows with the target column: target 1 has the 2nd smallest A, so 8 targets lie above it
    assert g["hardest_target_a_rank"] == 9
    assert g["hardness_min_pairs"] == "2 → 7"  # the resisting pair integrates a short τ range
    assert g["easiest_pair_tau_max"] == 0.2
    assert g["tau_max_min"] == 0.2 and g["n_pairs_low"] == 1
    assert g["a_target_share"] == pytest.approx(1.0)
    assert g["a_dependence"] == "hardly depends on the source digit"
    assert g["attainable"] == pytest.approx(math.sqrt(0.75 * 2 / 3))
    assert g["noise_verdict"].startswith("far below")
    assert g["correlation_words"] == "weak positive"
    assert g["all_reading_words"] == "barely changes" and g["upsilon_reading_words"] == "changes"
    assert g["usefulness"] == "cannot stand in for the attack here"
    assert g["n_classes"] == 10


def test_result_round_trip(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = H.Result.load(tmp_path / "r")
    assert back.params == r.params and back.overall == r.overall and back.correlations == r.correlations
    for name in ("tau", "eps", "hardness_matrix", "distance_matrix", "success_at_paper_gamma"):
        assert np.array_equal(getattr(back, name), getattr(r, name), equal_nan=True)
    a, b = H.glue_values(r), H.glue_values(back)
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k], equal_nan=True)
        else:
            assert a[k] == b[k], k


def test_figures_and_tables_from_a_result() -> None:
    r = _result()
    for fn in (
        H.success_curves_figure,
        H.hardness_heatmap_figure,
        H.hardness_curves_figure,
        H.distance_heatmap_figure,
        H.distance_vs_hardness_figure,
    ):
        assert fn(r) is not None
    assert list(H.budget_table(r).data.index) == UPS
    assert list(H.correlation_table(r).data.index) == ["A vs H", "A vs success at Υ = 14.5%"]


def test_headline_quotes_the_success_and_the_correlation() -> None:
    r = _result()
    g, h = H.glue_values(r), H.headline(r)
    assert h.rows[0] == ("success at Υ = 14.5%", "97.05%", f"{g['success_at_paper_gamma']:.2%}")
    assert f"ρ = {g['spearman']:.2f}" in h.rows[1][2] and g["correlation_words"] in h.rows[1][2]
    assert "9 budgets Υ from 0.3% to 38.3%" in h.paper_scale
