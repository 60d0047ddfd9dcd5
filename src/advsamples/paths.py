"""Where the study keeps its data, checkpoints and results.

Every location can be overridden with an environment variable, so a notebook executed from any
working directory (papermill, nbval, a reader's Jupyter) finds the same files:

=====================  ==========================  ==========================
what                   default                     override
=====================  ==========================  ==========================
project root           found from the working dir  ``ADVSAMPLES_ROOT``
MNIST cache            ``<root>/data``             ``ADVSAMPLES_DATA``
model checkpoints      ``<root>/checkpoints``      ``ADVSAMPLES_CHECKPOINTS``
chapter results        ``<root>/results``          ``ADVSAMPLES_RESULTS``
runs' cache            ``<results>/cache``         ``ADVSAMPLES_CACHE``
=====================  ==========================  ==========================

A published profile (the paper's) keeps its cache and checkpoints in ``results/<profile>/``
instead (:func:`advsamples.artifacts.profile_env`); the runner sets the variables for it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "data_dir", "checkpoint_dir", "results_dir", "cache_dir"]

_MARKERS = ("_toc.yml", "pyproject.toml")


def _is_root(path: Path) -> bool:
    return all((path / m).is_file() for m in _MARKERS) and (path / "src" / "advsamples").is_dir()


def project_root() -> Path:
    """The study's root folder: ``$ADVSAMPLES_ROOT``, else the nearest parent of the working
    directory (or of this package) that holds ``_toc.yml``, ``pyproject.toml`` and ``src/advsamples``,
    else the working directory."""
    env = os.environ.get("ADVSAMPLES_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if _is_root(candidate):
                return candidate
    return Path.cwd().resolve()


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).resolve() if value else project_root() / default


def data_dir() -> Path:
    """Folder of the MNIST cache (``$ADVSAMPLES_DATA`` or ``<root>/data``)."""
    return _dir("ADVSAMPLES_DATA", "data")


def checkpoint_dir() -> Path:
    """Folder of trained models (``$ADVSAMPLES_CHECKPOINTS`` or ``<root>/checkpoints``)."""
    return _dir("ADVSAMPLES_CHECKPOINTS", "checkpoints")


def results_dir() -> Path:
    """Folder of chapter results (``$ADVSAMPLES_RESULTS`` or ``<root>/results``)."""
    return _dir("ADVSAMPLES_RESULTS", "results")


def cache_dir() -> Path:
    """Folder of the chapters' cached runs (``$ADVSAMPLES_CACHE`` or ``<results>/cache``)."""
    value = os.environ.get("ADVSAMPLES_CACHE")
    return Path(value).resolve() if value else results_dir() / "cache"
