"""The adversarial-training chapter: parameters, the JSMA training set, glue, phrases, views."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from advsamples import models as M
from advsamples.experiments import advtrain as A
from advsamples.experiments.jsma_runs import Crafted, Summary


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_params_from_every_profile(profile: str) -> None:
    p = A.Params.from_profile(profile)
    assert p.epochs() == M.SCHEDULES[p.schedule]["lenet_paper_fgsm"]


def test_paper_profile_is_the_papers_scale() -> None:
    p = A.Params.from_profile("paper")
    assert (p.n_augment * 9, p.alpha, p.eps) == (18000, 0.5, 0.25)  # Papernot's 18,000; Goodfellow's α, ε
    assert p.epochs() == 50 and p.pgd_steps == 40


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"eps": 0.0}, "eps"),
        ({"eps": 0.12}, r"eps_values=.* must include eps=0.12"),
        ({"n_eval": 0}, "n_eval"),
        ({"n_eval": 10001}, "n_eval"),
        ({"pgd_steps": 0}, "pgd_steps"),
        ({"n_augment": 50001}, "n_augment"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        A.Params(**overrides)


def test_augmentation_key_follows_its_recipe() -> None:
    p = A.Params()
    key = A.augmentation_key(p, "abc")
    assert key.startswith("jsma-") and key == A.augmentation_key(A.Params(), "abc")
    assert key != A.augmentation_key(p, "abd")  # another model
    assert key != A.augmentation_key(A.Params(n_augment=201), "abc")
    assert key != A.augmentation_key(A.Params(seed=1), "abc")
    assert key == A.augmentation_key(A.Params(n_eval=5), "abc")  # evaluation settings do not enter


def test_augmentation_labels_each_sample_with_its_digits_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSMA training set is every crafted sample (failures too), labelled with its source
    digit's class, crafted with the paper's settings and cached without its images."""
    seen: dict[str, Any] = {}
    x_adv = torch.rand(18, 1, 28, 28)

    def fake_craft(model: Any, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, **kw: Any) -> Crafted:
        seen.update(kw, n=len(x), labels=y.clone())
        source = y.repeat_interleave(9)
        zeros = torch.zeros(18)
        return Crafted(
            idx.repeat_interleave(9), source, (source + 1) % 10, zeros.bool(), zeros.long(), zeros,
            0.145, 56, 784, 1.0, True, x_adv,
        )  # fmt: skip

    monkeypatch.setattr(A, "craft", fake_craft)
    monkeypatch.setattr(A.M, "model_info", lambda *a, **k: type("I", (), {"key": "k"})())
    xs, ys = A.augmentation(A.Params(n_augment=2), torch.nn.Identity())
    assert seen["n"] == 2 and seen["keep_adv"] and seen["store_adv"] is False
    assert (seen["theta"], seen["gamma"], seen["use_logits"]) == (1.0, 0.145, True)
    assert xs is x_adv and torch.equal(ys, seen["labels"].repeat_interleave(9))


# --------------------------------------------------------------------------- phrases
def test_relative_change_and_its_words() -> None:
    assert A.relative_change(0.8, 0.6) == pytest.approx(-0.25)
    assert math.isnan(A.relative_change(0.0, 0.5))
    assert A.change_phrase(-0.25) == "25.0% lower"
    assert A.change_phrase(0.375) == "37.5% higher"
    assert A.change_phrase(0.0) == "unchanged"


def test_holds_phrase_has_four_verdicts() -> None:
    assert A.holds_phrase(0.179, 0.894) == "holds: the error falls from 89.4% to 17.9%"
    assert A.holds_phrase(0.6, 0.894) == "helps only partly: the error falls from 89.4% to 60.0%"
    assert A.holds_phrase(0.88, 0.894) == "makes little difference: the error goes from 89.4% to 88.0%"
    assert A.holds_phrase(0.96, 0.894) == "does not hold: the error rises from 89.4% to 96.0%"


def test_cross_norm_and_shortcut_phrases() -> None:
    assert (
        A.cross_norm_phrase(-0.05) == "a defence trained inside an L∞ ball does little against an L0 attacker"
    )
    assert A.cross_norm_phrase(-0.2) == "training inside an L∞ ball also makes the L0 attack harder"
    assert A.cross_norm_phrase(0.2) == "training inside an L∞ ball also makes the L0 attack easier"
    assert A.shortcut_phrase(0.43, 0.65).startswith("much of what FGSM training buys")
    assert A.shortcut_phrase(0.43, 0.48).startswith("the iterated attack gains little")


