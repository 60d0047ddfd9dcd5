"""The run record page: how long each chapter of this build took, on which machine, with which
software, the models' training times, and a small JSMA benchmark measured here.

:class:`Params` holds the page's parameters (validated on construction); :func:`run` reads the
pipeline's ``timings.json`` files and the checkpoints' records and the benchmark
(:func:`advsamples.bench.bench_jsma_test_set`, measured by the run that computes the profile's
results and cached with them);
:func:`glue_values` gives the numbers the prose quotes; :func:`timings_table`,
:func:`training_table`, :func:`bench_report` and :func:`environment_table` are what the page shows.
Paths are shown relative to the project root (:func:`display_path`), never as absolute paths of
the build machine.
"""

from __future__ import annotations

import math
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
from pandas.io.formats.style import Styler

with warnings.catch_warnings():
    # tqdm.auto warns, with the absolute path of its own file, when ipywidgets is missing; this
    # page shows no path of the build machine (and no progress bar), so it drops that warning.
    warnings.filterwarnings("ignore", message="IProgress not found")
    from advsamples import models as M
    from advsamples import runner
    from advsamples.chapter import ChapterParams, ChapterResult, cached, param
    from advsamples.params import check_count
    from advsamples.paths import project_root, results_dir

__all__ = [
    "MEASURED_KEYS",
    "PROFILES",
    "Bench",
    "Params",
    "Result",
    "bench_report",
    "LEDGER_GROUPS",
    "PAPER_TARGET_HOURS",
    "target_phrase",
    "fidelity",
    "fidelity_frame",
    "fidelity_table",
    "ledger",
    "ledger_frame",
    "ledger_table",
    "display_path",
    "environment_table",
    "glue_values",
    "run",
    "run_summary",
    "timings_frame",
    "timings_table",
    "training_frame",
    "training_table",
]

#: The profiles whose latest run times the page lists.
PROFILES = ("quick", "paper")
#: Glue keys that are measurements of this build (they differ from run to run by nature).
MEASURED_KEYS = ("bench_attacks_per_s", "bench_paper_test_minutes", "bench_peak_rss_mib")
_TEST_DIGITS = 10000


@dataclass(frozen=True)
class Params(ChapterParams):
    """The parameters of the run record page (its notebook's ``parameters`` cell)."""

    chapter: ClassVar[str] = "runrecord"

    profile: str = param("quick", "the profile whose run this page records")
    schedule: str = param(
        "quick", "training schedule of that profile (its models' training times are read back)"
    )
    bench_samples: int = param(
        100, "test digits in the JSMA benchmark below (each attacked toward its 9 other classes)"
    )

    def validate(self) -> None:
        super().validate()
        check_count("bench_samples", self.bench_samples, _TEST_DIGITS, "test digits")

    def start_params(self) -> dict[str, Any]:
        """The parameters the notebook records beside its results (all but ``profile``)."""
        return {k: v for k, v in self.as_dict().items() if k != "profile"}


@dataclass(frozen=True)
class Result(ChapterResult):
    """What the page shows.

    Attributes:
        recorded_profile: the profile whose run the page records.
        chapters: the book's chapters but this page, in order.
        notebook_seconds: profile -> chapter -> seconds of its latest run (a chapter not run is
            absent; a profile not run is empty).
        compute_seconds: profile -> chapter -> seconds its result took to compute, from the
            provenance in its record (for a published profile, the committed run's; a notebook that
            read a cached result runs in seconds, its result may have taken hours).
        machine_cpus: the CPU count ``timings.json`` of ``recorded_profile`` records (None if none).
        models / epochs / train_seconds / train_threads / paper_epochs: the checkpoints' records.
        bench: :func:`advsamples.bench.bench_jsma_test_set`'s figures (a non-finite number as None).
        environment: software and machine, paths relative to the project root.
        ledger: every measured piece of the recorded profile's compute, each counted once
            (:func:`ledger`): ``{"group", "item", "seconds"}`` rows.
        fidelity: per chapter with comparisons to its paper, what its fidelity section glued
            (:func:`advsamples.experiments.common.fidelity_values`): ``n``, ``over``, ``summary``.
    """

    recorded_profile: str
    schedule: str
    bench_samples: int
    chapters: list[str]
    notebook_seconds: dict[str, dict[str, float]]
    compute_seconds: dict[str, dict[str, float]]
    machine_cpus: int | None
    models: list[str]
    epochs: list[int]
    train_seconds: list[float]
    train_threads: list[int]
    paper_epochs: list[int]
    bench: dict[str, Any]
    environment: dict[str, Any]
    torch_version: str
    ledger: list[dict[str, Any]]
    fidelity: dict[str, dict[str, Any]]


