"""The models chapter's shape: Params, Result, glue values, tables and figures (no training)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from advsamples.experiments import models as C


def _result(**overrides: Any) -> C.Result:
    values: dict[str, Any] = dict(
        schedule="quick",
        keys=["lenet_paper", "lenet_relu", "fc10(1.0)", "fc10(0.01)"],
        labels=["LeNet", "(none)", "FC10(1)", "FC10(1e-2)"],
        epochs=[3, 1, 10, 10],
        errors=np.array([0.045, 0.02, 0.28, 0.10]),
        paper_errors=[0.006, None, 0.2, 0.094],
        train_seconds=[70.4, 20.6, 5.0, 5.5],
        sources=["Sec. V-A", "-", "Table 1", "Table 1"],
        notes=["a", "b", "c", "d"],
        histories={
            "lenet_paper": [0.08, 0.06, 0.045],
            "lenet_relu": [0.02],
            "fc10(1.0)": [0.3, 0.28],
            "fc10(0.01)": [0.12, 0.1],
        },
        fc10_weight_decays=[1.0, 0.01],
        convention_errors={"fc10(1.0)": 0.21, "fc10(0.01)": 0.099},
    )
    values.update(overrides)
    return C.Result(**values)


# --- Params ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = C.Params.from_profile(profile)
    assert (p.profile, p.schedule) == (profile, profile)
    assert p.fc10_weight_decays == [0.0001, 0.01, 1.0]


def test_field_order_is_the_parameters_cell() -> None:
    assert C.Params.field_names() == ["profile", "schedule", "models", "fc10_weight_decays"]
    assert C.Params.docs()["schedule"].startswith("training schedule:")
    assert "profile" not in C.Params().start_params()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"fc10_weight_decays": [0.01, 0.01]}, r"duplicate item\(s\) \[0.01\]"),
        ({"fc10_weight_decays": [1, 1.0]}, "duplicate"),
        ({"fc10_weight_decays": [0.0, -0.0]}, "duplicate"),
        ({"models": ["fc10", "lenet_paper", "fc10"]}, "duplicate"),
        ({"fc10_weight_decays": [True]}, "must be a number"),
        ({"fc10_weight_decays": [-0.1]}, ">= 0"),
        ({"fc10_weight_decays": [math.inf]}, "finite"),
        ({"fc10_weight_decays": []}, "non-empty"),
        ({"fc10_weight_decays": [i / 10 for i in range(11)]}, "at most 10"),
        ({"models": ["fc11"]}, "unknown item"),
        ({"models": []}, "at least 1"),
        ({"schedule": "slow"}, "schedule"),
        ({"profile": 1}, "profile"),
    ],
)
def test_params_refuse(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        C.Params(**overrides)


def test_unsorted_decays_are_still_accepted() -> None:
    assert C.Params(fc10_weight_decays=[1.0, 0.0001]).fc10_weight_decays == [1.0, 0.0001]


def test_model_variants_and_keys() -> None:
    got = C.model_variants(["lenet_paper", "fc10"], [0.01, 1])
    assert got == [
        ("lenet_paper", "lenet_paper", {}),
        ("fc10(0.01)", "fc10", {"weight_decay": 0.01}),
        ("fc10(1.0)", "fc10", {"weight_decay": 1.0}),
    ]
    p = C.Params(models=["lenet_paper", "fc10"], fc10_weight_decays=[0.01, 1.0])
    keys = C.model_keys(p)
    assert len(set(keys)) == 5  # and the two FC10s under the textbook convention
    assert C.convention_variants(p) == {"fc10(0.01)": 0.005, "fc10(1.0)": 0.5}
    assert C.convention_variants(C.Params(models=["lenet_paper"])) == {}


# --- Result ---------------------------------------------------------------------------------


def test_result_round_trip(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = C.Result.load(tmp_path / "r")
    assert back.to_json() == r.to_json() and back.paper_errors[1] is None
    assert np.array_equal(back.errors, r.errors) and back.errors.dtype == np.float64
    assert C.glue_values(back) == C.glue_values(r)


# --- phrases and glue -------------------------------------------------------------------------


def test_fc10_order_phrases() -> None:
    assert C.fc10_order([0.07, 0.10, 0.28]) == "rises with λ, as in the paper"
    assert C.fc10_order([0.07, 0.07]) == "rises with λ, as in the paper"
    assert C.fc10_order([0.10, 0.07, 0.28]) == "does not rise monotonically with λ, unlike the paper"
    assert C.fc10_order([0.1]) == "rises with λ, as in the paper"


def test_last_step_drop() -> None:
    assert C.last_step_drop([0.5, 0.25, 0.125]) == 12.5
    assert C.last_step_drop([0.5]) == 0.0


def test_glue_values_known_answers() -> None:
    g = C.glue_values(_result())
    assert g == {
        "err_lenet_paper": 0.045,
        "epochs_lenet_paper": 3,
        "paper_err_lenet_paper": 0.006,
        "err_lenet_relu": 0.02,
        "epochs_lenet_relu": 1,
        "err_fc10_1p0": 0.28,
        "epochs_fc10_1p0": 10,
        "paper_err_fc10_1p0": 0.2,
        "err_fc10_0p01": 0.10,
        "epochs_fc10_0p01": 10,
        "paper_err_fc10_0p01": 0.094,
        "lenet_paper_first_epoch_err": 0.08,
        "lenet_paper_last_step_drop": 100 * (0.06 - 0.045),
        "fc10_order": "rises with λ, as in the paper",  # sorted by λ: 0.10 then 0.28
    }
    assert type(g["err_lenet_paper"]) is float and type(g["epochs_lenet_paper"]) is int


def test_glue_values_without_lenet_or_fc10() -> None:
    r = _result(
        keys=["lenet_relu"],
        labels=["x"],
        epochs=[1],
        errors=np.array([0.02]),
        paper_errors=[None],
        train_seconds=[1.0],
        sources=["-"],
        notes=["n"],
        histories={"lenet_relu": [0.02]},
        fc10_weight_decays=[],
        convention_errors={},
    )
    assert C.glue_values(r) == {"err_lenet_relu": 0.02, "epochs_lenet_relu": 1}


# --- tables and figures --------------------------------------------------------------------------


def test_error_frame() -> None:
    f = C.error_frame(_result())
    assert list(f.index) == ["lenet_paper", "lenet_relu", "fc10(1.0)", "fc10(0.01)"]
    assert f.loc["fc10(1.0)", "difference (points)"] == pytest.approx(8.0)
    assert math.isnan(f.loc["lenet_relu", "test error (paper)"])
    assert list(f["train time (s)"]) == [70, 21, 5, 6]
    html = C.error_table(_result()).to_html()
    assert "4.50%" in html and "—" in html and "+8.00" in html
    assert list(C.notes_table(_result()).data["note"]) == ["a", "b", "c", "d"]


def test_figures() -> None:
    bars = C.error_figure(_result())
    assert isinstance(bars, Figure) and "quick schedule" in bars.axes[0].get_title()
    curves = C.learning_curves_figure(_result())
    ax = curves.axes[0]
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 4
    relu = np.asarray(ax.get_lines()[1].get_ydata(), dtype=float)  # lenet_relu: one epoch of three
    assert relu.shape == (3,) and relu[0] == 0.02 and bool(np.isnan(relu[1:]).all())


# --- the whole chapter at the quick profile, against the notebook's numbers before the move ---


def _quick_checkpoints_exist() -> bool:
    from advsamples import models as M
    from advsamples.paths import checkpoint_dir

    params = C.Params()
    return all(
        (checkpoint_dir() / f"{name}-{M.config_for(name, 'quick', **o).key()}.pt").exists()
        for _, name, o in C.model_variants(params.models, params.fc10_weight_decays)
    )


@pytest.mark.slow
@pytest.mark.skipif(not _quick_checkpoints_exist(), reason="needs the quick checkpoints (no training here)")
def test_quick_run_reproduces_the_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    g = C.glue_values(C.run(C.Params(), progress=False))
    assert len(g) == 8 * 2 + 7 + 3  # err and epochs per model, 7 paper errors, 3 sentences
    assert (g["err_fc10_0p0001"], g["epochs_fc10_1p0"]) == (0.07540000000000002, 10)
    assert g["err_logreg_3v7"] == 0.01717369970559368 and g["paper_err_fc10_1p0"] == 0.2
    assert g["lenet_paper_first_epoch_err"] == 0.08330000000000004
    assert g["lenet_paper_last_step_drop"] == 1.2700000000000045
    assert g["fc10_order"] == "rises with λ, as in the paper"


def test_headline_lists_every_model_the_papers_report() -> None:
    r = _result()
    h = C.headline(r)
    reported = [
        (label, p, e) for label, p, e in zip(r.labels, r.paper_errors, r.errors, strict=True) if p is not None
    ]
    assert len(h.rows) == len(reported)
    for row, (label, paper, err) in zip(h.rows, reported, strict=True):
        assert row == (f"{label}: test error", f"{paper:.2%}", f"{float(err):.2%}")


def test_fidelity_reads_fc10_under_the_textbook_convention() -> None:
    gaps = {g.quantity: g for g in C.fidelity(_result())}
    assert list(gaps) == ["LeNet: test error", "FC10(1): test error", "FC10(1e-2): test error"]
    assert gaps["LeNet: test error"].verdict == "unexplained"  # 3.9 points, no experiment
    fc = gaps["FC10(1): test error"]
    assert (fc.ours, fc.reading, fc.experiment) == (0.28, 0.21, "λ = 0.5 (the textbook ½λ‖W‖²)")
    assert fc.verdict == "explained"  # 0.21 is 1 point from 0.20
    assert gaps["FC10(1e-2): test error"].verdict == "within the study's tolerance"
