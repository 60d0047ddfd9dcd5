"""The run record page's shape: Params, Result, glue values, tables, paths (no benchmark run)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from advsamples.experiments import runrecord as C

_BENCH = {
    "attacks": 900,
    "seconds": 10.0,
    "attacks_per_s": 90.0,
    "sample_iterations_per_s": 1000.0,
    "mean_iterations": 10.0,
    "success_rate": 0.5,
    "mean_distortion": None,  # NaN in the benchmark: no success
    "budget": 56,
    "peak_rss_mib": 1024.0,
    "threads": 1,
    "batch_size": 512,
    "device": "cpu",
    "dtype": "float32",
    "reference_checked": 3,
    "reference_agree": 2,
    "extrapolated_paper_s": 1200.0,
}


def _result(**overrides: Any) -> C.Result:
    values: dict[str, Any] = dict(
        recorded_profile="quick",
        schedule="quick",
        bench_samples=100,
        chapters=["models", "formulation", "fgsm"],
        notebook_seconds={
            "quick": {"models": 30.0, "formulation": 60.0, "fgsm": 90.0},
            "paper": {"models": 600.0},
        },
        compute_seconds={"quick": {"models": 20.0, "formulation": 40.0, "fgsm": 60.0}, "paper": {}},
        machine_cpus=2,
        models=["lenet_paper", "fc10"],
        epochs=[3, 10],
        train_seconds=[60.0, 20.0],
        train_threads=[1, 1],
        paper_epochs=[200, 50],
        bench=dict(_BENCH),
        environment={"python": "3.11.7", "results folder": "results/quick"},
        torch_version="2.0",
        ledger=[
            {"group": "training", "item": "lenet_paper, 200 epochs", "seconds": 3600.0},
            {"group": "training", "item": "fc10, 50 epochs", "seconds": 1800.0},
            {"group": "JSMA runs", "item": "90,000 attacks", "seconds": 5400.0},
            {"group": "chapters", "item": "fgsm", "seconds": 1800.0},
        ],
        fidelity={
            "lbfgs": {"n": 5, "over": 3, "summary": "3 of the 5 comparisons are over the rule: 3 unexplained"}
        },
    )
    values.update(overrides)
    return C.Result(**values)


# --- Params ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = C.Params.from_profile(profile)
    assert (p.profile, p.schedule) == (profile, profile)
    assert p.bench_samples == (100 if profile == "quick" else 1000)


def test_params_fields_and_docs() -> None:
    assert C.Params.field_names() == ["profile", "schedule", "bench_samples"]
    assert C.Params.docs()["profile"] == "the profile whose run this page records"
    assert C.Params().start_params() == {"schedule": "quick", "bench_samples": 100}


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"bench_samples": 10001}, "between 1 and 10000"),
        ({"bench_samples": 10**9}, "between 1 and 10000"),
        ({"bench_samples": 1e9}, "must be an integer"),
        ({"bench_samples": 0}, "bench_samples"),
        ({"bench_samples": True}, "bench_samples=True must be a number"),
        ({"schedule": "slow"}, "schedule"),
        ({"profile": "fast"}, "profile"),
    ],
)
def test_params_refuse(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        C.Params(**overrides)


# --- Result ---------------------------------------------------------------------------------


def test_result_round_trip(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = C.Result.load(tmp_path / "r")
    assert back == r
    assert C.glue_values(back) == C.glue_values(r)


# --- glue -------------------------------------------------------------------------------------


def test_glue_values_known_answers() -> None:
    g = C.glue_values(_result())
    assert g == {
        "bench_samples": 100,
        "run_minutes": 3.0,  # 30 + 60 + 90 s
        "run_complete": True,
        "compute_minutes": 2.0,  # 20 + 40 + 60 s, from the chapters' provenance
        "compute_complete": True,
        "compute_minutes_models": 20 / 60,
        "compute_minutes_formulation": 40 / 60,
        "compute_minutes_fgsm": 1.0,
        "runrecord_schedule": "quick",
        "paper_training_hours_estimate": (20.0 * 200 / 60 + 2.0 * 50 / 60) / 60,
        "lenet_paper_seconds_per_epoch": 20.0,
        "bench_attacks_per_s": 90.0,
        "bench_paper_test_minutes": 20.0,
        "bench_peak_rss_mib": 1024.0,
        "bench_reference_agree": "2 of 3",
        "torch_version": "2.0",
        "ledger_training_hours": 1.5,  # 3600 + 1800 s
        "ledger_jsma_hours": 1.5,
        "ledger_chapters_hours": 0.5,
        "ledger_total_hours": 3.5,
        "ledger_jsma_runs": 1,
        "ledger_two_lane_hours": 1.75,
        "ledger_target_phrase": "the target of 3 hours on 2 cores is the paper profile's",
    }
    assert set(C.MEASURED_KEYS) <= set(g)


def test_target_phrase() -> None:
    assert C.target_phrase("paper", 2.5) == "that is within the study's target of 3 hours on 2 cores"
    assert C.target_phrase("paper", 3.25).startswith("that is 0.25 hours above the study's target of 3 hours")


def test_ledger_frame_sums_each_group_once() -> None:
    frame = C.ledger_frame(_result())
    assert list(frame.index) == [*C.LEDGER_GROUPS, "total"]
    assert list(frame["pieces"]) == [2, 1, 1, 4]
    assert list(frame["seconds"]) == [5400.0, 5400.0, 1800.0, 12600.0]
    assert C.ledger_table(_result()) is not None


def test_ledger_counts_a_training_trajectory_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 10- and 50-epoch checkpoints of one trajectory are the first epochs of the longest:
    its seconds (which include theirs) are the trajectory's; a shared JSMA run is its own row."""
    import json

    import torch

    from advsamples import models as M

    monkeypatch.setenv("ADVSAMPLES_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path / "results"))
    (tmp_path / "ckpt").mkdir()
    for epochs, seconds in ((10, 100.0), (50, 500.0), (200, 2000.0)):
        cfg = M.config_for("lenet_paper", "paper", epochs=epochs)
        meta = {"name": "lenet_paper", "config": dataclasses.asdict(cfg), "train_seconds": seconds}
        torch.save({"meta": json.dumps(meta)}, tmp_path / "ckpt" / f"lenet_paper-{cfg.key()}.pt")
    other = M.config_for("fc10", "paper")
    meta = {"name": "fc10", "config": dataclasses.asdict(other), "train_seconds": 30.0}
    torch.save({"meta": json.dumps(meta)}, tmp_path / "ckpt" / f"fc10-{other.key()}.pt")
    (tmp_path / "ckpt" / "junk.pt").write_bytes(b"not a checkpoint")
    jsma = tmp_path / "results" / "cache" / "jsma"
    jsma.mkdir(parents=True)
    run_meta = {"gamma": 0.145, "theta": -1.0, "use_logits": True, "seconds": 70.0}
    torch.save({"success": torch.zeros(9, dtype=torch.bool), "meta": json.dumps(run_meta)}, jsma / "a.pt")
    rows = C.ledger("quick", [])
    assert rows == [
        {"group": "training", "item": "fc10, 50 epochs", "seconds": 30.0},
        {"group": "training", "item": "lenet_paper, 200 epochs", "seconds": 2000.0},
        {"group": "JSMA runs", "item": "9 attacks, θ = -1, Υ = 14.5%, logits", "seconds": 70.0},
    ]


def test_run_summary_of_an_incomplete_and_a_missing_run() -> None:
    minutes, complete = C.run_summary(_result(recorded_profile="paper"))
    assert (minutes, complete) == (10.0, False)
    minutes, complete = C.run_summary(_result(notebook_seconds={"quick": {}, "paper": {}}))
    assert math.isnan(minutes) and complete is False


# --- tables -----------------------------------------------------------------------------------


def test_timings_frame() -> None:
    f = C.timings_frame(_result())
    assert list(f.index) == ["models", "formulation", "fgsm", "total"] and list(f.columns) == [
        ("quick", "compute"),
        ("quick", "notebook"),
        ("paper", "compute"),
        ("paper", "notebook"),
    ]
    assert f.loc["total", ("quick", "notebook")] == 180.0 and f.loc["total", ("paper", "notebook")] == 600.0
    assert f.loc["total", ("quick", "compute")] == 120.0 and math.isnan(f.loc["total", ("paper", "compute")])
    assert math.isnan(f.loc["fgsm", ("paper", "notebook")])
    assert (
        "1 min" not in C.timings_table(_result()).to_html()
        and "180 s" in C.timings_table(_result()).to_html()
    )


def test_training_frame() -> None:
    f = C.training_frame(_result())
    assert f.loc["lenet_paper", "s / epoch"] == 20.0
    assert f.loc["fc10", "paper schedule (estimate, min)"] == pytest.approx(2.0 * 50 / 60)
    html = C.training_table(_result()).to_html()
    assert ">20.0<" in html and ">1.7<" in html  # s / epoch; fc10's 50 epochs at 2 s, in minutes


def test_bench_report_restores_nan() -> None:
    text = C.bench_report(_result())
    assert "900 attacks" in text and "nan%" in text and "2/3 samples identical" in text


def test_environment_table_has_no_absolute_path() -> None:
    t = C.environment_table(_result())
    assert t.loc["results folder", "value"] == "results/quick"


# --- paths -------------------------------------------------------------------------------------


def test_display_path_inside_the_root(tmp_path: Path) -> None:
    assert C.display_path(tmp_path / "results" / "quick", tmp_path) == "results/quick"
    assert C.display_path(tmp_path, tmp_path) == "."


def test_display_path_outside_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, res = tmp_path / "root", tmp_path / "elsewhere"
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(res))
    assert C.display_path(res / "quick", root) == "$ADVSAMPLES_RESULTS/quick"
    assert C.display_path(res, root) == "$ADVSAMPLES_RESULTS"
    monkeypatch.delenv("ADVSAMPLES_RESULTS")
    shown = C.display_path(res / "quick", root)
    assert shown == "<outside the project>/quick" and str(tmp_path) not in shown


def test_fidelity_is_read_from_the_chapters_glued_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    (tmp_path / "quick").mkdir()
    glued = {"fidelity_n": 4, "fidelity_over": 1, "fidelity_summary": "1 of the 4 comparisons ..."}
    (tmp_path / "quick" / "jsma.json").write_text(json.dumps({"results": glued}))
    (tmp_path / "quick" / "fgsm.json").write_text(json.dumps({"results": {"eps": 0.25}}))
    got = C.fidelity("quick", ["fgsm", "jsma", "hardness"])
    assert got == {"jsma": {"n": 4, "over": 1, "summary": "1 of the 4 comparisons ..."}}
    frame = C.fidelity_frame(_result(fidelity=got))
    assert list(frame.index) == ["jsma"] and list(frame.columns) == [
        "comparisons",
        "over the rule",
        "verdicts",
    ]


def test_fidelity_table_renders() -> None:
    html = C.fidelity_table(_result()).to_html()
    assert "3 of the 5 comparisons are over the rule: 3 unexplained" in html
