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

__all__ = [
    "chapter_order",
    "load_profile",
    "load_timings",
    "notebook_parameters",
    "parameter_names",
    "profile_schedule",
    "run_profile",
]

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
    extra = sorted(set(data) - {"common", "notebooks", "publish"})
    if extra:
        raise ValueError(f"{path} has unknown top-level key(s) {extra}; use common, notebooks and publish")
    if not isinstance(data.get("publish", False), bool):
        raise ValueError(f"{path}: publish={data['publish']!r} must be true or false")
    unknown = set(data.get("notebooks") or {}) - set(chapter_order(root))
    if unknown:
        raise ValueError(f"{path} names notebooks that are not in _toc.yml: {sorted(unknown)}")
    return data


def profile_schedule(profile: str, root: Path | None = None) -> str:
    """The training schedule ``profile``'s models use (its ``common: schedule``, else ``quick``);
    :class:`ValueError` if there is no such profile."""
    return str((load_profile(profile, root).get("common") or {}).get("schedule", "quick"))


def notebook_parameters(profile: str, notebook: str, root: Path | None = None) -> dict[str, Any]:
    """The parameters papermill injects into ``notebook`` for ``profile``.

    Raises:
        ValueError: if the profile sets a key that is not a parameter of the notebook (its
            ``parameters`` cell), naming the key, the notebook and the profile file.
    """
    root = root or project_root()
    data = load_profile(profile, root)
    values = {
        "profile": profile,
        **(data.get("common") or {}),
        **((data.get("notebooks") or {}).get(notebook) or {}),
    }
    known = parameter_names(notebook, root)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"params/{profile}.yml sets {unknown} for notebook {notebook!r}, which has no such "
            f"parameter; its parameters are {known}"
        )
    return values


def parameter_names(notebook: str, root: Path | None = None) -> list[str]:
    """The names the ``parameters`` cell of ``notebooks/<notebook>.ipynb`` assigns, in order."""
    import ast

    path = (root or project_root()) / "notebooks" / f"{notebook}.ipynb"
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return [
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    raise ValueError(f"{path} has no cell tagged 'parameters'")


def _show_parameters_once(path: Path) -> None:
    """Hide the raw ``parameters`` cell and papermill's injected cell from the book: each chapter
    shows its validated ``Params`` as a table instead (tag ``remove-cell``)."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def load_timings(profile: str) -> dict[str, Any] | None:
    """``results/<profile>/timings.json``, or ``None`` if that profile has not been run here."""
    path = results_dir() / profile / "timings.json"
    return json.loads(path.read_text()) if path.exists() else None


def run_profile(
    profile: str, only: list[str] | None = None, *, compute: bool = False, log_output: bool = False
) -> dict[str, float]:
    """Run the profile's notebooks (all, or ``only`` these) and return seconds per notebook.

    A published profile (:func:`advsamples.artifacts.published`) keeps its cache and checkpoints
    in ``results/<profile>/``. Without ``compute`` its notebooks read the committed artifacts
    only: the manifest is verified first and nothing is recomputed (a missing or altered artifact
    raises :class:`advsamples.artifacts.ArtifactError`). With ``compute`` (``make paper``) they
    compute what is missing, resuming where an earlier run stopped.
    """
    from .artifacts import FROZEN_ENV, frozen_env, profile_env, published, verify_manifest

    root = project_root()
    order = chapter_order(root)
    load_profile(profile, root)  # validates the profile before anything runs
    if only is not None and not only:
        raise ValueError(
            "run --only needs at least one notebook name; the book's chapters are " + ", ".join(order)
        )
    selected = only or order
    missing = sorted(set(selected) - set(order))
    if missing:
        raise ValueError(f"unknown notebook(s) {missing}; the book's chapters are {order}")
    env = profile_env(profile)
    read_only = published(profile) and not compute
    if read_only:
        with frozen_env(env):
            n = verify_manifest(profile)
        print(f"[{profile}] {n} published artifacts match their manifest; reading them, computing nothing")
        env[FROZEN_ENV] = "1"
    with frozen_env(env):
        return _run_notebooks(profile, order, only, root, record_times=not read_only, log_output=log_output)


def _run_notebooks(
    profile: str,
    order: list[str],
    only: list[str] | None,
    root: Path,
    *,
    record_times: bool,
    log_output: bool,
) -> dict[str, float]:
    import papermill as pm

    selected = only or order
    out_dir = root / "book" / "chapters"
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_path = results_dir() / profile / "timings.json"
    timings: dict[str, Any] = load_timings(profile) or {}
    seconds: dict[str, float] = {}
    todo = [n for n in order if n in selected]
    before = (timings.get("notebooks") or {}) if record_times else {}
    for i, name in enumerate(todo):
        params = notebook_parameters(profile, name, root)
        print(f"[{profile}] {i + 1}/{len(todo)} {name}: {params}", flush=True)
        left = [float(t) for n in todo[i:] if isinstance(t := before.get(n), int | float)]
        if record_times and len(left) == len(todo) - i:
            print(f"[{profile}] about {sum(left) / 60:.0f} min left (as long as the last run)", flush=True)
        start = time.perf_counter()
        final = out_dir / f"{name}.ipynb"
        # executed outside book/ (the book's sources), then moved in whole on success
        partial = root / "_build" / "papermill" / f"{name}.running{os.getpid()}.ipynb"
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            pm.execute_notebook(
                str(root / "notebooks" / f"{name}.ipynb"),
                str(partial),
                parameters=params,
                cwd=str(root / "notebooks"),
                progress_bar=False,
                log_output=log_output,
            )
            _show_parameters_once(partial)
            os.replace(partial, final)  # the book never reads a half-executed chapter
        finally:
            partial.unlink(missing_ok=True)
        seconds[name] = time.perf_counter() - start
        print(f"[{profile}] {name}: {seconds[name]:.0f} s", flush=True)
        if not record_times:
            continue  # a book built from published artifacts times nothing but itself
        timings.setdefault("notebooks", {})[name] = round(seconds[name], 1)
        timings["machine"] = {
            "cpus": os.cpu_count(),
            "threads": os.environ.get("ADVSAMPLES_THREADS", "all cores"),
            "processor": platform.processor() or platform.machine(),
        }
        timings_path.parent.mkdir(parents=True, exist_ok=True)
        timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    return seconds
