"""The JSMA chapter in its chapter shape: parameters, result, glue, phrases, and the resumable runs."""

from __future__ import annotations

import ast
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from advsamples.experiments import jsma as J
from advsamples.experiments import jsma_runs
from advsamples.experiments.jsma_runs import Summary

SRC = Path(__file__).resolve().parents[1] / "src" / "advsamples"


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = J.Params.from_profile(profile)
    assert p.profile == profile
    assert J.Params.field_names()[:4] == ["profile", "schedule", "model", "compare_model"]


def test_quick_defaults_are_the_notebooks() -> None:
    p = J.Params()
    assert p.start_params() == {
        "schedule": "quick",
        "model": "lenet_paper",
        "compare_model": "lenet_relu",
        "sets": ["train", "validation", "test"],
        "n_samples": 30,
        "gamma": 0.145,
        "run_gamma": 0.383,
        "n_check": 10,
        "n_compare": 30,
        "epochs_list": [1, 3],
        "saliency_source": 1,
        "saliency_targets": [0, 4, 7],
        "seed": 0,
    }
    assert p.compared_epochs() == [1]  # 3 is the quick schedule's own length


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"saliency_source": True}, "saliency_source=True"),
        ({"saliency_source": 10}, "saliency_source=10"),
        ({"epochs_list": [1, 3, 1e8]}, "epochs_list[2]=100000000.0"),
        ({"epochs_list": [1, 3, 100000000]}, f"<= {J.MAX_EPOCHS}"),
        ({"epochs_list": [1, 3, 1]}, "duplicate"),
        ({"epochs_list": [3, 1]}, "increasing"),
        ({"epochs_list": list(range(1, J.MAX_EPOCHS_LIST + 2))}, "at most"),
        ({"saliency_targets": [0, 4, 4]}, "duplicate"),
        ({"saliency_targets": [0, 1]}, "saliency_targets"),  # the source itself is no target
        ({"sets": ["train", "validation"]}, "must include 'test'"),
        ({"sets": ["test", "test"]}, "duplicate"),
        ({"compare_model": "lenet_paper"}, "compare_model='lenet_paper'"),
        ({"model": "logreg_3v7"}, "model='logreg_3v7'"),
        ({"n_samples": 10001, "sets": ["test"]}, "n_samples=10001"),
        ({"n_samples": True}, "n_samples=True"),
        ({"n_check": 31}, "n_check=31"),
        ({"n_compare": 10**9}, "n_compare=1000000000"),
        ({"gamma": 0}, "gamma=0"),
        ({"gamma": True}, "gamma=True"),
        ({"run_gamma": 0.1}, "run_gamma=0.1"),
        ({"run_gamma": math.inf}, "run_gamma=inf"),
        ({"seed": 1e30}, "seed=1e+30"),
        ({"seed": 2**40}, "32-bit"),
        ({"seed": -1}, "seed=-1"),
        ({"schedule": "slow"}, "schedule='slow'"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="parameter") as err:
        J.Params(**overrides)
    assert message in str(err.value)


# --------------------------------------------------------------------------- phrases
def test_compared() -> None:
    assert J.compared(0.2, 0.1) == "higher than"
    assert J.compared(0.1, 0.2) == "lower than"
    assert J.compared(0.1, 0.1) == "equal to"


def test_sets_phrases() -> None:
    picture, verdict = J.sets_phrases(0.32)
    assert picture.startswith("the training, validation and test sets give the same picture")
    assert verdict == "consistent with one success rate for all sets"
    assert J.sets_phrases(0.05)[1] == "consistent with one success rate for all sets"
    assert J.sets_phrases(0.049) == (
        "the sets differ somewhat, which our samples are too small to explain",
        "a difference between the sets beyond sampling noise",
    )


def test_saliency_shares_text() -> None:
    assert J.saliency_shares_text([0, 4], [0.48, 0.494]) == "toward 0: 48%, toward 4: 49%"


def test_paper_profile_epochs() -> None:
    assert J.paper_profile_epochs() == "10, 50, 200"


