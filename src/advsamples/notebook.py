"""What every chapter does first: threads, seeds, plotting style, and its :class:`Recorder`."""

from __future__ import annotations

import os
from typing import Any

import torch

from .record import Recorder

__all__ = ["start", "threads_from_env"]


def threads_from_env() -> int:
    """``$ADVSAMPLES_THREADS`` if set, else every core this process may use."""
    value = os.environ.get("ADVSAMPLES_THREADS")
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(
                f"environment variable ADVSAMPLES_THREADS={value!r} must be a positive integer "
                "(the torch thread count); unset it to use every core"
            )
        return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def start(chapter: str, profile: str, params: dict[str, Any], seed: int = 0) -> Recorder:
    """Set torch's thread count and seed, a quiet plotting style, and return the chapter's recorder.

    ``params`` are the chapter's parameters (after validation); they are written beside the results.
    """
    import matplotlib
    import seaborn as sns

    torch.set_num_threads(threads_from_env())
    torch.manual_seed(seed)
    sns.set_theme(context="notebook", style="white")
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight"})
    rec = Recorder(chapter, profile, {k: v for k, v in params.items()})
    rec("profile", profile)  # ``threads`` is glued by ``rec.provenance()``: the run's, not this build's
    return rec
