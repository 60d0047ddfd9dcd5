"""The gradient-flow chapter: parameters, the variants, the digits, the glue and the views, on a
synthetic result (the chapter's run itself is checked by nbval and the audit)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from advsamples import models as M
from advsamples import papers
from advsamples.experiments import gradflow as G


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "nope"}, "model"),
        ({"levels": [1]}, "levels"),
        ({"levels": [4, 2]}, "levels"),
        ({"levels": []}, "levels"),
        ({"levels": [2, 2]}, "levels"),
        ({"eps": 0.15}, "eps"),
        ({"eps_values": [0.3, 0.1]}, "eps_values"),
        ({"n_seed": 0}, "n_seed"),
        ({"n_seed": 10000}, "n_seed"),
        ({"rounds": 0}, "rounds"),
        ({"lam": 0.0}, "lam"),
        ({"tau": 0}, "tau"),
        ({"n_bb": 9900}, "n_bb"),
        ({"n_bb_jsma": 2000}, "n_bb_jsma"),
        ({"search_steps": -1}, "search_steps"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        G.Params(**overrides)


def test_variants_and_oracles_follow_the_levels() -> None:
    p = G.Params(levels=[2, 8])
    assert p.variants() == ["plain", "masked2", "bpda2", "masked8", "bpda8"]
    assert p.oracles() == ["plain", "masked2", "masked8"]


def test_variant_model_builds_each_kind() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    assert G.variant_model(net, "plain") is net
    masked, bpda = G.variant_model(net, "masked4"), G.variant_model(net, "bpda4")
    assert isinstance(masked, M.InputStep) and masked.levels == 4 and not masked.straight_through
    assert isinstance(bpda, M.InputStep) and bpda.straight_through
    for bad in ("masked", "bpda2x", "quant2"):
        with pytest.raises(ValueError, match="variant"):
            G.variant_model(net, bad)


def test_the_black_box_attacks_none_of_its_seed_digits() -> None:
    seed, attacked = G.blackbox_digits(G.Params(n_seed=150, n_bb=9850))
    assert len(seed) == 150 and len(attacked) == 9850
    assert not set(seed.tolist()) & set(attacked.tolist())


def test_flippable_counts_the_pixels_within_eps_of_a_threshold() -> None:
    x = torch.tensor([[0.0, 0.3, 0.45, 0.55, 1.0]]).reshape(1, 1, 5)
    assert math.isclose(float(G.flippable(x, 2, 0.1)), 2 / 5)  # 0.45 up, 0.55 down
    # 0 + 0.5 rounds up, 1 - 0.5 rounds up too: the ink cannot be erased at 0.5
    assert math.isclose(float(G.flippable(x, 2, 0.5)), 4 / 5)
    assert float(G.flippable(x, 2, 0.0)) == 0.0


def test_input_gradient_is_zero_through_the_step_only() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    assert torch.equal(G.input_gradient(G.variant_model(net, "masked2"), x, y), torch.zeros_like(x))
    assert G.input_gradient(G.variant_model(net, "bpda2"), x, y).abs().sum() > 0


def test_the_oracle_answers_labels_only() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x = torch.rand(5, 1, 28, 28)
    labels = G.oracle_labels(net, x, batch=2)
    assert labels.dtype == torch.int64 and torch.equal(labels, net(x).argmax(1))


def _result(**over: Any) -> G.Result:
    p = G.Params()
    V, n_o, E, R = len(p.variants()), len(p.oracles()), len(p.eps_values), p.rounds
    eps_curve = np.linspace(0.1, 0.9, E)
    # variants: plain, masked2, bpda2, masked4, bpda4
    fgsm = np.stack([eps_curve, np.full(E, 0.02), eps_curve * 0.5, np.full(E, 0.02), eps_curve])
    fields: dict[str, Any] = {
        "params": p.as_dict(),
        "test_error": np.array([0.01, 0.015, 0.012]),
        "fgsm_error": fgsm,
        "zero_grad": np.array([0.0, 1.0, 0.0, 1.0, 0.0]),
        "flippable": np.full((2, E), 0.1),
        "jsma_success": np.array([0.9, 0.0, 0.88, 0.0, 0.9]),
        "jsma_distortion": np.array([0.03, math.nan, 0.04, math.nan, 0.03]),
        "lbfgs_success": np.array([[1, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1]], bool),
        "lbfgs_l2": np.array([[1.0, 2.0, 3.0], [np.nan] * 3, [1.0, 2.0, np.nan], [np.nan] * 3, [1, 1, 1]]),
        "bb_queries": np.tile(150 * 2 ** np.arange(R), (n_o, 1)),
        "bb_sub_accuracy": np.full((n_o, R), 0.8),
        "bb_fgsm_error": np.tile(np.linspace(0.2, 0.7, R), (n_o, 1)),
        "bb_curve": np.tile(eps_curve, (n_o, 1)),
        "bb_clean_error": np.array([0.01, 0.02, 0.02]),
        "bb_jsma_target": np.array([0.3, 0.2, 0.25]),
        "bb_jsma_wrong": np.array([0.6, 0.5, 0.55]),
        "bb_jsma_sub": np.array([1.0, 1.0, 1.0]),
        "eval_wrong": np.zeros((p.n_eval, V, E), bool),
    }
    return G.Result(**(fields | over))


def test_glue_reads_the_result_at_eps_and_at_the_last_round() -> None:
    g = G.glue_values(_result())
    j = G.Params().eps_values.index(0.25)
    assert g["fgsm_error_plain"] == pytest.approx(np.linspace(0.1, 0.9, 7)[j])
    assert g["fgsm_error_masked2"] == 0.02 and g["zero_grad_masked2"] == 1.0
    assert g["lbfgs_success_bpda2"] == pytest.approx(2 / 3) and g["lbfgs_l2_bpda2"] == 1.5
    assert math.isnan(g["lbfgs_l2_masked2"])
    assert g["bb_queries_plain"] == 150 * 2**5 and g["queries_first"] == 150
    assert g["bb_fgsm_error_plain"] == pytest.approx(0.7) and g["bb_fgsm_error_first_plain"] == 0.2
    assert g["paper_bb_error"] == papers.PAPERNOT_BLACKBOX["misclassified"]
    assert g["n_jsma_attacks"] == 27


def test_phrases_state_each_claim() -> None:
    g = G.glue_values(_result())
    assert g["stops_phrase2"].startswith("it stops every white-box attack")
    # binarised: FGSM and L-BFGS fall short of the undefended model's success
    assert (
        g["restores_phrase2"]
        == "it gives JSMA back its undefended success, not FGSM ("
        + (g["restores_phrase2"].split("not FGSM (", 1)[1])
    )
    assert "L-BFGS (67% against 100%)" in g["restores_phrase2"]
    assert g["restores_phrase4"].startswith("it gives every attack back its undefended success")
    assert g["kept_back_phrase"].startswith("what the step still holds back")
    # synthetic black box: FGSM 70% on every target, JSMA 60% undefended, 50% binarised
    assert g["blackbox_phrase2"] == (
        "the samples of FGSM at ε = 0.3 fool the binarised LeNet as often as the undefended one "
        "(70.0% against 70.0%); the samples of JSMA do not fool the binarised LeNet as often as "
        "the undefended one (50.0% against 60.0%)"
    )
    assert "the 4-level LeNet" in g["blackbox_phrase4"]
    assert (
        g["rounds_phrase"] == "it grows with the queries, from 20.0% after 150 queries to 70.0% after 4,800"
    )
    # L-BFGS is 1/3 short on the binarised model: not restored
    assert g["verdict_phrase"].startswith("The report's claim holds only in part")
    assert "did not restore" in g["verdict_phrase"] and "black-box" not in g["verdict_phrase"]


def test_stops_restores_and_verdict_phrases() -> None:
    plain = {"FGSM": 0.9, "JSMA": 0.9}
    assert G.stops_phrase({"FGSM": 0.6, "JSMA": 0.5}, plain).startswith("it stops none of them")
    assert G.stops_phrase({"FGSM": 0.01, "JSMA": 0.5}, plain) == (
        "it stops FGSM, but not JSMA (50% against 90% undefended)"
    )
    assert G.restores_phrase({"FGSM": 0.1, "JSMA": 0.2}, plain).startswith("it gives none of them back")
    assert G.restores_phrase({"FGSM": 0.9, "JSMA": 0.88}, plain) == (
        "it gives every attack back its undefended success (FGSM and JSMA)"
    )
    assert G.stops_phrase({"FGSM": 0, "JSMA": 0, "L": 0}, plain | {"L": 1}).endswith("(FGSM, JSMA and L)")
    assert G.kept_back_phrase({"FGSM": 0.9}, {"FGSM": 0.9}) == "the step hid the gradient and removed nothing"
    assert G.transfers({"a": 0.1, "b": 0.5}, {"a": 0.6, "b": 0.52}) and not G.transfers(
        {"a": 0.1}, {"a": 0.6}
    )
    assert G.rounds_phrase(0.6, 0.58, 150, 300).startswith("it barely moves")
    assert G.rounds_phrase(0.7, 0.5, 150, 300).startswith("it falls")
    assert G.verdict_phrase(True, True, True).startswith("The report's claim holds from both sides")
    assert G.verdict_phrase(False, True, False).count(";") == 1


def test_headline_and_fidelity() -> None:
    r = _result()
    h = G.headline(r)
    assert h.rows[0][2] == "0% → 88% (undefended 90%)"
    assert h.rows[1][1].startswith("84.24% misclassified after 6,400 queries")
    gaps = G.fidelity(r)
    assert len(gaps) == 1 and gaps[0].paper == 0.8424 and gaps[0].ours == pytest.approx(0.7)


def test_views_show_every_variant() -> None:
    r = _result()
    frame = G.summary_frame(r)
    assert len(frame) == 5 and frame["JSMA success"].iloc[2] == 0.88
    G.summary_table(r).to_html()
    import matplotlib.pyplot as plt

    for fig in (G.queries_figure(r), G.eps_figure(r)):
        assert fig.axes
        plt.close(fig)
