"""The L-BFGS chapter as a typed, cached run: its parameters, phrases and Result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from advsamples.experiments import lbfgs as L


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_every_profile_builds_params(profile: str) -> None:
    assert L.Params.from_profile(profile).profile == profile


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"max_iter": 10**9}, r"max_iter=1000000000 must be an integer between 1 and 100000"),
        ({"max_iter": 1e9}, "must be an integer"),
        ({"seed": 10**30}, "seed="),
        ({"seed": True}, "must be a number"),
        ({"search_steps": 1e8}, "must be an integer"),
        ({"n_samples": True}, "must be a number"),
        ({"c_init": 0}, "c_init=0 must be > 0"),
        ({"models": ["lenet_paper", "lenet_paper"], "grid_model": "lenet_paper"}, "duplicate"),
        ({"models": ["vgg"]}, "unknown item"),
        ({"grid_model": "logreg_3v7"}, "grid_model='logreg_3v7'"),
        ({"n_grid": 21}, "n_grid=21"),
        ({"alt_weight_decay": 1e300}, "alt_weight_decay="),
    ],
)
def test_bad_parameters_are_refused_naming_the_value(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        L.Params(**overrides)  # type: ignore[arg-type]


def test_search_settings_are_written_once_in_params() -> None:
    p = L.Params(search_steps=3, c_init=0.5)
    assert p.search() == {"c_init": 0.5, "search_steps": 3, "bracket_steps": 6, "max_iter": 100}


def test_phrases_have_known_answers() -> None:
    assert L.success_phrase(1.0) == "on every sample of every model"
    assert L.success_phrase(0.95) == "on at least 95% of the samples of every model"
    assert L.fc10_trend([0.06, 0.10, 0.14]).startswith("grows with λ")
    assert L.fc10_trend([0.06, 0.05, 0.14]).startswith("does not grow")
    assert L.mlp_fit([0.0, 0.0]) == "fit it perfectly too"
    assert L.mlp_fit([0.0, 0.01]).startswith("do not")
    assert L.refine_verdict(0.001, 0.05).startswith("less than the sampling error")
    assert L.refine_verdict(0.1, 0.05).startswith("more than the sampling error")
    assert L.target_vs_search(0.5, 0.2) == "The target matters more"
    assert L.target_vs_search(0.9, 0.2) == "The target matters less than the search"
    assert L.closer(0.11, 0.2, 0.1) == "closer to" and L.closer(0.3, 0.2, 0.1) == "further from"


@pytest.mark.slow
def test_a_small_run_round_trips_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    p = L.Params(models=["fc10(0.0001)", "fc10(1.0)"], n_samples=3, n_grid=2, grid_model="fc10(0.0001)")
    result = L.run(p, progress=False)
    result.save(tmp_path / "copy")
    back = L.Result.load(tmp_path / "copy")
    assert L.glue_values(back) == L.glue_values(result)
    g, h = L.glue_values(result), L.headline(result)
    assert h.rows == (
        (
            "FC10(1e-4): mean distortion (success)",
            "0.062",
            f"{g['dist_fc10_0p0001']:.3f} ({g['success_fc10_0p0001']:.0%})",
        ),
        (
            "FC10(1): mean distortion (success)",
            "0.140",
            f"{g['dist_fc10_1p0']:.3f} ({g['success_fc10_1p0']:.0%})",
        ),
    )
    assert "3 correctly classified test digits" in h.our_scale
    # the rerun reads the cache: a broken attack would fail if it were called again
    monkeypatch.setattr(L, "_compute", lambda *a, **k: pytest.fail("recomputed a cached run"))
    again = L.run(p, progress=False)
    for key, value in L.glue_values(result).items():
        other = L.glue_values(again)[key]
        assert other == value or (isinstance(value, float) and np.isnan(value) and np.isnan(other)), key
