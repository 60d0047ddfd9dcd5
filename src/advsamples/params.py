"""Notebook parameter checks: a bad value stops a chapter at once, naming the parameter.

Every chapter's second cell validates its ``parameters`` cell with these functions, so that
``papermill … -p eps -0.1`` fails with ``ValueError: parameter eps=-0.1 must be >= 0`` instead of
producing a silently meaningless chapter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "check_bool",
    "check_choice",
    "check_choices",
    "check_count",
    "check_int",
    "check_number",
    "check_numbers",
]


def _fail(name: str, value: Any, rule: str) -> ValueError:
    return ValueError(f"parameter {name}={value!r} {rule}")


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (never a number standing for one)."""
    if not isinstance(value, bool):
        raise _fail(name, value, "must be true or false")
    return value


def _same_kind(a: Any, b: Any) -> bool:
    """Equal and of the same kind: ``1 == True`` in Python, not here."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` if it is one of ``allowed`` (a boolean never stands for a number or the reverse)."""
    options = list(allowed)
    if not any(_same_kind(value, o) for o in options):
        raise _fail(name, value, f"is not allowed; choose one of {options}")
    return value


def check_choices(name: str, values: Any, allowed: Iterable[Any], *, min_len: int = 1) -> list[Any]:
    """``values`` as a list if it holds at least ``min_len`` distinct items of ``allowed``."""
    options = list(allowed)
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise _fail(name, values, f"must be a list drawn from {options}")
    bad = [v for v in values if not any(_same_kind(v, o) for o in options)]
    if bad:
        raise _fail(name, values, f"has unknown item(s) {bad}; allowed: {options}")
    _no_duplicates(name, values)
    if len(values) < min_len:
        raise _fail(name, values, f"must list at least {min_len} item(s)")
    return list(values)


def _no_duplicates(name: str, values: Sequence[Any]) -> None:
    seen: list[Any] = []
    dup = [v for v in values if v in seen or seen.append(v)]  # type: ignore[func-returns-value]
    if dup:
        raise _fail(name, values, f"has duplicate item(s) {dup}; list each once")


def check_number(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> Any:
    """``value`` if it is a finite number (an ``int`` when ``integer``) inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, value, "must be a number")
    if integer and not isinstance(value, int):
        raise _fail(name, value, "must be an integer")
    if not math.isfinite(value):
        raise _fail(name, value, "must be finite")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise _fail(name, value, f"must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise _fail(name, value, f"must be {'<' if hi_open else '<='} {hi}")
    return value


def check_numbers(
    name: str, values: Any, *, increasing: bool = False, max_len: int | None = None, **bounds: Any
) -> list[Any]:
    """``values`` as a non-empty list, each item checked by :func:`check_number`; with
    ``increasing``, without duplicates and in increasing order; at most ``max_len`` items."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise _fail(name, values, "must be a non-empty list of numbers")
    if max_len is not None and len(values) > max_len:
        raise _fail(name, values, f"must list at most {max_len} numbers")
    for i, v in enumerate(values):
        check_number(f"{name}[{i}]", v, **bounds)
    if increasing:
        _no_duplicates(name, values)
        if sorted(values) != list(values):
            raise _fail(name, values, "must be in increasing order")
    return list(values)


def check_int(name: str, value: Any, lo: int, hi: int, why: str = "") -> int:
    """``value`` if it is an integer (not a boolean) in ``[lo, hi]``; ``why`` says where ``hi``
    comes from (it keeps the run finite), and the message states it."""
    check_number(name, value, integer=True)
    if not lo <= value <= hi:
        reason = f" ({why})" if why else ""
        raise _fail(name, value, f"must be an integer between {lo} and {hi}{reason}")
    return int(value)


def check_count(name: str, value: Any, available: int, what: str = "samples") -> int:
    """``value`` if it is an integer in [1, available] (``available`` is how many ``what`` exist)."""
    check_number(name, value, integer=True)
    if not 1 <= value <= available:
        raise _fail(name, value, f"must be between 1 and {available}, the number of {what} available")
    return int(value)