# --------------------------------------------------------------------------- a synthetic result
def _summary(success: float, d_all: float, d_succ: float, gave_up: float = 0.0) -> dict[str, Any]:
    return asdict(Summary(success, d_all, d_succ, gave_up, 0.01, 270, 30))


def _setting(model: str, epochs: int, use_logits: bool, success: float, dist: float) -> dict[str, Any]:
    s = J.Setting(
        model,
        epochs,
        0.9 + epochs / 100,
        use_logits,
        Summary(**_summary(success, 0.06, dist)),
        2.0 + epochs,
        0.5,
        10.0,
    )
    d = asdict(s)
    d["summary"] = asdict(s.summary)
    return d


def _result(our_failure: float = 0.14) -> J.Result:
    succ = np.full((10, 10), 0.9)
    succ[:, 1] = 0.2  # target 1 is the hardest
    np.fill_diagonal(succ, np.nan)
    dist = np.full((10, 10), 0.05)
    np.fill_diagonal(dist, np.nan)
    return J.Result(
        params=J.Params().as_dict(),
        values={
            "epochs": 3,
            "test_accuracy": 0.95,
            "n_features": 784,
            "budget_pairs": 56,
            "pooled": _summary(0.86, 0.06, 0.05),
            "sets_p": 0.3,
            "check_attacks": 90,
            "check_agree": 90,
            "our_failure_distortion": our_failure,
            "ink_pixels_mean": 156.8,
            "domain_all": _summary(0.86, 0.058, 0.046),
            "domain_all_wasted": 0.03,
            "domain_agree": 0.9,
            "saturated_pixels_mean": 12.0,
            "decrease_all_wasted": 0.4,
            "black_pixels_mean": 627.2,
            "pair_count_min": 5.0,
            "pair_count_max": 15.0,
            "grid_success": 0.8,
            "grid_distortion": 0.05,
            "saliency_share_values": [0.48, 0.49, 0.46],
        },
        summaries={
            "train": _summary(0.84, 0.064, 0.050),
            "validation": _summary(0.85, 0.065, 0.051),
            "test": _summary(0.88, 0.056, 0.045),
        },
        decrease={
            "logits": _summary(0.85, 0.067, 0.061, 0.12),
            "probs": _summary(0.94, 0.058, 0.055, 0.05),
            "logits_all": _summary(0.66, 0.045, 0.036),
        },
        settings=[
            _setting("lenet_paper", 3, True, 0.88, 0.045),
            _setting("lenet_paper", 3, False, 0.94, 0.040),
            _setting("lenet_relu", 1, True, 0.90, 0.066),
            _setting("lenet_relu", 1, False, 0.99, 0.042),
            _setting("lenet_paper", 1, True, 0.85, 0.043),
            _setting("lenet_paper", 1, False, 0.93, 0.043),
        ],
        success_matrix=succ,
        distortion_matrix=dist,
        grid_clean=np.zeros((10, 1, 28, 28), dtype=np.float32),
        grid_adv=np.zeros((10, 10, 1, 28, 28), dtype=np.float32),
        grid_ok=~np.eye(10, dtype=bool),
        saliency_digit=np.zeros((1, 28, 28), dtype=np.float32),
        saliency_maps=np.zeros((3, 1, 28, 28), dtype=np.float32),
    )