# --------------------------------------------------------------------------- a synthetic result
def _summary(success: float, dist: float) -> dict[str, Any]:
    return asdict(Summary(success, dist + 0.01, dist, 0.0, 0.0, 180, 20))


#: The synthetic FGSM error curves: (error at ε = 0, at the last ε) per model.
_RANGES = ((0.02, 0.95), (0.03, 0.3), (0.025, 0.9))


def _result() -> A.Result:
    eps = A.Params().eps_values
    return A.Result(
        params=A.Params().as_dict(),
        epochs=3,
        n_augmented=1800,
        augment_success=0.9,
        test_error=np.array([0.02, 0.03, 0.025]),
        fgsm_error=np.array([np.linspace(lo, hi, len(eps)) for lo, hi in _RANGES]),
        fgsm_confidence=np.full((3, len(eps)), 0.8),
        pgd_error=np.array([0.99, 0.85, 0.97]),
        jsma={"clean": _summary(0.96, 0.04), "fgsm": _summary(0.90, 0.05), "jsma": _summary(0.8, 0.055)},
        train_seconds=np.array([60.0, 120.0, 70.0]),
        eval_wrong=np.zeros((3, 4, len(eps)), dtype=bool),
        eval_conf=np.full((3, 4, len(eps)), 0.9, dtype=np.float32),
        eval_pgd_wrong=np.ones((3, 4), dtype=bool),
    )


def test_glue_values_pin_the_arithmetic() -> None:
    g = A.glue_values(_result())
    j = A.Params().eps_values.index(0.25)
    assert g["fgsm_error_clean"] == pytest.approx(np.linspace(0.02, 0.95, 7)[j])
    assert g["pgd_step"] == pytest.approx(2.5 * 0.25 / 10)
    assert g["n_jsma_attacks"] == 180
    assert g["jsma_success_change"] == pytest.approx(0.8 / 0.96 - 1)
    assert g["jsma_success_change_points"] == pytest.approx(0.8 - 0.96)
    assert g["jsma_distortion_change"] == pytest.approx(0.055 / 0.04 - 1)
    assert g["jsma_distortion_change_phrase"] == "37.5% higher"
    assert g["fgsm_holds"].startswith("holds: the error falls from")
    assert g["pgd_holds"] == "helps only partly: the error falls from 99.0% to 85.0%"
    assert g["jsma_training_verdict"] == "makes JSMA harder"  # 0.8 < 0.96
    assert g["shortcut_phrase"].startswith("much of what")  # PGD 0.85 against FGSM's 0.21
    assert g["pgd_gap_fgsm_model"] == pytest.approx(0.85 - g["fgsm_error_fgsm"])
    assert g["clean_error_change_fgsm"] == pytest.approx(0.01)
    assert (g["paper_adv_error_before"], g["paper_adv_error_after"]) == (0.894, 0.179)
    assert (g["paper_success_change"], g["paper_distortion_change"]) == (-0.072, 0.375)


def test_headline_sets_the_papers_before_and_after_beside_ours() -> None:
    r = _result()
    g, h = A.glue_values(r), A.headline(r)
    assert h.rows[0][1] == "89.4% → 17.9% (maxout network)"
    assert h.rows[0][2] == f"{g['fgsm_error_clean']:.1%} → {g['fgsm_error_fgsm']:.1%} (LeNet)"
    assert h.rows[1][1:] == ("-7.2%", "-16.7% (96.0% → 80.0%)")
    assert h.rows[2][1] == "+37.5%"
    assert "18,000 JSMA samples" in h.paper_scale and "1,800 JSMA training samples" in h.our_scale


def test_result_round_trip_and_views(tmp_path: Path) -> None:
    r = _result()
    r.save(tmp_path / "r")
    back = A.Result.load(tmp_path / "r")
    assert A.glue_values(back) == A.glue_values(r)
    assert list(A.summary_table(r).data.index) == ["plain training", "FGSM training", "JSMA training"]
    assert A.fgsm_curve_figure(r) is not None and A.attacks_figure(r) is not None


def test_fidelity_compares_before_and_after_and_names_what_differs() -> None:
    r = _result()
    g = A.glue_values(r)
    gaps = {x.quantity: x for x in A.fidelity(r)}
    assert len(gaps) == 4
    after = gaps["FGSM error at ε = 0.25, FGSM training"]
    assert (after.paper, after.ours) == (0.179, g["fgsm_error_fgsm"])
    assert "maxout" in after.note and after.reading is None
    change = gaps["JSMA success, relative change after JSMA training"]
    assert (change.paper, change.ours) == (-0.072, g["jsma_success_change"])
