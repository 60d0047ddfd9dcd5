"""The shape every chapter shares: a validated ``Params``, a saved ``Result``, and one cache.

A chapter module ``advsamples.experiments.<chapter>`` holds::

    @dataclass(frozen=True)
    class Params(ChapterParams):
        chapter: ClassVar[str] = "fgsm"
        n_samples: int = param(2000, "test images attacked per model")

        def validate(self) -> None:
            check_count("n_samples", self.n_samples, 10000, "test images")

    @dataclass(frozen=True)
    class Result(ChapterResult):
        error: float
        curve: np.ndarray

    def run(params: Params, *, progress: bool = True) -> Result:
        return cached(params, Result, lambda: _compute(params, progress), models=[...])

- :class:`ChapterParams` validates on construction (``ValueError`` naming the parameter and its
  value), lists its fields with their comments (:meth:`ChapterParams.table`, the book's parameter
  table), and is built from a profile (:meth:`ChapterParams.from_profile`).
- :class:`ChapterResult` saves to and loads from JSON plus ``.npz`` (``allow_pickle=False``):
  no pickle anywhere.
- :func:`cached` keys a chapter's costly step by its ``Params``, the keys of the models it uses
  and a per-chapter format version; writes are atomic; a damaged entry is recomputed, never trusted.
- :func:`chunked` runs a long step in chunks saved one by one, so that a killed run resumes where
  it stopped and ends in the same arrays as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
from tqdm.auto import tqdm

from .artifacts import frozen, provenance, refuse
from .paths import cache_dir

__all__ = [
    "ChapterParams",
    "ChapterResult",
    "Headline",
    "add_resumed_seconds",
    "count_elsewhere",
    "cache_root",
    "cached",
    "last_provenance",
    "chunked",
    "digest",
    "param",
]

R = TypeVar("R", bound="ChapterResult")


def param(default: Any, doc: str) -> Any:
    """A ``Params`` field: its default (the quick profile's value) and its one-line comment.

    Lists and dicts are stored as given (frozen dataclasses keep them; :meth:`ChapterParams.as_dict`
    copies them), so a default may be a list.
    """
    if isinstance(default, list | dict | set):
        frozen = default
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def _jsonable(value: Any, *, nan_as_text: bool = True) -> Any:
    """Plain JSON values; non-finite floats as text (``"nan"``) unless ``nan_as_text=False``
    (a ``Result`` keeps them as floats: Python's JSON reads back its own ``NaN``)."""
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), nan_as_text=nan_as_text)
    if isinstance(value, np.generic):
        return _jsonable(value.item(), nan_as_text=nan_as_text)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, nan_as_text=nan_as_text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, nan_as_text=nan_as_text) for v in value]
    if nan_as_text and isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def digest(payload: Any, length: int = 24) -> str:
    """A stable hex digest of a JSON-able ``payload`` (sorted keys)."""
    text = json.dumps(_jsonable(payload), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class ChapterParams:
    """Base of a chapter's frozen ``Params`` dataclass; subclasses set ``chapter`` and extend
    ``validate`` (calling ``super().validate()``). Construction validates, so an invalid
    ``Params`` never exists. ``profile`` is recorded with the results and left out of cache keys."""

    chapter: ClassVar[str] = ""

    profile: str = param(
        "quick", "the params/<profile>.yml that produced this run (recorded with the results)"
    )
    schedule: str = param("quick", 'training schedule of the models: "quick" (CI-sized) or "paper"')

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad parameter and its value."""
        from .models import SCHEDULES
        from .params import check_choice

        check_choice("profile", self.profile, ["quick", "paper"])
        check_choice("schedule", self.schedule, list(SCHEDULES))

    @classmethod
    def field_names(cls) -> list[str]:
        """The parameters' names, in order."""
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> Self:
        """The ``Params`` whose fields a notebook's parameters cell defined (``globals()``)."""
        return cls(**{name: namespace[name] for name in cls.field_names() if name in namespace})

    def as_dict(self) -> dict[str, Any]:
        """The fields and their values (plain JSON-able copies)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Each field's one-line comment."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_profile(cls, profile: str, **overrides: Any) -> Self:
        """The parameters ``params/<profile>.yml`` gives this chapter (with ``overrides``).

        Raises:
            ValueError: on an unknown profile, a profile key that is not a parameter of the
                chapter, or an invalid value.
        """
        from .runner import notebook_parameters

        values = {**notebook_parameters(profile, cls.chapter), **overrides}
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """``cls(**values)``, with an unknown name refused by a message that lists the known ones."""
        names = cls.field_names()
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for chapter {cls.chapter!r}; its parameters are {names}"
            )
        return cls(**values)

    def table(self) -> Any:
        """The parameters as a table (parameter, value, meaning): what the book shows once. A
        pandas ``Styler`` (its ``.data`` the frame), so that no text is cut at pandas' column width
        and long values wrap inside the page."""
        import pandas as pd

        docs = self.docs()
        rows = [
            {"parameter": name, "value": _show(value), "meaning": docs[name]}
            for name, value in self.as_dict().items()
        ]
        frame = pd.DataFrame(rows).set_index("parameter")
        return frame.style.format(escape="html").set_properties(
            **{"text-align": "left", "white-space": "normal"}
        )


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- headline
@dataclass(frozen=True)
class Headline:
    """What a chapter opens with: its headline numbers beside the paper's, and at which scale.

    ``rows`` are ``(quantity, the paper's, ours)``, already worded; ``paper_scale`` and
    ``our_scale`` say what each number was measured on. Shown in a notebook as a boxed table
    (``_repr_html_``; the book's stylesheet draws the box).

    Raises:
        ValueError: for no rows, or a row that is not three texts.
    """

    source: str  # the paper and where it prints its numbers, e.g. "Papernot et al. (2016), Fig. 11"
    rows: tuple[tuple[str, str, str], ...]
    paper_scale: str
    our_scale: str

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("a headline needs at least one row, got rows=()")
        for row in self.rows:
            if len(row) != 3 or not all(isinstance(t, str) for t in row):
                raise ValueError(f"a headline row is (quantity, paper, ours) as texts, got {row!r}")

    def _repr_html_(self) -> str:
        from html import escape

        body = "".join(
            f"<tr><th>{escape(q)}</th><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for q, a, b in self.rows
        )
        return (
            '<div class="headline">'
            f'<p class="headline-title">Headline: {escape(self.source)} beside this study</p>'
            '<table class="headline-table"><thead><tr><th></th><th>paper</th><th>this study</th></tr>'
            f"</thead><tbody>{body}</tbody></table>"
            f'<p class="headline-scale"><b>Paper:</b> {escape(self.paper_scale)}. '
            f"<b>This study:</b> {escape(self.our_scale)}.</p></div>"
        )


# --------------------------------------------------------------------------- results
_ARRAYS = "arrays.npz"
_FIELDS = "result.json"


def _is_array_field(tp: Any) -> bool:
    return tp is np.ndarray or (isinstance(tp, str) and tp.replace("np.", "") == "ndarray")


@dataclass(frozen=True)
class ChapterResult:
    """Base of a chapter's frozen ``Result``: fields are JSON values (numbers, strings, lists,
    dicts of those) or ``np.ndarray`` (numeric or bool). Saved as ``result.json`` plus
    ``arrays.npz``; loading never unpickles."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.dtype == object:
                raise TypeError(f"{type(self).__name__}.{f.name}: object arrays cannot be saved safely")

    @classmethod
    def _array_fields(cls) -> set[str]:
        hints = typing.get_type_hints(cls)
        return {f.name for f in dataclasses.fields(cls) if _is_array_field(hints.get(f.name, f.type))}

    def to_json(self) -> dict[str, Any]:
        """The non-array fields as plain JSON values."""
        arrays = self._array_fields()
        return {
            f.name: _jsonable(getattr(self, f.name), nan_as_text=False)
            for f in dataclasses.fields(self)
            if f.name not in arrays
        }

    def save(self, folder: Path) -> None:
        """Write ``folder/result.json`` and ``folder/arrays.npz`` (the folder is replaced whole)."""
        arrays = {name: np.asarray(getattr(self, name)) for name in sorted(self._array_fields())}
        body = self.to_json()
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / _ARRAYS, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        body["__arrays_sha256__"] = hashlib.sha256((tmp / _ARRAYS).read_bytes()).hexdigest()
        # insertion order kept: a loaded Result iterates its dicts as the computed one did
        (tmp / _FIELDS).write_text(json.dumps(body, indent=1) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)  # a reader sees the old folder or the new one, never half of one

    @classmethod
    def load(cls, folder: Path) -> Self:
        """The result saved in ``folder``.

        Raises:
            ValueError: if a file is missing, altered (checksum) or does not match the fields.
        """
        try:
            body = json.loads((folder / _FIELDS).read_text())
            data = (folder / _ARRAYS).read_bytes()
            if hashlib.sha256(data).hexdigest() != body.pop("__arrays_sha256__", None):
                raise ValueError("arrays.npz does not match its recorded checksum")
            with np.load(folder / _ARRAYS, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            names = {f.name for f in dataclasses.fields(cls)}
            if set(body) | set(arrays) != names:
                raise ValueError(f"fields {sorted(set(body) | set(arrays))} are not {sorted(names)}")
            return cls(**body, **arrays)
        except ValueError as exc:
            raise ValueError(f"result {folder} is damaged: {exc}") from exc
        except (OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"result {folder} is damaged: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- cache
def cache_root() -> Path:
    """:func:`advsamples.paths.cache_dir`: every chapter's cache (git-ignored for CI-sized runs;
    a published profile's lives in ``results/<profile>/cache`` and is committed)."""
    return cache_dir()


def _entry(params: ChapterParams, version: int, models: Iterable[str], step: str) -> Path:
    fields = {k: v for k, v in params.as_dict().items() if k != "profile"}
    key = digest({"params": fields, "version": version, "models": sorted(models), "step": step})
    return cache_root() / params.chapter / f"{step}-{key}"


#: Seconds added to the wall time of a chapter's compute in its provenance: those of the chunks a
#: run read back instead of computing (a resumed run's earlier sessions), less those of the shared
#: runs it computed (:func:`count_elsewhere`).
_RESUMED = [0.0]
#: The provenance of each chapter's last result (read or computed) in this process.
_PROVENANCE: dict[str, dict[str, Any]] = {}
_PROVENANCE_FILE = "provenance.json"


def add_resumed_seconds(seconds: float) -> None:
    """Count ``seconds`` of earlier compute that a resumed step read back from its chunks."""
    _RESUMED[0] += float(seconds)


def count_elsewhere(seconds: float) -> None:
    """Leave ``seconds`` of compute out of the chapter's own time: that of a run saved to a cache
    that chapters share (a JSMA run), which records its own seconds and is counted once, as its
    own row of the run ledger (:func:`advsamples.experiments.runrecord.ledger`)."""
    _RESUMED[0] -= float(seconds)


def last_provenance(chapter: str) -> dict[str, Any] | None:
    """Provenance (commit, date, machine, device, threads, seconds) of ``chapter``'s result as
    last read or computed by :func:`cached` in this process; ``None`` if none."""
    return _PROVENANCE.get(chapter)


def cached(
    params: ChapterParams,
    result_type: type[R],
    compute: Callable[[], R],
    *,
    version: int,
    models: Iterable[str] = (),
    step: str = "result",
) -> R:
    """``compute()``'s result, from the cache when an intact entry exists.

    The entry is keyed by ``params`` (every field), the checkpoint keys ``models`` of the models
    the step uses, the chapter's format ``version`` and the ``step``'s name. A damaged entry is
    reported, recomputed and replaced; a new entry is written atomically, with the provenance of
    the run that computed it (:func:`advsamples.artifacts.provenance`). A step other than
    ``"result"`` read back inside a chapter's computation counts the seconds it records into the
    chapter's, as a resumed chunk does: its compute is the chapter's, done earlier.

    Raises:
        ArtifactError: while a published profile's book is built (:func:`advsamples.artifacts.frozen`),
            for a missing or damaged entry: published results are never recomputed.
    """
    folder = _entry(params, version, models, step)
    if folder.exists():
        try:
            result = result_type.load(folder)
        except ValueError as exc:
            if frozen():
                raise refuse(folder, f"damaged published result ({exc})", params.profile) from None
            warnings.warn(f"recomputing a damaged cache entry: {exc}", stacklevel=2)
        else:
            _remember(params, folder, step)
            if step != "result":  # a step of a chapter computed earlier (say, its benchmark)
                add_resumed_seconds(_recorded_seconds(folder))
            return result
    if frozen():
        raise refuse(folder, f"missing published result of chapter {params.chapter!r}", params.profile)
    resumed, _RESUMED[0] = _RESUMED[0], 0.0
    start = time.perf_counter()
    try:
        result = compute()
        seconds = time.perf_counter() - start + _RESUMED[0]
    finally:
        _RESUMED[0] = resumed
    result.save(folder)
    (folder / _PROVENANCE_FILE).write_text(json.dumps(provenance(seconds), indent=1) + "\n")
    _remember(params, folder, step)
    return result


def _recorded_seconds(folder: Path) -> float:
    """The seconds a cache entry's provenance records (0 when it records none)."""
    try:
        seconds = float(json.loads((folder / _PROVENANCE_FILE).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


def _remember(params: ChapterParams, folder: Path, step: str) -> None:
    if step != "result":
        return
    try:
        _PROVENANCE[params.chapter] = dict(json.loads((folder / _PROVENANCE_FILE).read_text()))
    except (OSError, ValueError):  # an entry cached before provenance was recorded
        unknown = "unknown (cached before provenance was recorded)"
        _PROVENANCE[params.chapter] = {
            "commit": unknown,
            "date": unknown,
            "machine": unknown,
            "device": unknown,
            "threads": 0,
            "torch": unknown,
            "seconds": math.nan,
        }


def chunked(
    params: ChapterParams,
    n_items: int,
    chunk_size: int,
    compute: Callable[[int, int], Mapping[str, np.ndarray]],
    *,
    version: int,
    models: Iterable[str] = (),
    step: str,
    progress: bool = False,
    desc: str = "",
    unit: str = "item",
) -> dict[str, np.ndarray]:
    """``compute(start, stop)`` over ``range(0, n_items, chunk_size)``, concatenated along axis 0.

    Each chunk's arrays are saved (atomically, with a checksum) as they are computed, under a key
    of ``params``, ``models``, ``version``, ``step`` and ``chunk_size``; a run killed mid-way
    resumes at the first missing chunk and loses at most the chunk it was computing. A damaged
    chunk is recomputed. The concatenation equals that of an uninterrupted run.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    folder = _entry(params, version, models, f"{step}-chunks{chunk_size}")
    folder.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, n_items, chunk_size))
    parts: list[Mapping[str, np.ndarray]] = []
    with tqdm(total=n_items, desc=desc or step, unit=unit, disable=not progress) as bar:
        for a in starts:
            b = min(a + chunk_size, n_items)
            path = folder / f"{a:09d}-{b:09d}.npz"
            part = _load_chunk(path)
            if part is None:
                if frozen():
                    raise refuse(path, "missing published chunk", params.profile)
                started = time.perf_counter()
                part = {k: np.asarray(v) for k, v in compute(a, b).items()}
                _save_chunk(path, part)
                path.with_suffix(".seconds").write_text(f"{time.perf_counter() - started:.3f}\n")
            else:
                add_resumed_seconds(_chunk_seconds(path))
            parts.append(part)
            bar.update(b - a)
    keys = list(parts[0])
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _save_chunk(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
    os.replace(tmp, path)
    path.with_suffix(".sha256").write_text(sha)


def _chunk_seconds(path: Path) -> float:
    try:
        return float(path.with_suffix(".seconds").read_text())
    except (OSError, ValueError):
        return 0.0


def _load_chunk(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        sha = path.with_suffix(".sha256").read_text().strip()
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise ValueError("checksum mismatch")
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        warnings.warn(f"recomputing damaged chunk {path.name} ({exc})", stacklevel=3)
        return None
