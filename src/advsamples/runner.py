"""Execute every chapter notebook of a profile with papermill, in the book's order.

A profile (``params/<name>.yml``) holds ``common`` parameters given to every notebook and one
section per notebook::

    common:
      schedule: quick
    notebooks:
      fgsm:
        n_samples: 500

The notebook order is the book's: the chapters listed under ``book/chapters/`` in ``_toc.yml``.
Executed notebooks are written to ``book/chapters/`` (git-ignored) and the wall time of each to
``results/<profile>/timings.json``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import yaml

from .paths import project_root, results_dir

__all__ = ["chapter_order", "load_profile", "load_timings", "notebook_parameters", "run_profile"]

_CHAPTER = re.compile(r"^\s*-?\s*file:\s*book/chapters/(\w+)\s*$")


def chapter_order(root: Path | None = None) -> list[str]:
    """Names of the chapter notebooks in the order ``_toc.yml`` lists them."""
    toc = (root or project_root()) / "_toc.yml"
    return [m.group(1) for line in toc.read_text().splitlines() if (m := _CHAPTER.match(line))]


def load_profile(profile: str, root: Path | None = None) -> dict[str, Any]:
    """The parsed ``params/<profile>.yml``; :class:`ValueError` if there is no such profile."""
    root = root or project_root()
    path = root / "params" / f"{profile}.yml"
    if not path.exists():
        known = sorted(p.stem for p in (root / "params").glob("*.yml"))
        raise ValueError(f"unknown profile={profile!r}; choose one of {known}")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data.get("notebooks") or {}) - set(chapter_order(root))
    if unknown:
        raise ValueError(f"{path} names notebooks that are not in _toc.yml: {sorted(unknown)}")
    return data


def notebook_parameters(profile: str, notebook: str, root: Path | None = None) -> dict[str, Any]:
    """The parameters papermill injects into ``notebook`` for ``profile``."""
    data = load_profile(profile, root)
    return {
        "profile": profile,
        **(data.get("common") or {}),
        **((data.get("notebooks") or {}).get(notebook) or {}),
    }


def load_timings(profile: str) -> dict[str, Any] | None:
    """``results/<profile>/timings.json``, or ``None`` if that profile has not been run here."""
    path = results_dir() / profile / "timings.json"
    return json.loads(path.read_text()) if path.exists() else None


def run_profile(profile: str, only: list[str] | None = None, *, log_output: bool = False) -> dict[str, float]:
    """Run the profile's notebooks (all, or ``only`` these) and return seconds per notebook."""
    import papermill as pm

    root = project_root()
    order = chapter_order(root)
    load_profile(profile, root)  # validates the profile before anything runs
    selected = only or order
    missing = sorted(set(selected) - set(order))
    if missing:
        raise ValueError(f"unknown notebook(s) {missing}; the book's chapters are {order}")
    out_dir = root / "book" / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_path = results_dir() / profile / "timings.json"
    timings: dict[str, Any] = load_timings(profile) or {}
    seconds: dict[str, float] = {}
    for name in [n for n in order if n in selected]:
        params = notebook_parameters(profile, name, root)
        print(f"[{profile}] {name}: {params}", flush=True)
        start = time.perf_counter()
        pm.execute_notebook(
            str(root / "notebooks" / f"{name}.ipynb"),
            str(out_dir / f"{name}.ipynb"),
            parameters=params,
            cwd=str(root / "notebooks"),
            progress_bar=False,
            log_output=log_output,
        )
        seconds[name] = time.perf_counter() - start
        print(f"[{profile}] {name}: {seconds[name]:.0f} s", flush=True)
        timings.setdefault("notebooks", {})[name] = round(seconds[name], 1)
        timings["machine"] = {
            "cpus": os.cpu_count(),
            "threads": os.environ.get("ADVSAMPLES_THREADS", "all cores"),
            "processor": platform.processor() or platform.machine(),
        }
        timings_path.parent.mkdir(parents=True, exist_ok=True)
        timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return seconds