def test_glue_values_pin_the_notebooks_arithmetic() -> None:
    g = J.glue_values(_result())
    assert g["budget_features"] == 112
    assert g["budget_fraction"] == 112 / 784
    assert g["n_attacks_per_set"] == 270
    assert g["ink_share"] == 156.8 / 784
    assert g["set_spread"] == pytest.approx(0.88 - 0.84)
    assert g["success_gap_test"] == 0.9705 - 0.88
    assert g["pixels_success_test"] == 0.045 * 784
    assert g["success_vs_paper"] == "lower than"
    assert g["distortion_vs_paper"] == "higher than"
    assert g["decrease_vs_paper"] == "higher than"  # 0.85 > the paper's 0.647
    assert g["decrease_more_less"] == "more"
    assert g["decrease_vs_increase"] == "less"  # 0.85 < 0.88
    assert g["hardest_target"] == 1
    assert g["hardest_target_success"] == pytest.approx(0.2)
    assert g["pair_success_min_pairs"].startswith("0 → 1, 2 → 1")
    assert g["saliency_shares"] == "toward 0: 48%, toward 4: 49%, toward 7: 46%"
    assert g["epochs_list"] == "1, 3"
    # the closest setting to the paper's (97.05%, 4.03%) is lenet_paper, 3 epochs, probabilities
    assert g["best_setting"] == "lenet_paper, 3 epochs, probabilities"
    assert g["best_is_probs"] == "the probabilities'"
    assert g["probs_vs_logits_success"] == "higher"
    assert g["probs_vs_logits_distortion"] == "lower"
    assert (g["epochs_first"], g["epochs_last"]) == (1, 3)
    assert g["epochs_logits_trend"] == "rises"
    assert g["epochs_meaning"] == "a better-trained model is, if anything, easier to steer"
    assert g["other_logits_success"] == 0.90
    assert g["success_gap_probs"] == 0.9705 - 0.94
    assert g["sets_verdict"] == "consistent with one success rate for all sets"
    assert g["domain_success_change"] == pytest.approx(0.86 - 0.88) and g["domain_all_wasted"] == 0.03
    assert g["paper_implied_failure_distortion"] == pytest.approx((0.0445 - 0.9705 * 0.0403) / (1 - 0.9705))
    # θ = −1 with every pixel in the domain: 0.66 against the paper's 0.647, ours 0.85
    assert g["decrease_all_success"] == 0.66 and g["black_share"] == 627.2 / 784
    assert g["decrease_domain_change"] == pytest.approx(0.66 - 0.85)
    assert (
        g["decrease_all_verdict"] == "this reading accounts for the whole gap of 20.3 points, within 2 points"
    )
    assert g["pair_noise_phrase"].startswith(
        "with as few as 5 attacks in a cell, a cell's rate is known only to ±44%"
    )
    assert g["probs_closer_lengths"] == "at every training length compared"
    assert g["training_length_phrase"].startswith("The paper's 200-epoch model at 99.41% lies further")


def test_pair_noise_phrase_turns_on_the_cells_interval() -> None:
    # ±1.96·√(0.25/n): 5 attacks give ±44%, 2,686 give ±1.9%
    assert "known only to ±44%" in J.pair_noise_phrase(5)
    assert J.pair_noise_phrase(2686) == (
        "with at least 2,686 attacks in a cell, each cell's rate is known to ±1.9% (95%), "
        "so these differences are real"
    )


def test_training_length_phrase_at_the_papers_length() -> None:
    text = J.training_length_phrase(200, 0.9919, 50, -0.002, 200, 0.9941)
    assert text.startswith("The longest training compared is the paper's own 200 epochs")
    assert "from 50 to 200 epochs the logits' success rate moves by -0.2 points" in text


def test_result_round_trip(tmp_path: Path) -> None:
    r = _result(our_failure=math.nan)
    r.save(tmp_path / "r")
    back = J.Result.load(tmp_path / "r")
    assert back.params == r.params and back.settings == r.settings
    for name in ("success_matrix", "grid_ok", "saliency_maps"):
        assert np.array_equal(getattr(back, name), getattr(r, name), equal_nan=True)
    a, b = J.glue_values(r), J.glue_values(back)
    assert a.keys() == b.keys()
    assert math.isnan(b["our_failure_distortion"])  # saved as "nan", read back as a float
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k], equal_nan=True)
        elif isinstance(a[k], float) and math.isnan(a[k]):
            assert math.isnan(b[k])
        else:
            assert a[k] == b[k], k


