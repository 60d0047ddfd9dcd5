"""Headline figures of a chapter: glued into the book and written to ``results/<profile>/<chapter>.json``.

>>> rec = Recorder("fgsm", "quick", {"eps": 0.25})          # doctest: +SKIP
>>> rec("error_fc10", 0.999)   # glued as fgsm.ipynb::error_fc10, stored in the JSON   # doctest: +SKIP
>>> rec.save()                                                              # doctest: +SKIP

Two runs can then be compared exactly with ``diff results/a/fgsm.json results/b/fgsm.json``.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .paths import results_dir

__all__ = ["Recorder", "load_results", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Tensors, numpy values, tuples and non-finite floats as plain JSON values."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Recorder:
    """Glue a value into the book (``myst_nb.glue``) and keep it for the chapter's results file."""

    def __init__(self, chapter: str, profile: str, params: dict[str, Any]) -> None:
        self.chapter = chapter
        self.profile = profile
        self.params = to_jsonable(params)
        self.values: dict[str, Any] = {}
        self.run_provenance: dict[str, Any] | None = None

    def __call__(self, key: str, value: Any, *, display: bool = False) -> None:
        """Record and glue ``value`` under ``key``.

        Returns nothing, so that a cell ending in a call shows no stray output in the book.
        """
        from myst_nb import glue

        if key in self.values:
            raise KeyError(f"{key!r} was already recorded in chapter {self.chapter}")
        if isinstance(value, torch.Tensor | np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
            value = value.item()  # glue plain numbers, so that the book can format them (`:.1%`)
        self.values[key] = to_jsonable(value)
        glue(key, value, display=display)

    def figure(self, key: str, fig: Any) -> None:
        """Glue a matplotlib figure (shown in the chapter where the cell is, reusable elsewhere)."""
        from myst_nb import glue

        glue(key, fig, display=False)

    def provenance(self) -> None:
        """Glue where the chapter's result comes from (``prov_commit``, ``prov_date``,
        ``prov_machine``, ``prov_device``, ``prov_threads`` (also as ``threads``), ``prov_minutes``):
        the provenance of the
        run that computed it, as its cache entry records it (for a published profile, the
        committed run, not this build). Kept apart from the results in the saved file."""
        from myst_nb import glue

        from .chapter import last_provenance

        prov = last_provenance(self.chapter)
        if prov is None:
            raise ValueError(
                f"chapter {self.chapter!r} has no run yet: call its run() before rec.provenance()"
            )
        self.run_provenance = dict(prov)
        values = {
            "prov_commit": prov["commit"],
            "prov_date": prov["date"],
            "prov_machine": prov["machine"],
            "prov_device": prov["device"],
            "prov_threads": prov["threads"],
            "prov_minutes": prov["seconds"] / 60,
            # the thread count the chapter's prose quotes: the one its numbers were computed with
            "threads": prov["threads"],
        }
        for key, value in values.items():
            glue(key, value, display=False)

    def save(self) -> Path:
        """Write ``results/<profile>/<chapter>.json`` (sorted keys, so that runs diff cleanly).

        While a published profile's book is built (:func:`advsamples.artifacts.frozen`) the
        committed file is not rewritten: the values glued now must equal it.

        Raises:
            ArtifactError: if they do not (the committed results and the book would disagree).
        """
        from .artifacts import frozen, refuse

        out = results_dir() / self.profile / f"{self.chapter}.json"
        payload = {
            "chapter": self.chapter,
            "profile": self.profile,
            "params": self.params,
            "results": self.values,
            "provenance": self.run_provenance,
            "environment": {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "python": platform.python_version(),
            },
        }
        if frozen():
            try:
                committed = json.loads(out.read_text())
            except (OSError, ValueError):
                raise refuse(out, "missing published record", self.profile) from None
            fresh = json.loads(json.dumps(payload))  # the JSON form of what this build glued
            for part in ("params", "results"):
                if committed.get(part) != fresh[part]:
                    keys = sorted(
                        k
                        for k in set(committed.get(part) or {}) | set(fresh[part])
                        if (committed.get(part) or {}).get(k) != fresh[part].get(k)
                    )
                    raise refuse(
                        out, f"the book's {part} differ from the published record at {keys[:5]}", self.profile
                    )
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return out


def load_results(profile: str, chapter: str) -> dict[str, Any] | None:
    """A chapter's saved results, or ``None`` if that profile has not been run."""
    path = results_dir() / profile / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else None
