"""The libraries chapter: its settings, the arithmetic of its glue and its views, on a made-up
result (the adapters and the JSMA rules are pinned in test_peers.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from advsamples.experiments import libraries as L


def test_every_attack_gets_the_chapters_settings() -> None:
    p = L.Params(pgd_eps=0.2, pgd_steps=4, cw_search=3, cw_steps=7, lbfgs_c=0.5)
    assert L.settings(p, "fgsm") == {"eps": 0.25}
    assert L.settings(p, "pgd") == {"eps": 0.2, "steps": 4, "alpha": pytest.approx(2.5 * 0.2 / 4)}
    assert L.settings(p, "jsma_neg")["theta"] == -1.0 and L.settings(p, "jsma")["theta"] == 1.0
    assert L.settings(p, "cw") == {"search_steps": 3, "max_iter": 7, "lr": 0.01, "c_init": 1.0}
    assert L.settings(p, "lbfgs_untargeted")["targeted"] is False
    with pytest.raises(ValueError, match="attack='deepfool'"):
        L.settings(p, "deepfool")


def _result(**overrides: Any) -> L.Result:
    p = L.Params(models=["lenet_paper"], n_digits=2, n_slow=1, libraries=["advertorch", "torchattacks"])
    cs = L.cells(p)
    nan = math.nan
    shape = (1, len(cs), 2)
    success, distance, same, maxdiff = (np.full(shape, nan) for _ in range(4))
    for j, (attack, lib) in enumerate(cs):
        k = 1 if attack in ("cw", "lbfgs", "lbfgs_untargeted") else 2
        success[0, j, :k] = [1.0, 0.0][:k]
        distance[0, j, :k] = [10.0, 30.0][:k]
        if lib != "ours" and attack != "lbfgs_untargeted":
            same[0, j, :k] = [1.0, 0.0][:k] if lib == "advertorch" else [0.0, 0.0][:k]
            maxdiff[0, j, :k] = [0.0, 1.0][:k]
        elif lib == "ours":
            same[0, j, :k], maxdiff[0, j, :k] = 1.0, 0.0
    seconds = np.array([[0.01 if lib == "ours" else 0.5 for _, lib in cs]])
    values: dict[str, Any] = dict(
        params=p.as_dict(),
        versions={"advertorch": "0.2.3", "torchattacks": "3.5.1"},
        cells=[list(c) for c in cs],
        n_pixels=784,
        test_error=np.array([0.01]),
        success=success,
        distance=distance,
        same=same,
        maxdiff=maxdiff,
        seconds=seconds,
        experiments=np.array([[[1, 1], [1, 0], [1, 1], [1, 1], [nan, nan], [nan, nan]]], float),
        experiment_names=list(L._EXPERIMENTS),
        bench=[
            {
                "model": "lenet_paper",
                "impl": "ours",
                "attacks_per_s": 40.0,
                "ours_over": 1.0,
                "peak_rss_mib": 900.0,
                "attack_mib": 300.0,
                "same": 1.0,
            },
            {
                "model": "lenet_paper",
                "impl": "advertorch",
                "attacks_per_s": 0.5,
                "ours_over": 80.0,
                "peak_rss_mib": 1200.0,
                "attack_mib": 600.0,
                "same": 0.9,
            },
        ],
        bench_bound={
            "lenet_paper": {
                "rows_per_s": 1500.0,
                "ratio": 1.2,
                "own_ratio": 1.1,
                "threads": 1,
                "model": "lenet_paper",
            }
        },
    )
    values.update(overrides)
    return L.Result(**values)


def test_glue_values_pin_the_arithmetic() -> None:
    g = L.glue_values(_result())
    assert g["success_jsma_advertorch_lenet_paper"] == 0.5
    assert g["dist_jsma_advertorch_lenet_paper"] == 10.0  # the successes only
    assert g["maxdist_jsma_advertorch_lenet_paper"] == 30.0
    assert g["same_jsma_advertorch_lenet_paper"] == 0.5 and g["same_jsma_torchattacks_lenet_paper"] == 0.0
    assert g["speedup_jsma_advertorch_lenet_paper"] == pytest.approx(50.0)
    assert g["exp_advertorch_all_neg_lenet_paper"] == 0.5
    assert math.isnan(g["exp_art_first_top2_lenet_paper"])
    assert (g["our_budget_pixels"], g["ceil_budget_pixels"]) == (112, 114)
    assert g["bench_ratio_advertorch_lenet_paper"] == 80.0 and g["bench_bound_ratio_lenet_paper"] == 1.2
    assert g["bench_own_bound_ratio_lenet_paper"] == 1.1
    assert g["bench_bound_runs"] == 1  # a benchmark cached before ours was timed as the best of runs
    bound = {"lenet_paper": _result().bench_bound["lenet_paper"] | {"runs": 3}}
    assert L.glue_values(_result(bench_bound=bound))["bench_bound_runs"] == 3
    assert g["fgsm_maxdiff"] == 1.0
    assert g["version_torchattacks"] == "3.5.1"
    assert "same_lbfgs_untargeted_advertorch_lenet_paper" in g
    assert math.isnan(g["same_lbfgs_untargeted_advertorch_lenet_paper"])


def test_headline_names_each_library_with_its_version() -> None:
    h = L.headline(_result())
    assert [r[0] for r in h.rows] == ["JSMA (θ = +1), advertorch 0.2.3", "JSMA (θ = +1), torchattacks 3.5.1"]
    # the benchmark's ratio where there is one, else the chapter's own timing
    assert h.rows[0][2] == "50% identical to ours; ours 80.0× as fast"
    assert L.headline(_result(bench=[])).rows[0][2] == "50% identical to ours; ours 50.0× as fast"


def test_views_show_every_cell() -> None:
    r = _result()
    frame = L.agreement_frame(r)
    assert len(frame) == len(r.cells)
    assert frame.loc[("JSMA, θ = +1", "advertorch"), "identical to ours"] == 0.5
    html = L.agreement_table(r).to_html()
    assert "—" in html  # the untargeted L-BFGS has nothing of ours to compare with
    assert list(L.speed_frame(r).index.get_level_values(1)) == ["ours", "advertorch"]
    assert "80.0" in L.speed_table(r).to_html()
    assert L.speed_frame(_result(bench=[])).empty
    L.agreement_figure(r)


def test_phrases_say_what_the_numbers_say() -> None:
    assert L.rates_phrase([[0.5, 0.5], [0.2, 0.2]]) == "The error rates are the same"
    assert L.rates_phrase([[0.5, 0.5], [0.2, 0.3]]) == "The error rates are not all the same"
    assert L.art_phrase({"a": (1.0, 0.95), "b": (1.0, 1.0)}).endswith("almost always")
    assert L.art_phrase({"a": (1.0, 0.95), "b": (1.0, 0.4)}).endswith("part on others")
    assert "40% on b" in L.art_phrase({"a": (1.0, 0.2), "b": (1.0, 0.4)})
    assert L.art_phrase({"a": (math.nan, math.nan)}) == "ART was not run"
    assert L.art_speed_phrase(2.0, 30, 50, "the CNN") == "ours is ahead of ART on the CNN too"
    slow = L.art_speed_phrase(0.8, 33.9, 53.2, "the CNN")
    assert (
        slow.startswith("on the CNN ART is ahead, 1.25 times as fast as ours")
        and "33.9 against our 53.2" in slow
    )
    assert L.art_speed_phrase(math.nan, 1, 1, "m") == "ART was not benchmarked"
    assert "1.50 times ours (larger)" in L.ratio_phrase(1.5)
    assert "(smaller)" in L.ratio_phrase(0.8) and "is ours" in L.ratio_phrase(1.001)
    assert L.ratio_phrase(math.nan).startswith("no digit")


def test_distance_ratio_compares_only_where_both_succeeded() -> None:
    g = L.glue_values(_result())
    # both succeed on the first digit only, at the same distance
    assert g["distratio_jsma_advertorch_lenet_paper"] == 1.0
    assert g["distgap_jsma_advertorch_lenet_paper"] == 0.0
    assert g["cleverhans_cw_phrase"].startswith("no digit")  # cleverhans was not run
