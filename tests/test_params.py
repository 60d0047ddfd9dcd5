"""Notebook parameter checks name the parameter and what is allowed."""

from __future__ import annotations

import math

import pytest

from advsamples import params as P


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: P.check_number("eps", -0.1, lo=0), r"parameter eps=-0\.1 must be >= 0", id="negative"
        ),
        pytest.param(
            lambda: P.check_number("eps", math.nan, lo=0), "parameter eps=nan must be finite", id="nan"
        ),
        pytest.param(lambda: P.check_number("eps", "0.1"), "must be a number", id="string"),
        pytest.param(lambda: P.check_number("eps", True), "must be a number", id="bool"),
        pytest.param(lambda: P.check_number("n", 2.5, integer=True), "must be an integer", id="not-int"),
        pytest.param(lambda: P.check_number("gamma", 0, lo=0, lo_open=True), "must be > 0", id="open-lo"),
        pytest.param(lambda: P.check_number("gamma", 1.5, hi=1), "must be <= 1", id="hi"),
        pytest.param(
            lambda: P.check_choice("model", "vgg", ["a", "b"]),
            r"model='vgg' is not allowed; choose one of \['a', 'b'\]",
            id="choice",
        ),
        pytest.param(
            lambda: P.check_choices("models", ["a", "z"], ["a", "b"]),
            r"unknown item\(s\) \['z'\]",
            id="choices",
        ),
        pytest.param(lambda: P.check_choices("models", "a", ["a"]), "must be a list", id="choices-string"),
        pytest.param(
            lambda: P.check_choices("models", ["a", "a"], ["a"]),
            r"duplicate item\(s\) \['a'\]",
            id="choices-dup",
        ),
        pytest.param(
            lambda: P.check_numbers("wd", [0.1, 0.1], increasing=True), "duplicate", id="numbers-dup"
        ),
        pytest.param(
            lambda: P.check_numbers("e", [0.2, 0.1], increasing=True), "increasing order", id="numbers-order"
        ),
        pytest.param(lambda: P.check_numbers("e", [1, 2, 3], max_len=2), "at most 2", id="numbers-long"),
        pytest.param(lambda: P.check_bool("use_logits", 1), "must be true or false", id="bool-from-int"),
        pytest.param(lambda: P.check_choice("source", True, [0, 1, 2]), "not allowed", id="bool-as-choice"),
        pytest.param(
            lambda: P.check_choice("flag", 1, [True, False]), "not allowed", id="int-as-bool-choice"
        ),
        pytest.param(lambda: P.check_choices("t", [True], [0, 1]), "unknown item", id="bool-in-choices"),
        pytest.param(
            lambda: P.check_int("max_iter", 10**9, 1, 10_000, "keeps the run finite"),
            r"between 1 and 10000 \(keeps the run finite\)",
            id="int-bound",
        ),
        pytest.param(lambda: P.check_int("seed", 1e30, 0, 2**31 - 1), "must be an integer", id="int-float"),
        pytest.param(lambda: P.check_int("seed", False, 0, 9), "must be a number", id="int-bool"),
        pytest.param(lambda: P.check_choices("models", [], ["a"]), "at least 1", id="choices-empty"),
        pytest.param(lambda: P.check_numbers("eps", [], lo=0), "non-empty list", id="numbers-empty"),
        pytest.param(
            lambda: P.check_numbers("eps", [0.1, -1], lo=0),
            r"parameter eps\[1\]=-1 must be >= 0",
            id="numbers-item",
        ),
        pytest.param(
            lambda: P.check_count("n_samples", 20000, 10000),
            "between 1 and 10000, the number of samples available",
            id="too-many",
        ),
        pytest.param(lambda: P.check_count("n_samples", 0, 10), "between 1 and 10", id="zero"),
    ],
)
def test_bad_values_are_rejected(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_good_values_pass_through() -> None:
    assert P.check_number("eps", 0.25, lo=0, hi=1) == 0.25
    assert P.check_choices("m", ("a",), ["a", "b"]) == ["a"]
    assert P.check_numbers("e", [0, 0.1], lo=0) == [0, 0.1]
    assert P.check_count("n", 10, 10) == 10
    assert P.check_bool("b", False) is False
    assert P.check_int("n", 3, 1, 3) == 3
    assert P.check_numbers("e", [0.1, 0.2], increasing=True) == [0.1, 0.2]
    assert P.check_choice("c", 1, [0, 1]) == 1
