"""The models chapter: every model the study attacks, its MNIST test error beside its paper's.

:class:`Params` holds the notebook's parameters (validated on construction), :func:`run` loads
each model's checkpoint record (training the model first where no checkpoint matches) and returns
a :class:`Result`; :func:`glue_values` gives the numbers and phrases the prose quotes;
:func:`error_table`, :func:`notes_table`, :func:`error_figure` and :func:`learning_curves_figure`
are the chapter's tables and figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from advsamples import models as M
from advsamples import papers, plotting
from advsamples.chapter import ChapterParams, ChapterResult, Headline, cached, param
from advsamples.experiments.common import Gap, known
from advsamples.params import check_choices, check_numbers

__all__ = [
    "MAX_WEIGHT_DECAYS",
    "Params",
    "Result",
    "error_figure",
    "error_frame",
    "error_table",
    "convention_variants",
    "fc10_order",
    "fidelity",
    "glue_values",
    "last_step_drop",
    "learning_curves_figure",
    "model_variants",
    "notes_table",
    "run",
]

#: Most FC10(λ) variants trained: each is one more model to train.
MAX_WEIGHT_DECAYS = 10


def _check_distinct_decays(name: str, values: Sequence[float]) -> None:
    """Two equal weight decays (``1`` and ``1.0``, ``0.0`` and ``-0.0``) are a duplicate."""
    as_floats = [float(v) for v in values]
    dup = [v for i, v in enumerate(values) if as_floats[i] in as_floats[:i]]
    if dup:
        raise ValueError(f"parameter {name}={list(values)!r} has duplicate item(s) {dup}; list each once")


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the models chapter (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "models"

    schedule: str = param("quick", 'training schedule: "quick" (CI-sized) or "paper" (the papers\' epochs)')
    models: list[str] = param(
        ["lenet_paper", "lenet_relu", "fc10", "fc100_100_10", "fc200_200_10", "logreg_3v7"],
        "the models trained and shown (fc10 once per weight decay)",
    )
    fc10_weight_decays: list[float] = param([0.0001, 0.01, 1.0], "Szegedy et al.'s FC10(λ) variants")

    def validate(self) -> None:
        super().validate()
        check_choices("models", self.models, M.MODEL_NAMES)
        check_numbers(
            "fc10_weight_decays",
            self.fc10_weight_decays,
            lo=0,
            max_len=MAX_WEIGHT_DECAYS,
        )
        _check_distinct_decays("fc10_weight_decays", self.fc10_weight_decays)

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}


def model_variants(
    models: Sequence[str], fc10_weight_decays: Sequence[float]
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(key, name, overrides)`` of every model shown: ``fc10`` once per weight decay (key
    ``"fc10(λ)"``), the others once under their own name."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name in models:
        if name == "fc10":
            out += [(M.fc10_key(wd), name, {"weight_decay": float(wd)}) for wd in fc10_weight_decays]
        else:
            out.append((name, name, {}))
    return out


@dataclass(frozen=True)
class Result(ChapterResult):
    """One entry per model shown (in order), and each model's test error after every epoch.

    Attributes:
        keys: model keys (``"fc10(0.0001)"`` for a weight-decay variant).
        errors: our test error per model.
        paper_errors: the paper's test error (``None`` where the paper gives none).
        histories: key -> test error after each epoch of training.
        fc10_weight_decays: the weight decays of the ``fc10`` entries, in the order given.
        convention_errors: per ``fc10`` entry's key, the test error of FC10 trained with its λ
            read in the textbook form ½λ‖W‖² (our λ times :data:`advsamples.models.TEXTBOOK_DECAY_FACTOR`).
    """

    schedule: str
    keys: list[str]
    labels: list[str]
    epochs: list[int]
    errors: np.ndarray
    paper_errors: list[float | None]
    train_seconds: list[float]
    sources: list[str]
    notes: list[str]
    histories: dict[str, list[float]]
    fc10_weight_decays: list[float]
    convention_errors: dict[str, float]


_UNKNOWN = papers.PaperModel("", "(not in the papers)", None, None, "-", "a variant the papers do not report")


def convention_variants(params: Params) -> dict[str, float]:
    """Per ``fc10`` entry's key, the weight decay that reads its λ in the textbook form ½λ‖W‖²."""
    if "fc10" not in params.models:
        return {}
    return {M.fc10_key(wd): M.textbook_decay(wd) for wd in params.fc10_weight_decays}


