"""The formulation chapter's shape: Params, Result, glue values and tables (no MNIST, no training)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from advsamples.experiments import formulation as F


def _result(**overrides: Any) -> F.Result:
    values: dict[str, Any] = dict(
        n_grad_samples=4,
        fd_step=1e-7,
        jitter_delta=0.01,
        check_models=["lenet_paper", "fc10", "lenet_relu"],
        piecewise=np.array([True, False, True]),
        raw_errors=np.array([0.2, 1e-8, 0.25]),
        jittered_errors=np.array([1e-7, 2e-8, 3e-5]),
        n_coords_checked=3136,
        tie_fraction=0.5,
        tie_fraction_off=0.0,
        chain_rule_model="fc100_100_10",
        chain_rule_error=1e-15,
        chain_rule_fd_error=1e-6,
        linear_n=3,
        linear_instances=2,
        linear_eps=0.25,
        n_random_corners=10,
        n_pixels=784,
        paper_eps=0.25,
        random_methods=["FGSM", "closed form", "brute force", "linear programme"],
        random_clean=np.array([0.5, 1.5]),
        random_losses=np.array([[1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]]),
        digit_methods=["FGSM", "closed form", "linear programme"],
        digit_clean=np.array([0.25, 0.75]),
        digit_losses=np.array([[8.0, 8.0, 8.0], [10.0, 10.0, 10.0]]),
        digit_best_random=np.array([0.5, 12.0]),
        max_loss_diffs=np.array([0.0, 1e-12, 0.0, 0.0]),
        max_point_diffs=np.array([0.0, 0.0, 2e-16, 0.0]),
    )
    values.update(overrides)
    return F.Result(**values)


# --- Params ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = F.Params.from_profile(profile)
    assert (p.profile, p.schedule) == (profile, profile)


def test_paper_profile_values() -> None:
    p = F.Params.from_profile("paper")
    assert (p.n_grad_samples, p.n_grad_coords, p.linear_instances) == (20, 15680, 200)


def test_defaults_are_the_notebook_defaults() -> None:
    p = F.Params()
    assert p.models == ["lenet_paper", "lenet_relu", "fc10", "fc100_100_10", "fc200_200_10", "logreg_3v7"]
    assert (p.n_grad_samples, p.n_grad_coords, p.fd_step, p.jitter_delta) == (4, 3136, 1e-7, 0.01)
    assert (p.chain_rule_model, p.linear_n, p.linear_instances, p.linear_eps) == (
        "fc100_100_10",
        12,
        20,
        0.25,
    )
    assert (p.n_random_corners, p.seed) == (1000, 0)
    assert "profile" not in p.start_params() and p.start_params()["seed"] == 0


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"n_random_corners": 1e9}, "n_random_corners"),
        ({"n_random_corners": 10**9}, r"n_random_corners=1000000000 must be an integer between 1 and 10000"),
        ({"n_random_corners": 0}, "n_random_corners"),
        ({"n_random_corners": True}, "n_random_corners=True must be a number"),
        ({"seed": 1e30}, "seed"),
        ({"seed": 10**30}, r"seed=.* must be an integer between 0 and 2147483647"),
        ({"seed": -1}, "seed"),
        ({"seed": False}, "seed=False must be a number"),
        ({"n_grad_samples": 10001}, "n_grad_samples"),
        ({"n_grad_samples": True}, "n_grad_samples=True must be a number"),
        ({"n_grad_coords": 4 * 784 + 1}, "n_grad_coords"),
        ({"n_grad_coords": 2.5}, "n_grad_coords"),
        ({"fd_step": 0.0}, "fd_step"),
        ({"fd_step": 0.1}, "fd_step"),
        ({"fd_step": True}, "fd_step=True must be a number"),
        ({"jitter_delta": math.nan}, "jitter_delta"),
        ({"jitter_delta": 0.5}, "jitter_delta"),
        ({"chain_rule_model": "lenet_paper"}, "chain_rule_model"),
        ({"linear_n": 17}, "linear_n"),
        ({"linear_n": True}, "linear_n=True must be a number"),
        ({"linear_instances": 1001}, "linear_instances"),
        ({"linear_instances": 1e9}, "linear_instances"),
        ({"linear_eps": 0.0}, "linear_eps"),
        ({"linear_eps": 1.5}, "linear_eps"),
        ({"linear_eps": True}, "linear_eps=True must be a number"),
        ({"models": ["fc10", "fc10"]}, "duplicate"),
        ({"models": ["fc11"]}, "unknown item"),
        ({"models": []}, "at least 1"),
        ({"models": "fc10"}, "must be a list"),
        ({"schedule": "slow"}, "schedule"),
        ({"profile": "fast"}, "profile"),
    ],
)
def test_params_refuse(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        F.Params(**overrides)


def test_params_accept_the_bounds() -> None:
    p = F.Params(n_random_corners=F.MAX_RANDOM_CORNERS, seed=F.MAX_SEED, linear_n=16, n_grad_coords=4 * 784)
    assert p.n_random_corners == 10_000


def test_model_keys_cover_every_model_used() -> None:
    one = F.model_keys(F.Params(models=["fc10"], chain_rule_model="fc10"))
    assert len(one) == 3  # fc10, lenet_paper, logreg_3v7
    assert len(F.model_keys(F.Params())) == 6


# --- Result ---------------------------------------------------------------------------------


def test_result_round_trip(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = F.Result.load(tmp_path / "r")
    assert back.to_json() == r.to_json()
    for name in ("piecewise", "raw_errors", "digit_losses", "max_point_diffs"):
        a, b = getattr(r, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert glue_equal(F.glue_values(back), F.glue_values(r))


def glue_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(type(a[k]) is type(b[k]) and a[k] == b[k] for k in a)


# --- glue ------------------------------------------------------------------------------------


def test_summarise_checks_known_answer() -> None:
    got = F.summarise_checks([True, False, True, False], [0.2, 1e-8, 0.25, 3e-6], [1e-7, 2e-8, 4e-5, 1e-9])
    assert got == {
        "gc_max_smooth": 3e-6,
        "gc_min_kinked_raw": 0.2,
        "gc_max_kinked_raw": 0.25,
        "gc_max_off": 4e-5,
    }


def test_summarise_checks_without_a_group_gives_nan() -> None:
    got = F.summarise_checks([False], [1e-8], [2e-8])
    assert (
        got["gc_max_smooth"] == 1e-8
        and math.isnan(got["gc_min_kinked_raw"])
        and math.isnan(got["gc_max_kinked_raw"])
    )


def test_glue_values_known_answers() -> None:
    g = F.glue_values(_result())
    assert g["gc_raw_lenet_paper"] == 0.2 and g["gc_off_lenet_relu"] == 3e-5 and g["gc_raw_fc10"] == 1e-8
    assert g["gc_max_smooth"] == 1e-8
    assert (g["gc_min_kinked_raw"], g["gc_max_kinked_raw"], g["gc_max_off"]) == (0.2, 0.25, 3e-5)
    assert g["linear_corners"] == 8
    assert g["linear_max_loss_diff"] == 1e-12 and g["linear_max_point_diff"] == 2e-16
    assert g["logreg_mean_clean_loss"] == 0.5
    assert g["logreg_mean_fgsm_loss"] == 9.0
    assert g["logreg_mean_random_loss"] == 6.25
    assert g["logreg_random_below"] == 1  # 0.5 < 8, but 12 > 10
    assert g["n_grad_coords_checked"] == 3136 and g["paper_eps"] == 0.25 and g["n_pixels"] == 784
    assert isinstance(g["logreg_random_below"], int) and isinstance(g["gc_raw_fc10"], float)
    assert set(g) == {
        *(f"gc_{kind}_{m}" for kind in ("raw", "off") for m in ("lenet_paper", "fc10", "lenet_relu")),
        "n_grad_samples", "n_grad_coords_checked", "fd_step", "jitter_delta", "gc_max_smooth",
        "gc_min_kinked_raw", "gc_max_kinked_raw", "gc_max_off", "tie_fraction", "tie_fraction_off",
        "chain_rule_error", "chain_rule_fd_error", "n_pixels", "linear_n", "linear_corners",
        "linear_instances", "linear_eps", "paper_eps", "linear_max_loss_diff", "linear_max_point_diff",
        "n_random_corners", "logreg_mean_clean_loss", "logreg_mean_fgsm_loss", "logreg_mean_random_loss",
        "logreg_random_below",
    }  # fmt: skip


# --- tables ---------------------------------------------------------------------------------


def test_linear_frame_means_per_problem() -> None:
    frame = F.linear_frame(_result())
    assert list(frame.index) == ["logreg_3v7 on a test digit, n = 784", "random linear model, n = 3"]
    assert list(frame.columns) == [
        "clean", "FGSM", "closed form", "brute force", "linear programme", "best random corner",
    ]  # fmt: skip
    digit, rand = frame.iloc[0], frame.iloc[1]
    assert (digit["clean"], digit["FGSM"], digit["best random corner"]) == (0.5, 9.0, 6.25)
    assert math.isnan(digit["brute force"]) and math.isnan(rand["best random corner"])
    assert (rand["clean"], rand["brute force"]) == (1.0, 2.0)
    assert "—" in F.linear_table(_result()).to_html()


def test_gradcheck_and_chain_rule_tables() -> None:
    frame = F.gradcheck_table(_result()).data
    assert list(frame.index) == ["lenet_paper", "fc10", "lenet_relu"]
    assert list(frame["max-pooling or ReLU"]) == ["yes", "no", "yes"]
    assert list(frame["at the test digits"]) == [0.2, 1e-8, 0.25]
    cr = F.chain_rule_table(_result()).data
    assert list(cr.index) == ["fc100_100_10"] and cr.iloc[0].tolist() == [1e-15, 1e-6]


# --- the computations on a random linear instance (tiny, no MNIST) --------------------------------


def test_stack_orders_methods_and_instances() -> None:
    cmp = F.linear_comparisons(4, 2, 0.2, seed=0)
    methods, clean, losses = F._stack(cmp)
    assert methods == ["FGSM", "closed form", "brute force", "linear programme"]
    assert losses.shape == (2, 4) and clean.tolist() == [c.clean_loss for c in cmp]
    assert losses[1].tolist() == [cmp[1].losses[m] for m in methods]
    assert bool((losses[:, 0] > clean).all())  # FGSM raises the loss
    assert torch.get_default_dtype() == torch.float32


# --- the whole chapter at the quick profile, against the notebook's numbers before the move ---

_QUICK_NAMES = ("lenet_paper", "lenet_relu", "fc10", "fc100_100_10", "fc200_200_10", "logreg_3v7")


def _quick_checkpoints_exist() -> bool:
    from advsamples import models as M
    from advsamples.paths import checkpoint_dir

    return all((checkpoint_dir() / f"{n}-{M.config_for(n, 'quick').key()}.pt").exists() for n in _QUICK_NAMES)


@pytest.mark.slow
@pytest.mark.skipif(not _quick_checkpoints_exist(), reason="needs the quick checkpoints (no training here)")
def test_quick_run_reproduces_the_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    torch.set_num_threads(1)
    g = F.glue_values(F.run(F.Params(), progress=False))
    # the values the notebook recorded before its computations moved into the package
    assert g["tie_fraction"] == 0.4798611111111111 and g["tie_fraction_off"] == 0.0
    assert g["gc_raw_lenet_paper"] == 0.19949279184297367
    assert g["gc_off_fc200_200_10"] == 3.7909798814293974e-05
    assert g["chain_rule_error"] == 9.071199967167773e-16
    assert g["chain_rule_fd_error"] == 1.390549936617481e-06
    assert g["logreg_mean_fgsm_loss"] == 9.08935332919821
    assert g["logreg_mean_random_loss"] == 0.09192973186725104
    assert (g["logreg_random_below"], g["linear_max_loss_diff"], g["n_pixels"]) == (20, 0.0, 784)
    assert any((tmp_path / "cache" / "formulation").iterdir())  # cached


def test_headline_quotes_the_measured_claims() -> None:
    r = _result()
    g, h = F.glue_values(r), F.headline(r)
    assert [row[1] for row in h.rows] == ["derived", "assumed", "not reported"]
    assert f"{g['linear_corners']:,} corners" in h.rows[0][2] and f"{g['gc_max_off']:.1e}" in h.rows[1][2]
    assert f"{g['logreg_mean_fgsm_loss']:.1f}" in h.rows[2][2]