def display_path(path: Path, root: Path | None = None) -> str:
    """``path`` relative to the project root (``"results/quick"``); a path outside it is shown
    through the variable that put it there (``"$ADVSAMPLES_RESULTS/quick"`` when ``path`` lies
    under ``$ADVSAMPLES_RESULTS``), else by its last part only: never as an absolute path."""
    import os

    root = (root or project_root()).resolve()
    path = path.resolve()
    if path.is_relative_to(root):
        return path.relative_to(root).as_posix() or "."
    env = os.environ.get("ADVSAMPLES_RESULTS")
    if env and path.is_relative_to(Path(env).resolve()):
        rest = path.relative_to(Path(env).resolve()).as_posix()
        return "$ADVSAMPLES_RESULTS" + ("" if rest == "." else f"/{rest}")
    return f"<outside the project>/{path.name}"


def _finite_or_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in d.items()}


@dataclass(frozen=True)
class Bench(ChapterResult):
    """The JSMA benchmark's figures (:func:`advsamples.bench.bench_jsma_test_set`)."""

    figures: dict[str, Any]


def run(params: Params, *, progress: bool = True) -> Result:
    """Read the timings and the checkpoints' records, and the JSMA benchmark: measured by the
    run that computes the profile's results and cached with them (a published profile's book
    shows the benchmark of its committed run, not of the machine that builds the book).
    ``progress`` is accepted for the shape every chapter shares; the page shows no progress bar."""
    timings = {p: runner.load_timings(p) for p in PROFILES}
    chapters = [c for c in runner.chapter_order() if c != "runrecord"]
    infos = [M.model_info(name, params.schedule) for name in M.MODEL_NAMES]
    from advsamples.bench import bench_jsma_test_set  # imported here: it loads the JSMA machinery

    del progress  # the benchmark's bar would time itself; the page never showed one
    bench = cached(
        params,
        Bench,
        lambda: Bench(
            _finite_or_none(
                bench_jsma_test_set(
                    params.bench_samples, schedule=params.schedule, threads=torch.get_num_threads()
                )
            )
        ),
        version=1,
        models=[M.model_info("lenet_paper", params.schedule).key],
    ).figures
    cpus = (timings[params.profile] or {}).get("machine", {}).get("cpus")
    environment = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "CPU cores": cpus,
        "processor": platform.processor() or platform.machine(),
        "results folder": display_path(results_dir() / params.profile),
    }
    return Result(
        recorded_profile=params.profile,
        schedule=params.schedule,
        bench_samples=params.bench_samples,
        chapters=chapters,
        notebook_seconds={p: dict((t or {}).get("notebooks", {})) for p, t in timings.items()},
        compute_seconds={p: _compute_seconds(p, chapters) for p in PROFILES},
        machine_cpus=cpus,
        models=list(M.MODEL_NAMES),
        epochs=[int(i.config.epochs) for i in infos],
        train_seconds=[float(i.train_seconds) for i in infos],
        train_threads=[int(i.threads) for i in infos],
        paper_epochs=[M.SCHEDULES["paper"][name] for name in M.MODEL_NAMES],
        bench=bench,
        environment=environment,
        torch_version=torch.__version__,
        ledger=ledger(params.profile, chapters),
        fidelity=fidelity(params.profile, chapters),
    )


def fidelity(profile: str, chapters: list[str]) -> dict[str, dict[str, Any]]:
    """Per chapter of ``profile``'s run whose record holds a fidelity section, its counts and
    summary (``n``, ``over``, ``summary``), read from the glued results."""
    from advsamples.record import load_results

    out = {}
    for c in chapters:
        values = (load_results(profile, c) or {}).get("results") or {}
        if "fidelity_summary" in values:
            out[c] = {
                "n": int(values["fidelity_n"]),
                "over": int(values["fidelity_over"]),
                "summary": str(values["fidelity_summary"]),
            }
    return out


def fidelity_frame(result: Result) -> pd.DataFrame:
    """One row per chapter with comparisons to its paper: how many, how many over the study's
    rule, and its summary sentence."""
    rows = [
        {"chapter": c, "comparisons": f["n"], "over the rule": f["over"], "verdicts": f["summary"]}
        for c, f in result.fidelity.items()
    ]
    return pd.DataFrame(rows, columns=["chapter", "comparisons", "over the rule", "verdicts"]).set_index(
        "chapter"
    )


def _compute_seconds(profile: str, chapters: list[str]) -> dict[str, float]:
    from advsamples.record import load_results

    out = {}
    for c in chapters:
        seconds = ((load_results(profile, c) or {}).get("provenance") or {}).get("seconds")
        if isinstance(seconds, int | float) and math.isfinite(seconds):
            out[c] = float(seconds)
    return out


#: The ledger's groups, in the order the page lists them.
LEDGER_GROUPS = ("training", "JSMA runs", "chapters")