def test_figures_and_tables_from_a_result() -> None:
    r = _result()
    for fn in (
        J.success_heatmap_figure,
        J.distortion_heatmap_figure,
        J.grid_figure,
        J.saliency_figure,
        J.comparison_figure,
    ):
        assert fn(r) is not None
    assert list(J.fig11_table(r).data.index) == ["train", "validation", "test"]
    assert J.comparison_table(r).data.index[-1] == "paper"
    assert list(J.decrease_table(r).data.index) == [
        "logits",
        "probabilities",
        "logits, every pixel in Γ at the start",
        "paper",
    ]


# --------------------------------------------------------------------------- structure
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_bench_and_hardness_import_no_chapter_module() -> None:
    bench = _imports(SRC / "bench.py")
    assert not any(m.endswith("experiments.jsma") or m.endswith("experiments.hardness") for m in bench)
    assert "experiments.common" in bench
    hard = _imports(SRC / "experiments" / "hardness.py")
    assert "advsamples.experiments.jsma" not in hard
    assert "advsamples.experiments.jsma_runs" in hard
    assert not any(
        m.startswith("advsamples.experiments.") and m.split(".")[-1] not in ("common", "jsma_runs")
        for m in hard
    )
    runs = _imports(SRC / "experiments" / "jsma_runs.py")
    assert not any(m.startswith("advsamples.experiments.") and m.split(".")[-1] != "common" for m in runs)


def test_first_step_uses_the_attacks_forward_derivative(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    calls = []
    real = J.forward_derivative

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(J, "forward_derivative", spy)
    x = torch.rand(4, 1, 4, 4)
    gap, gain = J.first_step(model, x, torch.tensor([0, 1, 2, 0]), batch_size=2)
    assert len(calls) == 2 and gap.shape == gain.shape == (4,)


# --------------------------------------------------------------------------- resumable runs
def _tiny() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)).eval()


def test_craft_resumes_after_an_interruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _tiny()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 1, 4, 4, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1])
    monkeypatch.setattr(jsma_runs, "_CHUNK", 2)  # 3 chunks: 2 + 2 + 1 digits
    # the reference: an uninterrupted run, without the cache
    reference = jsma_runs.craft(model, x, y, gamma=0.5, cache=False)

    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    real = jsma_runs.jsma_trace
    calls: list[int] = []

    def killed_on_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed mid-way")
        return real(*args, **kwargs)

    monkeypatch.setattr(jsma_runs, "jsma_trace", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        jsma_runs.craft(model, x, y, gamma=0.5, model_key="tiny")
    assert len(calls) == 2
    assert not list((tmp_path / "cache" / "jsma").glob("*.pt"))  # no whole run saved
    assert len(list((tmp_path / "cache" / "jsma").glob("*.chunks-*/*.pt"))) == 1  # chunk 1 saved

    calls.clear()

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jsma_runs, "jsma_trace", counted)
    resumed = jsma_runs.craft(model, x, y, gamma=0.5, model_key="tiny")
    assert len(calls) == 2  # chunks 2 and 3: the one interrupted is redone, the first is not
    for name in ("index", "source", "target", "success", "iterations", "distortion"):
        assert torch.equal(getattr(resumed, name), getattr(reference, name)), name
    assert (resumed.gamma, resumed.budget) == (reference.gamma, reference.budget)
    # the whole run is now cached and its chunks are gone
    assert len(list((tmp_path / "cache" / "jsma").glob("*.pt"))) == 1
    assert not list((tmp_path / "cache" / "jsma").glob("*.chunks-*/*.pt"))
    calls.clear()
    again = jsma_runs.craft(model, x, y, gamma=0.5, model_key="tiny")
    assert calls == [] and torch.equal(again.success, reference.success)


