"""The FGSM chapter's shape: Params, Result, phrases, glue values, tables and figures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from advsamples import papers
from advsamples.experiments import fgsm as C

G = papers.GOODFELLOW
_NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "fgsm.ipynb"
_NAN = math.nan


def _result(**overrides: Any) -> C.Result:
    """A small hand-made result: four models, three budgets, a 3-class success matrix."""
    rng = np.random.default_rng(0)
    values: dict[str, Any] = dict(
        schedule="quick",
        names=["lenet_paper", "fc10", "logreg_3v7", "fc200_200_10"],
        eps_values=[0.0, 0.1, 0.2],
        table_eps=0.2,
        maxout_stand_ins=["fc200_200_10"],
        targeted_model="lenet_paper",
        targeted_eps=0.25,
        n_per_class=3,
        grid_model="lenet_paper",
        n_logreg=20,
        n_samples_10class=30,
        logreg_clean_error=0.02,
        logreg_adv_error=0.95,
        logreg_adv_confidence=0.9,
        logreg_eps_l1=28.0,
        logreg_mean_shift=17.0,
        logreg_median_margin=6.5,
        logreg_flipped=0.94,
        logreg_eps_at_paper_error=_NAN,
        curve_error=np.array(
            [[0.0, 0.2, 0.6], [0.1, 0.5, 0.9], [0.6, 0.9, 1.0], [0.0, 0.1, 0.2]], dtype=float
        ),
        curve_confidence=np.array(
            [[_NAN, 0.6, 0.7], [0.5, 0.7, 0.8], [0.9, 0.95, 0.99], [_NAN, 0.4, 0.5]], dtype=float
        ),
        clean_error=np.array([0.0, 0.1, 0.6, 0.0]),
        table_error=np.array([0.6, 0.9, 1.0, 0.2]),
        table_confidence=np.array([0.7, 0.8, 0.99, 0.5]),
        decay_lambdas=[0.0001, 1.0],
        decay_l1=np.array([40.0, 4.0]),
        decay_clean_error=np.array([0.07, 0.2]),
        decay_error=np.array([1.0, 0.8]),
        decay_confidence=np.array([0.9, 0.6]),
        success_matrix=np.array([[_NAN, 0.5, 1.0], [1.0, _NAN, 0.0], [0.2, 0.3, _NAN]]),
        untargeted_same_digits=0.85,
        fig2_weights=rng.normal(size=784).astype(np.float32),
        fig2_clean=rng.random((2, 2, 1, 28, 28), dtype=np.float32),
        fig2_adv=rng.random((2, 2, 1, 28, 28), dtype=np.float32),
        grid_clean=rng.random((2, 1, 28, 28), dtype=np.float32),
        grid_adv=rng.random((2, 1, 28, 28), dtype=np.float32),
        grid_labels=np.array([3, 7]),
        grid_pred=np.array([3, 7, 5, 7]),
        grid_conf=np.array([0.99, 0.9, 0.8, 0.6], dtype=np.float32),
        sample_pred=np.array([[1, 2], [3, -1]], dtype=np.int16),
        sample_conf=np.array([[0.9, 0.8], [0.7, np.nan]], dtype=np.float32),
    )
    values.update(overrides)
    return C.Result(**values)


# --- Params ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = C.Params.from_profile(profile)
    assert p.profile == profile and p.chapter == "fgsm"
    if profile == "paper":
        assert (p.n_samples, p.n_per_class) == (10000, 800)
    else:
        assert p == C.Params()


def test_params_match_the_notebook_parameters_cell() -> None:
    nb = json.loads(_NOTEBOOK.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    lines = [line for line in "".join(cell["source"]).splitlines() if line.strip()]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # the cell only assigns literals
    names = [line.split("=", 1)[0].strip() for line in lines]
    docs = [line.split("#", 1)[1].strip() for line in lines]
    assert names == C.Params.field_names()
    assert docs == list(C.Params.docs().values())
    assert C.Params.from_namespace(namespace).as_dict() == C.Params().as_dict()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"models": ["fc10", "fc10"]}, "duplicate"),
        ({"models": ["fc11"]}, "unknown item"),
        ({"models": []}, "at least 1"),
        ({"models": "fc10"}, "must be a list"),
        ({"eps_values": [0.0, 0.1, 0.1]}, "duplicate"),
        ({"eps_values": [0.2, 0.1]}, "increasing order"),
        ({"eps_values": [0.0, 1.5]}, "<= 1"),
        ({"eps_values": [-0.1, 0.1]}, ">= 0"),
        ({"eps_values": [True]}, "must be a number"),
        ({"eps_values": []}, "non-empty"),
        ({"eps_values": [i / 100 for i in range(52)]}, "at most 51"),
        ({"table_eps": True}, "must be a number"),
        ({"table_eps": 1.1}, "<= 1"),
        ({"table_eps": math.nan}, "finite"),
        ({"n_samples": 0}, "between 1 and 10000"),
        ({"n_samples": 10001}, "between 1 and 10000"),
        ({"n_samples": 1e9}, "must be an integer"),
        ({"n_samples": True}, "must be a number"),
        ({"fig2_per_class": 21}, "between 1 and 20"),
        ({"fc10_weight_decays": [0.01, 0.01]}, "duplicate"),
        ({"fc10_weight_decays": [1.0, 0.01]}, "increasing order"),
        ({"fc10_weight_decays": [-0.1]}, ">= 0"),
        ({"fc10_weight_decays": [1e300]}, "<= 100"),
        ({"fc10_weight_decays": [False]}, "must be a number"),
        ({"fc10_weight_decays": [i / 10 for i in range(9)]}, "at most 8"),
        ({"maxout_stand_ins": ["logreg_3v7"]}, "unknown item"),
        ({"maxout_stand_ins": ["lenet_relu", "lenet_relu"]}, "duplicate"),
        ({"targeted_model": "logreg_3v7"}, "not allowed"),
        ({"targeted_eps": 0.0}, "> 0"),
        ({"targeted_eps": 2.0}, "<= 1"),
        ({"targeted_eps": True}, "must be a number"),
        ({"n_per_class": 801}, "between 1 and 800"),
        ({"n_per_class": 1e9}, "must be an integer"),
        ({"grid_model": "logreg_3v7"}, "not allowed"),
        ({"grid_samples": 17}, "between 1 and 16"),
        ({"seed": -1}, "between 0 and"),
        ({"seed": 2**31}, "between 0 and 2147483647"),
        ({"seed": 1e30}, "must be an integer"),
        ({"seed": True}, "must be a number"),
        ({"seed": 0.5}, "must be an integer"),
        ({"schedule": "slow"}, "schedule"),
        ({"profile": "fast"}, "profile"),
    ],
)
def test_params_refuse(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        C.Params(**overrides)
    assert next(iter(overrides)) in str(err.value)


def test_params_accept_the_extremes() -> None:
    p = C.Params(n_samples=10000, n_per_class=800, seed=2**31 - 1, eps_values=[0.0, 1.0], grid_samples=16)
    assert p.n_samples == 10000 and p.seed == 2**31 - 1
    assert p.start_params()["seed"] == 2**31 - 1
    assert set(p.start_params()) == set(p.field_names()) - {"profile"}


def test_attacked_names() -> None:
    assert C.attacked_names(C.Params()) == [
        "lenet_paper",
        "lenet_relu",
        "fc10",
        "fc100_100_10",
        "fc200_200_10",
        "logreg_3v7",
    ]
    p = C.Params(models=["lenet_paper"], maxout_stand_ins=["lenet_relu", "fc10"])
    assert C.attacked_names(p) == ["lenet_paper", "fc10", "logreg_3v7", "lenet_relu"]


# --- Result ---------------------------------------------------------------------------------


def test_result_round_trip(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = C.Result.load(tmp_path / "r")
    assert isinstance(back.logreg_eps_at_paper_error, float) and math.isnan(back.logreg_eps_at_paper_error)
    for name in C.Result._array_fields():
        a, b = getattr(r, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    assert back.to_json().keys() == r.to_json().keys()
    assert {k: v for k, v in back.to_json().items() if k != "logreg_eps_at_paper_error"} == {
        k: v for k, v in r.to_json().items() if k != "logreg_eps_at_paper_error"
    }
    g, h = C.glue_values(r), C.glue_values(back)
    assert g.keys() == h.keys()
    for key in g:
        assert np.array_equal(np.asarray(g[key]), np.asarray(h[key]), equal_nan=not isinstance(g[key], str))


def test_curves_of() -> None:
    curves = C.curves_of(_result())
    assert list(curves) == ["lenet_paper", "fc10", "logreg_3v7", "fc200_200_10"]
    assert curves["fc10"][1] == C.AttackStats(0.1, 0.5, 0.7, 30)
    assert curves["logreg_3v7"][0].n == 20
    assert math.isnan(curves["lenet_paper"][0].confidence)


# --- phrases --------------------------------------------------------------------------------


def test_compared() -> None:
    assert C.compared(0.2, 0.1) == "higher than"
    assert C.compared(0.1, 0.2) == "lower than"
    assert C.compared(0.1, 0.1) == "equal to"


def test_paper_inside_and_its_words() -> None:
    assert C.paper_inside([0.9, 0.6], 0.793)
    assert C.paper_inside([0.793], 0.793)
    assert not C.paper_inside([0.9, 0.85], 0.793)
    assert C.inside_word(True) == "inside" and C.inside_word(False) == "outside"
    assert C.paper_reading(True).startswith("consistent with a softmax classifier")
    assert C.paper_reading(False) == "so the paper's classifier was regularised outside the range we tried"


def test_pct() -> None:
    assert C.pct(0.1234) == "12.3%"
    assert C.pct(None) == "—" and C.pct(_NAN) == "—"


def test_max_error_gap() -> None:
    # |0.02 - 0.016|, |0.95 - 0.99|, |0.9 - 0.999|: the softmax's is the largest
    assert C.max_error_gap(_result()) == pytest.approx(0.099)
    assert C.max_error_gap(_result(logreg_clean_error=0.5)) == pytest.approx(0.484)


# --- glue -----------------------------------------------------------------------------------

_FIXED_KEYS = {
    "table_eps", "n_logreg", "logreg_clean_error", "logreg_adv_error", "logreg_adv_confidence",
    "paper_logreg_clean_error", "paper_logreg_adv_error", "paper_eps", "logreg_eps_l1",
    "logreg_mean_shift", "logreg_median_margin", "logreg_flipped", "logreg_eps_at_paper_error",
    "paper_logreg_survivors", "logreg_survivors", "logreg_clean_vs_paper", "logreg_adv_vs_paper",
    "n_samples_10class", "maxout_names", "paper_softmax_adv_error", "paper_softmax_adv_confidence",
    "paper_maxout_adv_error", "paper_maxout_adv_confidence", "standin_error_min", "standin_error_max",
    "standin_confidence_min", "standin_confidence_max", "eps_half_conv_min", "eps_half_conv_max",
    "eps_half_fc_min", "eps_half_fc_max", "table_min_error", "wd_lambda_first", "wd_lambda_last",
    "wd_l1_first", "wd_l1_last", "wd_conf_first", "wd_conf_last", "wd_error_last", "wd_error_first",
    "wd_paper_inside", "wd_paper_reading", "n_per_class", "targeted_eps", "targeted_model",
    "targeted_mean", "targeted_easiest", "targeted_easiest_rate", "targeted_hardest",
    "targeted_hardest_rate", "targeted_hardest_source", "targeted_hardest_source_rate",
    "targeted_easiest_target", "targeted_easiest_target_rate", "success_matrix",
    "untargeted_same_digits", "grid_model", "max_error_gap",
}  # fmt: skip


def test_glue_keys() -> None:
    r = _result()
    per_model = {
        f"{k}_{n}" for n in r.names for k in ("clean_error", "adv_error", "adv_confidence", "eps_half")
    }
    assert set(C.glue_values(r)) == _FIXED_KEYS | per_model


def test_glue_values_known_answers() -> None:
    g = C.glue_values(_result())
    assert g["logreg_clean_vs_paper"] == "higher than"  # 0.02 > 0.016
    assert g["logreg_adv_vs_paper"] == "lower than"  # 0.95 < 0.99
    assert g["logreg_survivors"] == pytest.approx(0.05)
    assert g["paper_logreg_survivors"] == pytest.approx(0.01)
    assert math.isnan(g["logreg_eps_at_paper_error"])
    assert g["maxout_names"] == "fc200_200_10"
    assert (g["clean_error_fc10"], g["adv_error_fc10"], g["adv_confidence_fc10"]) == (0.1, 0.9, 0.8)
    assert (g["standin_error_min"], g["standin_error_max"]) == (0.2, 0.2)
    assert (g["standin_confidence_min"], g["standin_confidence_max"]) == (0.5, 0.5)
    # crossings of 50 %: interpolated (lenet 0.1 + 0.3/0.4 * 0.1), exact (fc10), first budget
    # (logreg), never (fc200)
    assert g["eps_half_lenet_paper"] == pytest.approx(0.175)
    assert g["eps_half_fc10"] == pytest.approx(0.1)
    assert g["eps_half_logreg_3v7"] == 0.0
    assert math.isnan(g["eps_half_fc200_200_10"])
    assert g["eps_half_conv_min"] == g["eps_half_conv_max"] == pytest.approx(0.175)
    assert g["eps_half_fc_min"] == 0.0 and g["eps_half_fc_max"] == pytest.approx(0.1)  # NaN skipped
    assert g["table_min_error"] == 0.2
    assert (g["wd_lambda_first"], g["wd_lambda_last"], g["wd_l1_first"], g["wd_l1_last"]) == (
        0.0001,
        1.0,
        40.0,
        4.0,
    )
    assert (g["wd_conf_first"], g["wd_conf_last"], g["wd_error_first"], g["wd_error_last"]) == (
        0.9,
        0.6,
        1.0,
        0.8,
    )
    assert g["wd_paper_inside"] == "inside" and g["wd_paper_reading"] == C.paper_reading(True)
    assert g["targeted_mean"] == pytest.approx(0.5)
    assert (g["targeted_easiest_rate"], g["targeted_easiest"]) == (1.0, "0 → 2, 1 → 0")
    assert (g["targeted_hardest_rate"], g["targeted_hardest"]) == (0.0, "1 → 2")
    assert (g["targeted_hardest_source"], g["targeted_hardest_source_rate"]) == (2, pytest.approx(0.25))
    assert (g["targeted_easiest_target"], g["targeted_easiest_target_rate"]) == (0, pytest.approx(0.6))
    assert (g["n_per_class"], g["targeted_eps"], g["targeted_model"], g["grid_model"]) == (
        3,
        0.25,
        "lenet_paper",
        "lenet_paper",
    )
    assert (g["table_eps"], g["n_logreg"], g["n_samples_10class"], g["untargeted_same_digits"]) == (
        0.2,
        20,
        30,
        0.85,
    )
    assert g["paper_eps"] == G["eps"] and g["paper_softmax_adv_confidence"] == G["softmax_adv_confidence"]


def test_glue_values_outside_and_without_lenets() -> None:
    r = _result(
        decay_confidence=np.array([0.9, 0.85]),
        names=["fc10", "logreg_3v7", "fc200_200_10", "fc100_100_10"],
    )
    g = C.glue_values(r)
    assert g["wd_paper_inside"] == "outside" and "outside the range" in g["wd_paper_reading"]
    assert math.isnan(g["eps_half_conv_min"]) and math.isnan(g["eps_half_conv_max"])


# --- views ----------------------------------------------------------------------------------


def test_tables() -> None:
    r = _result()
    logreg = C.table_logreg(r)
    assert isinstance(logreg, Styler)
    assert logreg.data.loc["FGSM, ε = 0.2", "this study"] == 0.95
    assert logreg.data.loc["clean", "Goodfellow et al. (Fig. 2)"] == G["logreg_clean_error"]
    models = C.table_models(r)
    assert list(models.data.index) == r.names
    assert models.data.loc["fc10", "paper's error"] == G["softmax_adv_error"]
    assert models.data.loc["fc200_200_10", "paper's model"] == "maxout network (not trained here)"
    assert models.data.loc["lenet_paper", "paper's model"] == "—"
    assert pd.isna(models.data.loc["lenet_paper", "paper's error"])
    assert "90.0%" in models.to_html() and "—" in models.to_html()
    decay = C.table_weight_decay(r)
    assert list(decay.data.index) == [0.0001, 1.0]
    assert list(decay.data["error at ε = 0.2"]) == [1.0, 0.8]
    assert "40.0" in decay.to_html()


def test_figures() -> None:
    r = _result()
    for fig in (
        C.figure_fig2(r),
        C.figure_error_confidence(r),
        C.figure_targeted_matrix(r),
        C.figure_sample_grid(r),
    ):
        assert isinstance(fig, Figure)
    conf = C.figure_error_confidence(r)
    assert "quick schedule, 30 test digits per model" in conf.get_suptitle()
    grid = C.figure_sample_grid(r)
    titles = [ax.get_title() for ax in grid.axes if ax.get_title()]
    assert titles[:4] == ["✓ 3 (99%)", "✓ 7 (90%)", "✗ 5 (80%)", "✓ 7 (60%)"]


# --- run on tiny parameters (the quick checkpoints, no training) ------------------------------


def _quick_checkpoints_exist() -> bool:
    from advsamples import models as M
    from advsamples.paths import checkpoint_dir, data_dir

    p = C.Params()
    configs = [M.config_for(n, "quick") for n in C.attacked_names(p)]
    configs += [M.config_for("fc10", "quick", weight_decay=wd) for wd in p.fc10_weight_decays]
    names = [*C.attacked_names(p), *["fc10"] * len(p.fc10_weight_decays)]
    have = all((checkpoint_dir() / f"{n}-{c.key()}.pt").exists() for n, c in zip(names, configs, strict=True))
    return have and (data_dir() / "mnist.npz").exists()


@pytest.mark.slow
@pytest.mark.skipif(not _quick_checkpoints_exist(), reason="needs the quick checkpoints and MNIST")
def test_run_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    p = C.Params(
        n_samples=30,
        eps_values=[0.0, 0.25],
        fc10_weight_decays=[0.0001],
        n_per_class=2,
        fig2_per_class=2,
        grid_samples=3,
    )
    r = C.run(p, progress=False)
    assert r.names == C.attacked_names(p)
    assert r.curve_error.shape == (6, 2) and r.success_matrix.shape == (10, 10)
    assert r.fig2_clean.shape == (2, 2, 1, 28, 28) and r.grid_pred.shape == (6,)
    assert np.array_equal(r.table_error, r.curve_error[:, 1]) and np.array_equal(
        r.clean_error, r.curve_error[:, 0]
    )
    assert r.n_logreg == 30 and r.n_samples_10class == 30
    g = C.glue_values(r)
    assert g["adv_error_fc10"] == r.table_error[r.row("fc10")]
    # a second run reads the cache: nothing is computed
    monkeypatch.setattr(C, "_compute", lambda *a, **k: pytest.fail("recomputed"))
    again = C.run(p, progress=False)
    assert np.array_equal(again.success_matrix, r.success_matrix, equal_nan=True)
    assert again.logreg_eps_at_paper_error == r.logreg_eps_at_paper_error


@pytest.mark.slow
@pytest.mark.skipif(not _quick_checkpoints_exist(), reason="needs the quick checkpoints and MNIST")
def test_curves_resume_from_their_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from advsamples.chapter import cache_root

    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    p = C.Params(
        n_samples=20, eps_values=[0.0, 0.3], fc10_weight_decays=[0.0001], n_per_class=1, grid_samples=2
    )
    r = C.run(p, progress=False)
    for entry in (cache_root() / "fgsm").glob("result-*"):
        shutil.rmtree(entry)  # as if killed after the curves
    monkeypatch.setattr(C, "error_curves", lambda *a, **k: pytest.fail("curves recomputed"))
    again = C.run(p, progress=False)
    assert np.array_equal(again.curve_error, r.curve_error)
    assert np.array_equal(again.curve_confidence, r.curve_confidence, equal_nan=True)


@pytest.mark.slow
@pytest.mark.skipif(not _quick_checkpoints_exist(), reason="needs the quick checkpoints and MNIST")
def test_quick_run_reproduces_the_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick profile's numbers, as the notebook computed them before its logic moved here."""
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    g = C.glue_values(C.run(C.Params(), progress=False))
    # 84 values in the notebook's record; "profile" (start()) and "threads" (provenance) are not the chapter's
    assert len(g) == 84 - 2
    assert (g["adv_error_lenet_paper"], g["logreg_eps_at_paper_error"]) == (0.93, 0.205)
    assert g["eps_half_lenet_paper"] == 0.13120689655172413
    assert g["logreg_eps_l1"] == 27.999401092529297
    assert g["targeted_mean"] == 0.5082222224523624
    assert g["targeted_easiest"] == "1 → 2, 1 → 6, 1 → 8, 3 → 8 and 2 more"
    assert (g["targeted_hardest_source"], g["untargeted_same_digits"]) == (0, 0.904)
    assert (g["wd_conf_first"], g["wd_paper_inside"]) == (0.8765417337417603, "inside")
    assert g["max_error_gap"] == 0.009500000000000064
    assert g["standin_confidence_max"] == 0.9322447180747986


def test_headline_sets_the_papers_numbers_beside_ours() -> None:
    r = _result()
    g, h = C.glue_values(r), C.headline(r)
    G = papers.GOODFELLOW
    assert h.rows[0] == ("logistic regression, 3 vs 7: clean error", "1.6%", f"{g['logreg_clean_error']:.1%}")
    assert h.rows[1][1:] == ("99%", f"{g['logreg_adv_error']:.2%}")
    assert (
        h.rows[2][1] == f"{G['softmax_adv_error']:.1%} ({G['softmax_adv_confidence']:.1%})" == "99.9% (79.3%)"
    )
    assert h.rows[2][2] == f"{g['adv_error_fc10']:.2%} ({g['adv_confidence_fc10']:.1%})"
    assert h.rows[3][1] == "89.4%" and g["maxout_names"] in h.rows[3][2]
    assert f"{g['n_samples_10class']:,} test digits" in h.our_scale and "ε = 0.25" in h.paper_scale