def ledger(profile: str, chapters: list[str]) -> list[dict[str, Any]]:
    """Every measured piece of ``profile``'s compute, each counted once, with the seconds it
    records (single-threaded pieces on the machine its provenance names):

    - ``training``: one row per training trajectory (a model's configuration but its length),
      the seconds of its longest checkpoint, which include its shorter ones (the 10- and
      50-epoch LeNets are the first epochs of the 200-epoch run: :func:`advsamples.models.train`);
    - ``JSMA runs``: one row per run of the attack cache the JSMA chapters share, the seconds
      it records;
    - ``chapters``: each chapter's own compute, from its result's provenance (which leaves out
      the shared runs: :func:`advsamples.chapter.count_elsewhere`).
    """
    import json

    from advsamples.experiments import jsma_runs
    from advsamples.paths import checkpoint_dir

    rows: list[dict[str, Any]] = []
    longest: dict[tuple[str, str], tuple[float, int]] = {}
    for path in sorted(checkpoint_dir().glob("*.pt")):
        try:
            meta = json.loads(torch.load(path, map_location="cpu", weights_only=True)["meta"])
            config = dict(meta["config"])
            config["hidden"] = tuple(config.get("hidden", ()))
            cfg = M.TrainConfig(**config)
            name = str(meta["name"])
            base = M.config_for(name, epochs=cfg.epochs, extra=cfg.extra)
            seconds, epochs = float(meta["train_seconds"]), cfg.epochs
        except Exception:  # not a checkpoint of the study: not part of its compute
            continue
        changed = ", ".join(
            f"{f}={getattr(cfg, f)}"
            for f in sorted(config)
            if f != "epochs" and getattr(cfg, f) != getattr(base, f)
        )
        key = (f"{name} ({changed})" if changed else name, cfg.trajectory_key())
        if key not in longest or epochs > longest[key][1]:
            longest[key] = (seconds, epochs)
    for (label, _), (seconds, epochs) in sorted(longest.items()):
        rows.append({"group": "training", "item": f"{label}, {epochs} epochs", "seconds": seconds})
    for path in sorted(jsma_runs.cache_dir().glob("*.pt")):
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            meta, n = json.loads(blob["meta"]), len(blob["success"])
        except Exception:
            continue
        item = (
            f"{n:,} attacks, θ = {meta['theta']:+g}, Υ = {meta['gamma']:.1%}, "
            f"{'logits' if meta['use_logits'] else 'probabilities'}"
        )
        rows.append({"group": "JSMA runs", "item": item, "seconds": float(meta.get("seconds", math.nan))})
    for chapter, seconds in _compute_seconds(profile, chapters).items():
        rows.append({"group": "chapters", "item": chapter, "seconds": seconds})
    return rows


def fidelity_table(result: Result) -> Styler:
    """:func:`fidelity_frame`, every text in full."""
    return fidelity_frame(result).style.set_properties(**{"text-align": "left"})


def ledger_frame(result: Result) -> pd.DataFrame:
    """:attr:`Result.ledger` summed by group (rows in :data:`LEDGER_GROUPS` order, then ``total``):
    pieces, seconds and hours."""
    rows = pd.DataFrame(result.ledger, columns=["group", "item", "seconds"])
    by = rows.groupby("group")["seconds"].agg(["count", "sum"]).reindex(list(LEDGER_GROUPS)).fillna(0)
    by.loc["total"] = by.sum()
    by.columns = ["pieces", "seconds"]
    by["hours"] = by["seconds"] / 3600
    by["pieces"] = by["pieces"].astype(int)
    return by


def ledger_table(result: Result) -> Styler:
    """:func:`ledger_frame`, formatted."""
    return ledger_frame(result).style.format({"seconds": "{:,.0f}", "hours": "{:.2f}"})


# --------------------------------------------------------------------------- tables
def timings_frame(result: Result) -> pd.DataFrame:
    """Seconds per chapter (rows, then ``total``): for each profile (columns) the time its result took
    to compute and the notebook's wall time in the latest run; NaN where not run."""
    r = result
    columns = {}
    for p in PROFILES:
        columns[(p, "compute")] = [r.compute_seconds.get(p, {}).get(c) for c in r.chapters]
        columns[(p, "notebook")] = [r.notebook_seconds.get(p, {}).get(c) for c in r.chapters]
    table = pd.DataFrame(columns, index=r.chapters, dtype=float)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.loc["total"] = table.sum(min_count=1)
    return table


def timings_table(result: Result) -> Styler:
    """:func:`timings_frame`, as whole seconds (blank where not run)."""
    return timings_frame(result).style.format(lambda v: "" if pd.isna(v) else f"{v:,.0f} s")


