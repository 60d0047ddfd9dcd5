r"""What several chapters share: seeded sample draws, batched prediction, and sampling statistics.

- draws: :func:`sample_indices`, :func:`correct_per_class`, :func:`correct_indices`,
  :func:`random_targets`, :func:`other_targets` (each takes a ``seed`` and its own
  :class:`torch.Generator`, so a rerun draws the same samples);
- prediction: :func:`predict` (labels and confidences, batched), :func:`error_rate`;
- statistics: :func:`rate_interval` (Wilson), :func:`mean_interval`, :func:`relation` (the phrase
  that places a paper's number against our interval), :func:`extreme_pairs` (of a source × target
  matrix);
- the L-BFGS c search's parameters, as the chapters that run it hold them: :func:`check_search`
  and :func:`search_settings`;
- fidelity to the papers: :class:`Gap` (one of our numbers beside the paper's, with the experiment
  that tests a candidate cause of the difference), :func:`explained_phrase` and :func:`fidelity_frame`,
  under the study's rule (:data:`RATE_TOLERANCE`, :data:`DISTORTION_TOLERANCE`).

No chapter module imports another; what two of them need lives here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch
from pandas.io.formats.style import Styler
from torch import nn

__all__ = [
    "CLASSES",
    "DISTORTION_TOLERANCE",
    "Gap",
    "RATE_TOLERANCE",
    "explained_phrase",
    "fidelity_frame",
    "fidelity_table",
    "fidelity_values",
    "gap_size",
    "known",
    "SEARCH_FIELDS",
    "SearchParams",
    "check_search",
    "search_settings",
    "correct_indices",
    "correct_per_class",
    "error_rate",
    "extreme_pairs",
    "mean_interval",
    "other_targets",
    "predict",
    "random_targets",
    "rate_interval",
    "relation",
    "sample_indices",
]

#: Number of classes of MNIST.
CLASSES = 10
_BATCH = 2000
_PREDICT_BATCH = 1000


# --------------------------------------------------------------------------- draws
def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    return value


def sample_indices(n_total: int, n: int, seed: int) -> torch.Tensor:
    """``min(n, n_total)`` distinct indices of ``range(n_total)``, drawn with ``seed``, sorted.

    Raises:
        ValueError: if ``n`` or ``n_total`` is not a positive integer.
    """
    n_total = _check_positive_int("n_total", n_total)
    n = _check_positive_int("n", n)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(n, n_total)].sort().values


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels and their softmax probabilities."""
    p = torch.cat([model(x[i : i + _PREDICT_BATCH]).softmax(1) for i in range(0, len(x), _PREDICT_BATCH)])
    conf, pred = p.max(1)
    return pred, conf


def correct_per_class(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_per_class: int, seed: int, classes: int = 10
) -> torch.Tensor:
    """Indices shaped ``(classes, n_per_class)``: for each class, ``n_per_class`` of its samples
    that ``model`` classifies correctly, drawn in a seeded random order.

    Raises:
        ValueError: if a class has fewer than ``n_per_class`` correctly classified samples.
    """
    n_per_class = _check_positive_int("n_per_class", n_per_class)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for c in range(classes):
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        kept: list[torch.Tensor] = []
        found = 0
        for i in range(0, len(members), 2 * n_per_class):
            chunk = members[i : i + 2 * n_per_class]
            ok = chunk[predict(model, x[chunk])[0] == c]
            kept.append(ok)
            found += len(ok)
            if found >= n_per_class:
                break
        if found < n_per_class:
            raise ValueError(
                f"n_per_class={n_per_class} but class {c} has only {found} correctly classified samples"
            )
        rows.append(torch.cat(kept)[:n_per_class])
    return torch.stack(rows)


