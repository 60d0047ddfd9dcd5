"""The chapters as functions: one module per chapter, so that notebooks stay thin views.

Each chapter module exposes a frozen ``Params`` (validated on construction, defaults = the quick
profile), ``run(params) -> Result`` (all of the chapter's work, cached), the glue values and the
figures as functions of the ``Result``. Shared pieces live in :mod:`advsamples.experiments.common`;
no chapter module imports another.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["CHAPTER_MODULES", "chapter_module"]

#: The module of each chapter notebook (the notebook's name → ``advsamples.experiments.<module>``).
CHAPTER_MODULES: dict[str, str] = {
    "models": "models",
    "formulation": "formulation",
    "fgsm": "fgsm",
    "lbfgs": "lbfgs",
    "jsma": "jsma",
    "hardness": "hardness",
    "transferability": "transfer",
    "optimal": "optimal",
    "advtrain": "advtrain",
    "libraries": "libraries",
    "gradflow": "gradflow",
    "runrecord": "runrecord",
}


def chapter_module(chapter: str) -> ModuleType:
    """The module of notebook ``chapter`` (``ValueError`` naming the known chapters otherwise)."""
    if chapter not in CHAPTER_MODULES:
        raise ValueError(f"unknown chapter={chapter!r}; the chapters are {list(CHAPTER_MODULES)}")
    return importlib.import_module(f"advsamples.experiments.{CHAPTER_MODULES[chapter]}")