def training_frame(result: Result) -> pd.DataFrame:
    """Per model: epochs, seconds, threads, seconds per epoch, and the ``paper`` schedule's epochs
    and its estimated minutes at the measured rate."""
    r = result
    rows = []
    for name, epochs, seconds, threads, paper in zip(
        r.models, r.epochs, r.train_seconds, r.train_threads, r.paper_epochs, strict=True
    ):
        per_epoch = seconds / epochs
        rows.append(
            {
                "model": name,
                "epochs": epochs,
                "seconds": seconds,
                "threads": threads,
                "s / epoch": per_epoch,
                "paper epochs": paper,
                "paper schedule (estimate, min)": per_epoch * paper / 60,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def training_table(result: Result) -> Styler:
    """:func:`training_frame`, formatted."""
    return training_frame(result).style.format(
        {"seconds": "{:,.0f}", "s / epoch": "{:.1f}", "paper schedule (estimate, min)": "{:,.1f}"}
    )


def bench_report(result: Result) -> str:
    """The benchmark's report, as ``python -m advsamples bench jsma`` prints it."""
    from advsamples.bench import format_bench

    return format_bench({k: math.nan if v is None else v for k, v in result.bench.items()})


def environment_table(result: Result) -> pd.DataFrame:
    """Software and machine of this build (paths relative to the project root)."""
    return pd.Series(result.environment, name="value").to_frame()


# --------------------------------------------------------------------------- glue
def run_summary(result: Result) -> tuple[float, bool]:
    """Minutes of the recorded profile's run (NaN if it has not run) and whether every chapter
    has a time."""
    table = timings_frame(result)
    p = result.recorded_profile
    total = table.loc["total", (p, "notebook")]
    minutes = float(total) / 60 if pd.notna(total) else math.nan
    return minutes, all(pd.notna(table.loc[c, (p, "notebook")]) for c in result.chapters)


def glue_values(result: Result) -> dict[str, Any]:
    """Glue key -> value: every number the page's prose quotes."""
    r = result
    minutes, complete = run_summary(r)
    train = training_frame(r)
    b = r.bench
    compute = r.compute_seconds.get(r.recorded_profile, {})
    return {
        "bench_samples": r.bench_samples,
        "run_minutes": minutes,
        "compute_minutes": sum(compute.values()) / 60 if compute else math.nan,
        "compute_complete": all(c in compute for c in r.chapters),
        **{f"compute_minutes_{c}": compute.get(c, math.nan) / 60 for c in r.chapters},
        "run_complete": complete,
        "runrecord_schedule": r.schedule,
        "paper_training_hours_estimate": float(train["paper schedule (estimate, min)"].sum()) / 60,
        "lenet_paper_seconds_per_epoch": float(train.loc["lenet_paper", "s / epoch"]),
        "bench_attacks_per_s": b["attacks_per_s"],
        "bench_paper_test_minutes": b["extrapolated_paper_s"] / 60,
        "bench_peak_rss_mib": b["peak_rss_mib"],
        "bench_reference_agree": f"{b['reference_agree']} of {b['reference_checked']}",
        "torch_version": r.torch_version,
        **_ledger_glue(r),
    }


def _ledger_glue(result: Result) -> dict[str, Any]:
    """The ledger's hours by group and in all, and the least wall time two one-thread lanes
    need for them (half the total: no schedule of two lanes does better)."""
    frame = ledger_frame(result)
    hours = {g: float(frame.loc[g, "hours"]) for g in (*LEDGER_GROUPS, "total")}
    return {
        "ledger_training_hours": hours["training"],
        "ledger_jsma_hours": hours["JSMA runs"],
        "ledger_chapters_hours": hours["chapters"],
        "ledger_total_hours": hours["total"],
        "ledger_jsma_runs": int(frame.loc["JSMA runs", "pieces"]),
        "ledger_two_lane_hours": hours["total"] / 2,
        "ledger_target_phrase": target_phrase(result.recorded_profile, hours["total"] / 2),
    }


#: The study's target for the paper run from scratch on 2 CPU cores (hours of wall time).
PAPER_TARGET_HOURS = 3.0


def target_phrase(profile: str, two_lane_hours: float) -> str:
    """How the least wall time of ``profile``'s run stands to the paper run's target."""
    if profile != "paper":
        return f"the target of {PAPER_TARGET_HOURS:g} hours on 2 cores is the paper profile's"
    if two_lane_hours <= PAPER_TARGET_HOURS:
        return f"that is within the study's target of {PAPER_TARGET_HOURS:g} hours on 2 cores"
    return (
        f"that is {two_lane_hours - PAPER_TARGET_HOURS:.2f} hours above the study's target of "
        f"{PAPER_TARGET_HOURS:g} hours on 2 cores, before any wait between the lanes"
    )
