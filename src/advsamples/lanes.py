"""A profile's chapter computations in parallel lanes: ``python -m advsamples compute``.

Each lane is a process with its own torch thread (``$ADVSAMPLES_THREADS``, default 1) that trains
the models it owns, then runs its chapters' :func:`run` (cached, chunked, resumable). The JSMA
chapters, which share their runs and cost the most, have a lane of their own; the others share
the second. The 200-epoch LeNet, which every chapter uses and which no chapter can start without,
is trained first in the first lane; the second lane trains the other models meanwhile and waits
for it. A second run reads what the first left: killed, a lane loses at most the chunk it was on.

The notebooks then only read the cached results (``python -m advsamples run --profile paper
--compute``, which ``make paper`` runs after this).

Each lane writes its output to ``_build/lanes/<profile>-<lane>.log``; the parent prints a line per
lane every ``interval`` seconds: the chapter it is on and its progress bar's last state.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LANES", "LENET", "compute_profile", "lane_status", "lenet_runs"]

#: Chapters per lane (the book's other chapters, if any, join the last lane).
LANES: tuple[tuple[str, ...], ...] = (
    ("jsma", "hardness", "optimal", "gradflow"),
    ("models", "fgsm", "formulation", "lbfgs", "transferability", "advtrain", "libraries", "runrecord"),
)
#: The model the first lane trains first, at every length the JSMA chapter compares, shortest
#: first: one training run whose saved states make the shorter models its first epochs.
LENET = "lenet_paper"


def lenet_runs(profile: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, overrides)`` of the LeNets the first lane trains, shortest first."""
    from . import models as M
    from .experiments import jsma as J

    p = J.Params.from_profile(profile)
    own = M.SCHEDULES[p.schedule][LENET]
    return [(LENET, {"epochs": e}) for e in sorted(set(p.compared_epochs()) - {own})] + [(LENET, {})]


def _lane(profile: str, index: int, chapters: Sequence[str], log_path: str) -> None:
    import sys

    with open(log_path, "a", buffering=1) as log:
        sys.stdout = sys.stderr = log
        import torch

        from . import models as M
        from .artifacts import frozen_env, profile_env
        from .experiments import chapter_module
        from .notebook import threads_from_env
        from .paths import checkpoint_dir
        from .runner import profile_schedule

        threads = int(os.environ.get("ADVSAMPLES_THREADS", "1"))
        torch.set_num_threads(threads if threads > 0 else threads_from_env())
        schedule = profile_schedule(profile)
        with frozen_env(profile_env(profile)):
            runs = lenet_runs(profile)
            first = [M.config_for(n, schedule, **o) for n, o in runs]
            if index == 0:
                for name, overrides in runs:
                    print(f"LANE train {name} {overrides}", flush=True)
                    M.model_info(name, schedule, **overrides)
            else:
                for name in M.MODEL_NAMES:
                    cfg = M.config_for(name, schedule)
                    if cfg not in first:
                        print(f"LANE train {name}", flush=True)
                        M.model_info(name, schedule)
                needed = [checkpoint_dir() / f"{LENET}-{c.key()}.pt" for c in first]
                while not all(path.exists() for path in needed):
                    print("LANE waiting for the first lane's LeNet", flush=True)
                    time.sleep(30)
            for name in chapters:
                print(f"LANE chapter {name}", flush=True)
                start = time.perf_counter()
                module = chapter_module(name)
                module.run(module.Params.from_profile(profile), progress=True)
                print(f"LANE done {name} {time.perf_counter() - start:.0f} s", flush=True)
        print("LANE finished", flush=True)


def lane_status(text: str) -> str:
    """The last ``LANE`` line of a lane's log and its last progress-bar state, as one line."""
    step = ""
    for line in text.splitlines():
        if line.startswith("LANE "):
            step = line[5:]
    bar = text.replace("\r", "\n").rstrip().rsplit("\n", 1)[-1].strip()
    if bar.startswith("LANE "):
        bar = ""
    return f"{step}: {bar}" if bar else step


def compute_profile(
    profile: str,
    *,
    lanes: int = 2,
    interval: float = 60.0,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Compute every chapter of ``profile`` in ``lanes`` parallel processes (1 or 2); return each
    lane's exit code.

    Raises:
        ValueError: for a lane count other than 1 or 2, or an unknown profile.
    """
    from .paths import project_root
    from .runner import chapter_order, load_profile

    if lanes not in (1, 2):
        raise ValueError(f"lanes must be 1 or 2, got lanes={lanes!r}")
    load_profile(profile)
    order = chapter_order()
    groups = [[c for c in order if c in LANES[0]], [c for c in order if c not in LANES[0]]]
    if lanes == 1:
        groups = [[c for g in groups for c in g]]
    folder = Path(project_root()) / "_build" / "lanes"
    folder.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    procs = []
    for i, chapters in enumerate(groups):
        path = folder / f"{profile}-{i + 1}.log"
        path.write_text("")
        proc = ctx.Process(target=_lane, args=(profile, i, chapters, str(path)), name=f"lane{i + 1}")
        proc.start()
        procs.append((proc, path))
        log(f"[{profile}] lane {i + 1}: {', '.join(chapters)} (log: {path.relative_to(project_root())})")
    started = time.perf_counter()
    while any(p.is_alive() for p, _ in procs):
        time.sleep(interval)
        minutes = (time.perf_counter() - started) / 60
        for i, (p, path) in enumerate(procs):
            state = "finished" if not p.is_alive() else lane_status(path.read_text(errors="replace"))
            log(f"[{profile}] {minutes:.0f} min, lane {i + 1}: {state}")
    codes = {f"lane{i + 1}": int(p.exitcode or 0) for i, (p, _) in enumerate(procs)}
    for i, (p, path) in enumerate(procs):
        if p.exitcode:
            log(f"[{profile}] lane {i + 1} failed (exit {p.exitcode}); its log: {path}")
    return codes