@torch.no_grad()
def correct_indices(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The first ``n`` indices of a seeded permutation of ``range(len(x))`` that ``model``
    classifies correctly, in that (random) order.

    Raises:
        ValueError: if ``n < 1`` or fewer than ``n`` samples are classified correctly.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got n={n!r}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    kept: list[torch.Tensor] = []
    found = 0
    for i in range(0, len(order), max(2 * n, 64)):
        chunk = order[i : i + max(2 * n, 64)]
        ok = chunk[model(x[chunk]).argmax(1) == y[chunk]]
        kept.append(ok)
        found += len(ok)
        if found >= n:
            break
    if found < n:
        raise ValueError(f"n={n} but the model classifies only {found} of the {len(x)} samples correctly")
    return torch.cat(kept)[:n]


def random_targets(y: torch.Tensor, seed: int, classes: int = 10) -> torch.Tensor:
    """One target per label, uniform over the ``classes - 1`` classes other than the label.

    Raises:
        ValueError: for labels outside ``[0, classes)`` or fewer than two classes.
    """
    if classes < 2:
        raise ValueError(f"classes must be >= 2, got classes={classes!r}")
    y = torch.as_tensor(y).long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise ValueError(f"labels must lie in [0, {classes})")
    g = torch.Generator().manual_seed(seed)
    return (y + torch.randint(1, classes, y.shape, generator=g)) % classes


def other_targets(y: torch.Tensor, classes: int = CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """Row ``i`` of the batch repeated toward each class but ``y[i]``: ``(rows, targets)``, each
    ``(N * (classes - 1),)``, targets in increasing order for every sample."""
    n = len(y)
    rows = torch.arange(n).repeat_interleave(classes - 1)
    offs = torch.arange(1, classes).repeat(n)
    targets = (y.long()[rows] + offs) % classes
    # increasing order within each sample's block
    targets = targets.reshape(n, classes - 1).sort(dim=1).values.reshape(-1)
    return rows, targets


# --------------------------------------------------------------------------- prediction
@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``(x, y)`` that ``model`` misclassifies."""
    wrong = 0
    for i in range(0, len(x), _BATCH):
        wrong += int((model(x[i : i + _BATCH]).argmax(1) != y[i : i + _BATCH]).sum())
    return wrong / len(x)


# --------------------------------------------------------------------------- statistics
def rate_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % by default) of a rate of ``k`` successes in ``n`` trials."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its normal-approximation 95 % interval (NaN if empty)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    half = z * float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else 0.0
    return mean, mean - half, mean + half


def relation(paper: float, low: float, high: float) -> str:
    """Where the paper's value lies relative to our interval ``[low, high]``, as a phrase:
    ``"above the paper's"`` (ours is higher), ``"below the paper's"``, or
    ``"within sampling error of the paper's"``."""
    if low > paper:
        return "above the paper's"
    if high < paper:
        return "below the paper's"
    return "within sampling error of the paper's"


def extreme_pairs(matrix: np.ndarray, which: str = "max", limit: int = 4) -> tuple[float, str]:
    """The largest (``which="max"``) or smallest (``"min"``) off-diagonal value of a success
    matrix and the (source → target) pairs that reach it, as text such as ``"1 → 2, 1 → 8"``
    (at most ``limit`` pairs named, then how many more)."""
    if which not in ("max", "min"):
        raise ValueError(f"which must be 'max' or 'min', got which={which!r}")
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or np.isnan(m).all():
        raise ValueError(f"matrix must be 2-D with at least one value, got shape {m.shape}")
    value = float(np.nanmax(m) if which == "max" else np.nanmin(m))
    pairs = [f"{s} → {t}" for s, t in zip(*np.nonzero(m == value), strict=True)]
    text = ", ".join(pairs[:limit]) + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")
    return value, text


# --------------------------------------------------------------------------- the L-BFGS search
#: The c search's parameters (the fields of a chapter's ``Params`` that hold them).
SEARCH_FIELDS = ("c_init", "search_steps", "bracket_steps", "max_iter")


class SearchParams(Protocol):
    """A chapter's (frozen) ``Params`` that holds the L-BFGS c search's settings."""

    @property
    def c_init(self) -> float: ...
    @property
    def search_steps(self) -> int: ...
    @property
    def bracket_steps(self) -> int: ...
    @property
    def max_iter(self) -> int: ...


def check_search(params: SearchParams) -> None:
    """Validate a chapter's L-BFGS search parameters (``ValueError`` naming the bad one)."""
    from advsamples.params import check_int, check_number

    check_number("c_init", params.c_init, lo=0, lo_open=True, hi=1e10)
    check_int("search_steps", params.search_steps, 0, 60, "bisections past 60 are below float64 precision")
    check_int("bracket_steps", params.bracket_steps, 0, 60, "×10 moves past 60 leave any useful c")
    check_int("max_iter", params.max_iter, 1, 100_000, "L-BFGS-B iterations per optimisation")


def search_settings(params: SearchParams) -> dict[str, float | int]:
    """The c search's settings, as keyword arguments of :func:`advsamples.attacks.lbfgs.lbfgs_trace`."""
    return {name: getattr(params, name) for name in SEARCH_FIELDS}


# --------------------------------------------------------------------------- fidelity
#: The study's rule: a rate differs from the paper's when the two are more than 2 points apart ...
RATE_TOLERANCE = 0.02
#: ... and a distortion when it is more than 10% (relative) away from the paper's.
DISTORTION_TOLERANCE = 0.10

GapKind = Literal["rate", "distortion"]


def gap_size(ours: float, paper: float, kind: GapKind) -> float:
    """How far ``ours`` is from ``paper``: in points (absolute) for a rate, relative to the
    paper's value for a distortion. Raises ValueError for an unknown ``kind`` or a distortion
    whose paper value is not positive."""
    if kind == "rate":
        return abs(ours - paper)
    if kind == "distortion":
        if not paper > 0:
            raise ValueError(f"a distortion's paper value must be positive, got paper={paper!r}")
        return abs(ours - paper) / paper
    raise ValueError(f"kind must be 'rate' or 'distortion', got kind={kind!r}")


def _tolerance(kind: GapKind) -> float:
    return RATE_TOLERANCE if kind == "rate" else DISTORTION_TOLERANCE


def _worded(size: float, kind: GapKind, unit: bool = True) -> str:
    if kind == "distortion":
        return f"{size:.0%}"
    return f"{size * 100:.1f} points" if unit else f"{size * 100:.1f}"


def _tolerance_worded(kind: GapKind) -> str:
    return f"{RATE_TOLERANCE * 100:g} points" if kind == "rate" else f"{DISTORTION_TOLERANCE:.0%}"


def _accounts(reading: float, ours: float, paper: float, kind: GapKind) -> str:
    """How much of the gap between ``ours`` and ``paper`` an experiment's ``reading`` accounts
    for: ``"explained"`` (the reading is within the study's tolerance of the paper's),
    ``"mostly explained"`` (less than half the gap is left) or ``"unexplained"``."""
    left = gap_size(reading, paper, kind)
    if left <= _tolerance(kind):
        return "explained"
    return "mostly explained" if left < gap_size(ours, paper, kind) / 2 else "unexplained"


def explained_phrase(reading: float, ours: float, paper: float, kind: GapKind = "rate") -> str:
    """Whether an experiment that removes one candidate cause of a difference (its result
    ``reading``) accounts for the gap between ``ours`` and ``paper``: for all of it (the reading is
    within the study's tolerance of the paper's), for most of it (less than half the gap is
    left), or not. Gaps are worded in points for rates and relative for distortions.

    >>> explained_phrase(0.75, 0.93, 0.647)
    'this reading accounts for most of the gap: 10.3 of its 28.3 points are left'
    """
    gap, left = gap_size(ours, paper, kind), gap_size(reading, paper, kind)
    verdict = _accounts(reading, ours, paper, kind)
    if verdict == "explained":
        whole = _worded(gap, kind)
        return f"this reading accounts for the whole gap of {whole}, within {_tolerance_worded(kind)}"
    left_of = f"{_worded(left, kind, unit=False)} of its {_worded(gap, kind)} are left"
    if verdict == "mostly explained":
        return f"this reading accounts for most of the gap: {left_of}"
    return f"this reading does not account for the gap: {left_of}"


@dataclass(frozen=True)
class Gap:
    """One of our numbers beside the paper's, and the experiment that tests a cause of the
    difference.

    ``reading`` is what that experiment gives in place of ``ours`` (for example our attack run
    under the paper's other reading of its algorithm), ``experiment`` says in a few words what
    it changes; both are empty when no experiment the study can run isolates a cause, and
    ``note`` then says what was ruled out or why none can be run. ``fmt`` formats the values.

    Raises:
        ValueError: for an unknown ``kind``, a ``reading`` without an ``experiment`` (or the
            reverse), or a non-finite value.
    """

    quantity: str
    kind: GapKind
    paper: float
    ours: float
    reading: float | None = None
    experiment: str = ""
    note: str = ""
    fmt: str = ".1%"

    def __post_init__(self) -> None:
        if self.kind not in ("rate", "distortion"):
            raise ValueError(f"kind must be 'rate' or 'distortion', got kind={self.kind!r}")
        if (self.reading is None) != (not self.experiment):
            raise ValueError(
                f"{self.quantity}: a reading needs its experiment and an experiment its reading, got "
                f"reading={self.reading!r}, experiment={self.experiment!r}"
            )
        values = [self.paper, self.ours] + ([self.reading] if self.reading is not None else [])
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{self.quantity}: values must be finite, got {values!r}")
        gap_size(self.ours, self.paper, self.kind)  # validates a distortion's paper value

    @classmethod
    def maybe(
        cls,
        quantity: str,
        kind: GapKind,
        paper: float,
        ours: float,
        reading: float | None = None,
        experiment: str = "",
        note: str = "",
        fmt: str = ".1%",
    ) -> Gap | None:
        """The gap, or ``None`` when ``paper`` or ``ours`` is not a finite number (an experiment a
        profile does not run); a reading that is not finite is left out with its experiment."""
        if not (math.isfinite(paper) and math.isfinite(ours)):
            return None
        if reading is not None and not math.isfinite(reading):
            reading, experiment = None, ""
        return cls(quantity, kind, paper, ours, reading, experiment, note, fmt)

    @property
    def size(self) -> float:
        """The gap, in points (rate) or relative to the paper's value (distortion)."""
        return gap_size(self.ours, self.paper, self.kind)

    @property
    def over(self) -> bool:
        """Whether the gap is above the study's tolerance."""
        return self.size > _tolerance(self.kind)

    @property
    def verdict(self) -> str:
        """``"within the study's tolerance"``, ``"explained"``, ``"mostly explained"`` or
        ``"unexplained"``."""
        if not self.over:
            return "within the study's tolerance"
        if self.reading is None:
            return "unexplained"
        return _accounts(self.reading, self.ours, self.paper, self.kind)

    def phrase(self) -> str:
        """One sentence for the prose: the gap, and what the experiment (if any) says of it."""
        head = f"{self.quantity}: ours {self.ours:{self.fmt}}, the paper's {self.paper:{self.fmt}}"
        if not self.over:
            return f"{head}, within the study's tolerance ({_tolerance_worded(self.kind)})."
        out = f"{head}, {_worded(self.size, self.kind)} apart"
        if self.reading is not None:
            out += (
                f"; {self.experiment} gives {self.reading:{self.fmt}}: "
                f"{explained_phrase(self.reading, self.ours, self.paper, self.kind)}"
            )
        if self.verdict == "unexplained":
            out += "; the gap is unexplained"
        return out + (f" ({self.note})." if self.note else ".")


def known(*gaps: Gap | None) -> list[Gap]:
    """The gaps that are not ``None`` (see :meth:`Gap.maybe`), in order."""
    return [g for g in gaps if g is not None]


def fidelity_frame(gaps: Sequence[Gap]) -> pd.DataFrame:
    """One row per gap: the paper's number, ours, the gap, the experiment and its reading, the
    verdict, and the note (what was ruled out)."""
    if not gaps:
        raise ValueError("fidelity_frame needs at least one gap, got none")
    rows = []
    for g in gaps:
        rows.append(
            {
                "quantity": g.quantity,
                "paper": format(g.paper, g.fmt),
                "ours": format(g.ours, g.fmt),
                "gap": _worded(g.size, g.kind),
                "experiment": g.experiment or "—",
                "its reading": "—" if g.reading is None else format(g.reading, g.fmt),
                "verdict": g.verdict,
                "note": g.note or "—",
            }
        )
    return pd.DataFrame(rows).set_index("quantity")


def fidelity_table(gaps: Sequence[Gap]) -> Styler:
    """:func:`fidelity_frame` for the page: every text in full, left-aligned."""
    return fidelity_frame(gaps).style.set_properties(**{"text-align": "left"})


def fidelity_values(gaps: Sequence[Gap]) -> dict[str, Any]:
    """The glue of a chapter's fidelity section: the rule (``fidelity_rule``), how many
    comparisons there are and how many are over it (``fidelity_n``, ``fidelity_over``), and a
    sentence counting the verdicts of those over it (``fidelity_summary``)."""
    over = [g for g in gaps if g.over]
    counts = {v: sum(g.verdict == v for g in over) for v in ("explained", "mostly explained", "unexplained")}
    if over:
        parts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        verb = "is" if len(over) == 1 else "are"
        summary = f"{len(over)} of the {len(gaps)} comparisons {verb} over the rule: {parts}"
    elif len(gaps) == 1:
        summary = "the one comparison is within the rule"
    else:
        summary = f"all {len(gaps)} comparisons are within the rule"
    return {
        "fidelity_rule": (
            f"a rate more than {_tolerance_worded('rate')} from the paper's, or a distortion more than "
            f"{_tolerance_worded('distortion')} from it"
        ),
        "fidelity_n": len(gaps),
        "fidelity_over": len(over),
        "fidelity_summary": summary,
    }