def _compute(params: Params, progress: bool) -> Result:
    rows = []
    histories: dict[str, list[float]] = {}
    for key, name, overrides in model_variants(params.models, params.fc10_weight_decays):
        M.get_model(name, params.schedule, progress=progress, **overrides)  # trains it if needed
        info = M.model_info(name, params.schedule, **overrides)
        paper = papers.PAPER_MODELS.get(key, _UNKNOWN)
        histories[key] = [1 - a for a in info.history]
        rows.append((key, paper, info, 1 - info.test_accuracy))
    convention = {}
    for key, wd in convention_variants(params).items():
        M.get_model("fc10", params.schedule, progress=progress, weight_decay=wd)
        convention[key] = 1 - M.model_info("fc10", params.schedule, weight_decay=wd).test_accuracy
    return Result(
        schedule=params.schedule,
        keys=[key for key, *_ in rows],
        labels=[paper.label for _, paper, _, _ in rows],
        epochs=[int(info.config.epochs) for *_, info, _ in rows],
        errors=np.array([err for *_, err in rows], dtype=np.float64),
        paper_errors=[paper.test_error for _, paper, _, _ in rows],
        train_seconds=[float(info.train_seconds) for *_, info, _ in rows],
        sources=[paper.where for _, paper, _, _ in rows],
        notes=[paper.note for _, paper, _, _ in rows],
        histories=histories,
        fc10_weight_decays=[float(wd) for wd in params.fc10_weight_decays] if "fc10" in params.models else [],
        convention_errors=convention,
    )


def model_keys(params: Params) -> list[str]:
    """Checkpoint keys of every model shown (the cache is keyed by them)."""
    return [
        M.config_for(name, params.schedule, **overrides).key()
        for _, name, overrides in model_variants(params.models, params.fc10_weight_decays)
    ] + [
        M.config_for("fc10", params.schedule, weight_decay=wd).key()
        for wd in convention_variants(params).values()
    ]


def run(params: Params, *, progress: bool = True) -> Result:
    """Every model's record (training where no checkpoint matches), cached by ``params`` and
    the models' checkpoint keys."""
    return cached(params, Result, lambda: _compute(params, progress), version=2, models=model_keys(params))


# --------------------------------------------------------------------------- what the prose says
def fc10_order(errors_by_increasing_decay: Sequence[float]) -> str:
    """How the FC10 error moves with λ (errors listed in increasing λ), as the prose says it."""
    e = list(errors_by_increasing_decay)
    rising = all(a <= b for a, b in zip(e, e[1:], strict=False))
    return (
        "rises with λ, as in the paper" if rising else "does not rise monotonically with λ, unlike the paper"
    )


def last_step_drop(history: Sequence[float]) -> float:
    """How much the error fell in the last epoch, in percentage points (0 after one epoch)."""
    return 100 * (history[-2] - history[-1]) if len(history) > 1 else 0.0


def glue_values(result: Result) -> dict[str, Any]:
    """Glue key -> value: every number and phrase the chapter's prose quotes."""
    r = result
    out: dict[str, Any] = {}
    for key, err, epochs, paper in zip(r.keys, r.errors, r.epochs, r.paper_errors, strict=True):
        s = M.slug(key)
        out[f"err_{s}"] = float(err)
        out[f"epochs_{s}"] = epochs
        if paper is not None:
            out[f"paper_err_{s}"] = paper
    if "lenet_paper" in r.histories and r.histories["lenet_paper"]:
        h = r.histories["lenet_paper"]
        out["lenet_paper_first_epoch_err"] = h[0]
        out["lenet_paper_last_step_drop"] = last_step_drop(h)
    if r.fc10_weight_decays:
        errors = dict(zip(r.keys, (float(e) for e in r.errors), strict=True))
        out["fc10_order"] = fc10_order([errors[M.fc10_key(wd)] for wd in sorted(r.fc10_weight_decays)])
    return out