def test_craft_resumes_with_kept_adversarial_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _tiny()
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([2, 1, 0])
    monkeypatch.setattr(jsma_runs, "_CHUNK", 1)
    reference = jsma_runs.craft(model, x, y, gamma=0.5, cache=False, keep_adv=True)
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    real = jsma_runs.jsma_trace
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(jsma_runs, "jsma_trace", flaky)
    with pytest.raises(RuntimeError):
        jsma_runs.craft(model, x, y, gamma=0.5, model_key="t", keep_adv=True)
    calls.clear()

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jsma_runs, "jsma_trace", counted)
    resumed = jsma_runs.craft(model, x, y, gamma=0.5, model_key="t", keep_adv=True)
    assert len(calls) == 1
    assert resumed.x_adv is not None and reference.x_adv is not None
    assert torch.equal(resumed.x_adv, reference.x_adv)
    assert torch.equal(resumed.distortion, reference.distortion)


def test_a_saved_chunk_holds_only_its_own_attacks(tmp_path: Path) -> None:
    """A chunk is a slice of the run's arrays; saved as is, torch would write the whole storage."""
    n, k = 100_000, 10
    big = {name: torch.zeros(n, dtype=torch.int64) for name in ("index", "source", "target", "iterations")}
    c = jsma_runs.Crafted(
        **{name: t[:k] for name, t in big.items()},
        success=torch.zeros(n, dtype=torch.bool)[:k],
        distortion=torch.zeros(n)[:k],
        gamma=0.1,
        budget=3,
        n_features=4,
        theta=1.0,
        use_logits=True,
    )
    path = tmp_path / "chunk.pt"
    jsma_runs._save(path, c)
    assert path.stat().st_size < 20_000
    back = jsma_runs._load(path)
    assert back is not None and torch.equal(back.index, c.index) and len(back) == k


def test_wasted_share_counts_picked_pixels_that_did_not_change() -> None:
    c = jsma_runs.Crafted(
        index=torch.arange(3),
        source=torch.zeros(3, dtype=torch.long),
        target=torch.ones(3, dtype=torch.long),
        success=torch.tensor([True, True, False]),
        iterations=torch.tensor([2, 0, 3]),  # 4 + 6 pixels picked by the attacks that moved
        distortion=torch.tensor([3 / 784, 0.0, 6 / 784]),  # 3 + 6 of them changed
        gamma=0.1,
        budget=39,
        n_features=784,
        theta=1.0,
        use_logits=True,
    )
    assert J.wasted_share(c) == pytest.approx(1 - 9 / 10)


def test_headline_sets_fig_11_beside_ours() -> None:
    r = _result()
    g, h = J.glue_values(r), J.headline(r)
    assert h.rows[0] == ("success rate, test set", "97.05%", f"{g['success_test']:.2%}")
    assert h.rows[1][1:] == ("4.03%", f"{g['distortion_success_test']:.2%}")
    assert h.rows[2][1:] == (
        "64.7%",
        f"{g['decrease_success_logits']:.1%} ({g['decrease_all_success']:.1%} with every pixel in the search "
        "domain at the start)",
    )
    assert "90,000 attacks per set" in h.paper_scale
    assert f"{g['n_attacks_per_set']:,} attacks per set" in h.our_scale


def test_a_shared_run_is_counted_once_not_in_the_chapter_that_computed_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSMA run saved to the shared cache records its seconds; the chapter whose compute made
    it leaves them out of its own time (the run ledger counts each piece once)."""
    import json
    import time

    from advsamples.chapter import cached

    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    model = _tiny()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1])
    real = jsma_runs.jsma_trace

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(jsma_runs, "jsma_trace", slow)
    params = J.Params()

    def compute() -> J.Result:
        jsma_runs.craft(model, x, y, gamma=0.5, model_key="tiny")  # shared: counted elsewhere
        jsma_runs.craft(model, x, y, gamma=0.5, cache=False)  # the chapter's own
        return _result()

    cached(params, J.Result, compute, version=99)
    (run,) = (tmp_path / "cache" / "jsma").glob("*.pt")
    run_seconds = json.loads(torch.load(run, weights_only=True)["meta"])["seconds"]
    (prov,) = (tmp_path / "cache" / "jsma").glob("result-*/provenance.json")
    own = json.loads(prov.read_text())["seconds"]
    assert run_seconds >= 0.5
    assert 0.5 <= own < 0.5 + run_seconds  # the uncached call only
