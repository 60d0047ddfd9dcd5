"""The study's fidelity rule (experiments.common): gaps to the papers' numbers, the experiments
that test a cause, and their verdicts."""

from __future__ import annotations

import math

import pytest

from advsamples.experiments.common import (
    DISTORTION_TOLERANCE,
    RATE_TOLERANCE,
    Gap,
    explained_phrase,
    fidelity_frame,
    fidelity_table,
    fidelity_values,
    gap_size,
    known,
)


def test_the_rule_is_two_points_for_rates_and_ten_percent_for_distortions() -> None:
    assert (RATE_TOLERANCE, DISTORTION_TOLERANCE) == (0.02, 0.10)
    assert gap_size(0.93, 0.647, "rate") == pytest.approx(0.283)
    assert gap_size(0.031, 0.058, "distortion") == pytest.approx(0.027 / 0.058)


def test_explained_phrase_has_three_verdicts_in_points() -> None:
    assert explained_phrase(0.66, 0.93, 0.647) == (
        "this reading accounts for the whole gap of 28.3 points, within 2 points"
    )
    assert explained_phrase(0.75, 0.93, 0.647) == (
        "this reading accounts for most of the gap: 10.3 of its 28.3 points are left"
    )
    assert explained_phrase(0.92, 0.93, 0.647) == (
        "this reading does not account for the gap: 27.3 of its 28.3 points are left"
    )


def test_explained_phrase_is_relative_for_distortions() -> None:
    # 0.135 is 3.6% from 0.14: within 10%; 0.155 is 11% away
    assert explained_phrase(0.135, 0.155, 0.14, "distortion") == (
        "this reading accounts for the whole gap of 11%, within 10%"
    )
    assert explained_phrase(0.033, 0.031, 0.058, "distortion").startswith(
        "this reading does not account for the gap: 43% of its 47%"
    )


@pytest.mark.parametrize(
    ("ours", "reading", "verdict"),
    [
        (0.655, None, "within the study's tolerance"),
        (0.935, None, "unexplained"),
        (0.935, 0.66, "explained"),
        (0.935, 0.70, "mostly explained"),
        (0.935, 0.90, "unexplained"),
    ],
)
def test_a_gaps_verdict(ours: float, reading: float | None, verdict: str) -> None:
    g = Gap("θ = −1 success", "rate", 0.647, ours, reading, "the literal search domain" if reading else "")
    assert g.verdict == verdict
    assert g.over == (verdict != "within the study's tolerance")


def test_a_gaps_phrase_says_what_the_experiment_gives() -> None:
    g = Gap("FC10(1) distortion", "distortion", 0.14, 0.155, 0.135, "λ = 0.5", fmt=".3f")
    assert g.phrase() == (
        "FC10(1) distortion: ours 0.155, the paper's 0.140, 11% apart; λ = 0.5 gives 0.135: "
        "this reading accounts for the whole gap of 11%, within 10%."
    )
    bare = Gap("FC100 distortion", "distortion", 0.058, 0.031, note="not the search's length")
    assert bare.phrase() == (
        "FC100 distortion: ours 3.1%, the paper's 5.8%, 47% apart; the gap is unexplained "
        "(not the search's length)."
    )
    assert Gap("a rate", "rate", 0.5, 0.51).phrase().endswith("within the study's tolerance (2 points).")


def test_bad_gaps_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Gap("x", "speed", 1.0, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reading needs its experiment"):
        Gap("x", "rate", 0.5, 0.6, reading=0.5)
    with pytest.raises(ValueError, match="reading needs its experiment"):
        Gap("x", "rate", 0.5, 0.6, experiment="something")
    with pytest.raises(ValueError, match="finite"):
        Gap("x", "rate", 0.5, math.nan)
    with pytest.raises(ValueError, match="positive"):
        Gap("x", "distortion", 0.0, 0.1)


def test_fidelity_frame_has_one_row_per_gap() -> None:
    gaps = [Gap("a", "rate", 0.5, 0.6, 0.51, "e"), Gap("b", "distortion", 0.1, 0.2)]
    f = fidelity_frame(gaps)
    assert list(f.index) == ["a", "b"]
    assert list(f["verdict"]) == ["explained", "unexplained"]
    assert list(f["gap"]) == ["10.0 points", "100%"]
    with pytest.raises(ValueError, match="at least one"):
        fidelity_frame([])


def test_maybe_leaves_out_what_a_profile_did_not_run() -> None:
    assert Gap.maybe("x", "rate", 0.5, math.nan) is None
    g = Gap.maybe("x", "rate", 0.5, 0.6, math.nan, "an experiment")
    assert g is not None and g.reading is None and g.experiment == ""
    assert known(None, g, None) == [g]


def test_fidelity_values_count_the_verdicts() -> None:
    gaps = [
        Gap("a", "rate", 0.5, 0.6, 0.51, "e"),
        Gap("b", "distortion", 0.1, 0.2),
        Gap("c", "rate", 0.5, 0.51),
    ]
    v = fidelity_values(gaps)
    assert (
        v["fidelity_rule"]
        == "a rate more than 2 points from the paper's, or a distortion more than 10% from it"
    )
    assert (v["fidelity_n"], v["fidelity_over"]) == (3, 2)
    assert v["fidelity_summary"] == "2 of the 3 comparisons are over the rule: 1 explained, 1 unexplained"
    assert fidelity_values(gaps[2:])["fidelity_summary"] == "the one comparison is within the rule"
    assert fidelity_values(gaps[1:])["fidelity_summary"] == (
        "1 of the 2 comparisons is over the rule: 1 unexplained"
    )


def test_fidelity_table_shows_every_text_in_full() -> None:
    long = "a note longer than pandas' fifty-character column limit, which must not be cut off"
    html = fidelity_table([Gap("a", "rate", 0.5, 0.6, note=long)]).to_html()
    assert long.replace("'", "&#39;") in html or long in html