def headline(result: Result) -> Headline:
    """The chapter's opening box: the test error of every model the papers report, theirs beside
    ours, on MNIST's test set."""
    r = result
    rows = tuple(
        (f"{label}: test error", f"{paper:.2%}", f"{float(err):.2%}")
        for label, err, paper in zip(r.labels, r.errors, r.paper_errors, strict=True)
        if paper is not None
    )
    epochs = dict(zip(r.keys, r.epochs, strict=True))
    others = sorted({e for k, e in epochs.items() if k != "lenet_paper"})
    lenet = f"LeNet trained {epochs['lenet_paper']} epochs, " if "lenet_paper" in epochs else ""
    return Headline(
        "Papernot et al. (2016), Szegedy et al. (2014) Table 1, Goodfellow et al. (2015)",
        rows,
        "MNIST's 10,000 test digits; LeNet trained 200 epochs, the other schedules not given",
        f"MNIST's 10,000 test digits; {lenet}the others {', '.join(map(str, others))} epochs",
    )


def fidelity(result: Result) -> list[Gap]:
    """Every model's test error beside its paper's; for an FC10(λ), the experiment that reads
    the paper's λ in the textbook form ½λ‖W‖² (the paper does not say which it means)."""
    r = result
    out: list[Gap | None] = []
    for key, label, err, paper in zip(r.keys, r.labels, r.errors, r.paper_errors, strict=True):
        if paper is None:
            continue
        reading = r.convention_errors.get(key)
        wd = M.model_spec(key)[1].get("weight_decay") if key in r.convention_errors else None
        experiment = "" if wd is None else f"λ = {M.textbook_decay(wd):g} (the textbook ½λ‖W‖²)"
        out.append(
            Gap.maybe(f"{label}: test error", "rate", paper, float(err), reading, experiment, fmt=".2%")
        )
    return known(*out)


# --------------------------------------------------------------------------- tables and figures
def error_frame(result: Result) -> pd.DataFrame:
    """One row per model: the paper's name, epochs, our test error and the paper's, their
    difference in points, training time and where the paper gives its figure."""
    r = result
    rows = [
        {
            "model": key,
            "paper's name": label,
            "epochs": epochs,
            "test error (ours)": float(err),
            "test error (paper)": paper,
            "difference (points)": None if paper is None else 100 * (float(err) - paper),
            "train time (s)": round(seconds),
            "source": source,
        }
        for key, label, epochs, err, paper, seconds, source in zip(
            r.keys, r.labels, r.epochs, r.errors, r.paper_errors, r.train_seconds, r.sources, strict=True
        )
    ]
    return pd.DataFrame(rows).set_index("model")


def error_table(result: Result) -> Styler:
    """:func:`error_frame`, formatted (a dash where the paper gives no figure)."""
    return error_frame(result).style.format(
        {
            "test error (ours)": "{:.2%}",
            "test error (paper)": lambda v: "—" if pd.isna(v) else f"{v:.2%}",
            "difference (points)": lambda v: "—" if pd.isna(v) else f"{v:+.2f}",
        }
    )


def notes_table(result: Result) -> Styler:
    """What each paper leaves open, or what this study does differently, per model."""
    index = pd.Index(result.keys, name="model")
    return pd.DataFrame({"note": result.notes}, index=index).style.set_properties(**{"text-align": "left"})


def error_figure(result: Result) -> Figure:
    """Our test error beside the paper's, per model (log scale)."""
    return plotting.paired_bars(
        list(result.keys),
        [float(e) for e in result.errors],
        list(result.paper_errors),
        ylabel="test error",
        title=f"MNIST test error, this study ({result.schedule} schedule) and the papers",
        log=True,
    )


def learning_curves_figure(result: Result) -> Figure:
    """Test error after each epoch of training, one line per model (log scale)."""
    histories = result.histories
    longest = max((len(h) for h in histories.values()), default=0)
    fig = plotting.curves(
        list(range(1, longest + 1)),
        {k: h + [math.nan] * (longest - len(h)) for k, h in histories.items() if h},
        xlabel="epoch",
        ylabel="test error",
        title="Test error during training",
    )
    fig.axes[0].set_yscale("log")
    return fig
