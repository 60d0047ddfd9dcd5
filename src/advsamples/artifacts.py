"""Published results: the committed artifacts of a profile, their manifest and their provenance.

A *published* profile (``publish: true`` in ``params/<profile>.yml``; the paper profile) keeps
everything its book reads under ``results/<profile>/``, in the repository:

- ``checkpoints/``: the trained models (``weights_only`` torch files);
- ``cache/``: each chapter's :class:`~advsamples.chapter.ChapterResult` entry (with the
  ``provenance.json`` of the run that computed it) and the compact per-attack arrays of the JSMA
  runs (the intermediate chunks of the other attacks are not kept);
- ``<chapter>.json``: the values each chapter glues into the book;
- ``manifest.json``: the SHA-256 and size of every one of those files, and the provenance (commit,
  date, machine, device, torch threads, seconds) of each chapter's run and of each checkpoint.

``make paper`` computes them (resumably) and writes the manifest; ``make book`` verifies the
manifest and then reads them *frozen* (:func:`frozen`): a missing or altered artifact stops the
build with an :class:`ArtifactError` that names the file and the two ways on. Nothing is
recomputed into, or silently read from, a damaged published result.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .paths import project_root, results_dir

__all__ = [
    "ArtifactError",
    "FROZEN_ENV",
    "MANIFEST",
    "device_name",
    "frozen",
    "frozen_env",
    "machine_name",
    "profile_env",
    "profile_dir",
    "provenance",
    "published",
    "refuse",
    "verify_manifest",
    "write_manifest",
]

#: Set (to ``1``) while a published profile's book is built: every costly step must come from the
#: committed artifacts.
FROZEN_ENV = "ADVSAMPLES_FROZEN"
#: The manifest's file name, in ``results/<profile>/``.
MANIFEST = "manifest.json"


class ArtifactError(RuntimeError):
    """A published artifact is missing or altered, or would have to be recomputed."""


def frozen() -> bool:
    """Whether this process reads published artifacts only (``$ADVSAMPLES_FROZEN``)."""
    return os.environ.get(FROZEN_ENV, "") not in ("", "0")


def _ways_on(profile: str) -> str:
    return (
        f"The published {profile} results are read, never recomputed, by the book build: run "
        f"`make paper` to recompute them (hours on a CPU; it resumes), or build the CI-sized book "
        "with `make book PROFILE=quick`."
    )


def refuse(path: Path | str, why: str, profile: str = "paper") -> ArtifactError:
    """The error for an artifact that is ``why`` (missing, altered...) at ``path``."""
    return ArtifactError(f"{why}: {_show(path)}. {_ways_on(profile)}")


def _show(path: Path | str) -> str:
    p = Path(path)
    with contextlib.suppress(ValueError):
        return str(p.resolve().relative_to(project_root()))
    return str(p)


# --------------------------------------------------------------------------- profiles
def published(profile: str) -> bool:
    """Whether ``params/<profile>.yml`` says ``publish: true`` (its results are committed)."""
    from .runner import load_profile

    return bool(load_profile(profile).get("publish", False))


def profile_dir(profile: str) -> Path:
    """``results/<profile>/``: where a profile's records (and, if published, artifacts) live."""
    return results_dir() / profile


def profile_env(profile: str) -> dict[str, str]:
    """The environment a profile's runs use: a published profile keeps its cache and checkpoints
    in ``results/<profile>/`` (committed), the others in the git-ignored defaults."""
    if not published(profile):
        return {}
    root = profile_dir(profile)
    return {"ADVSAMPLES_CACHE": str(root / "cache"), "ADVSAMPLES_CHECKPOINTS": str(root / "checkpoints")}


@contextlib.contextmanager
def frozen_env(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``env`` inside the block (restored after)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- provenance
def machine_name() -> str:
    """The CPU model and core count, e.g. ``"AMD EPYC 7B13, 2 cores"``."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def device_name() -> str:
    """Where the study's training and JSMA runs compute: ``"cpu"``, or ``"cuda (<name>)"``
    (:func:`advsamples.device.device`; the L-BFGS and FGSM attacks stay on the CPU)."""
    from .device import device

    d = device()
    if d.type == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(d)}) for training and JSMA, cpu for the rest"
    return "cpu"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(project_root()), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(project_root()), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out + ("+changes" if dirty else "")


#: The code this process runs: read once, when it imports this module (a commit made while a
#: long run goes on is not the code that run used).
_COMMIT_AT_START = _commit()


def provenance(seconds: float) -> dict[str, Any]:
    """Where and how a run was made: code commit (``+changes`` if ``src/`` differed from it),
    UTC date, machine, device, torch threads and the run's ``seconds``."""
    import torch

    return {
        "commit": _COMMIT_AT_START,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_name(),
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "seconds": round(float(seconds), 1),
    }


# --------------------------------------------------------------------------- manifest
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tracked_files(root: Path) -> list[Path]:
    """Every file under ``root`` that git would keep (ignored files, such as the intermediate
    attack chunks, left out), without the manifest itself."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST and ".tmp" not in p.name)
    try:
        out = subprocess.run(
            ["git", "-C", str(project_root()), "check-ignore", "--stdin"],
            input="\n".join(str(p) for p in files),
            capture_output=True,
            text=True,
        ).stdout
    except OSError:
        return files
    ignored = {Path(line) for line in out.splitlines() if line}
    return [p for p in files if p not in ignored]


def write_manifest(profile: str = "paper") -> Path:
    """Write ``results/<profile>/manifest.json`` over the profile's artifacts."""
    import torch

    root = profile_dir(profile)
    files = _tracked_files(root)
    chapters: dict[str, Any] = {}
    for record in sorted(root.glob("*.json")):
        if record.name in (MANIFEST, "timings.json"):
            continue
        body = json.loads(record.read_text())
        if "chapter" in body:
            chapters[body["chapter"]] = body.get("provenance")
    checkpoints: dict[str, Any] = {}
    for ckpt in sorted((root / "checkpoints").glob("*.pt")):
        raw = torch.load(ckpt, map_location="cpu", weights_only=True).get("meta", "{}")
        meta = json.loads(raw) if isinstance(raw, str) else dict(raw)
        checkpoints[ckpt.name] = {
            "name": meta.get("name"),
            "epochs": (meta.get("config") or {}).get("epochs"),
            "test_accuracy": meta.get("test_accuracy"),
            "train_seconds": meta.get("train_seconds"),
            "threads": meta.get("threads"),
            "torch": meta.get("torch"),
        }
    body = {
        "profile": profile,
        "written": provenance(0.0) | {"seconds": None},
        "chapters": chapters,
        "checkpoints": checkpoints,
        "files": {
            p.relative_to(root).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files
        },
    }
    out = root / MANIFEST
    out.write_text(json.dumps(body, indent=1) + "\n")
    return out


def load_manifest(profile: str = "paper") -> dict[str, Any]:
    """The profile's manifest.

    Raises:
        ArtifactError: if it is missing or unreadable.
    """
    path = profile_dir(profile) / MANIFEST
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise refuse(path, "no manifest of the published results", profile) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise refuse(path, f"unreadable manifest ({exc})", profile) from None


def verify_manifest(profile: str = "paper") -> int:
    """Check every file the manifest lists against its SHA-256; return how many were checked.

    Raises:
        ArtifactError: naming the first file that is missing or altered.
    """
    root = profile_dir(profile)
    files = load_manifest(profile)["files"]
    for rel, entry in files.items():
        path = root / rel
        if not path.is_file():
            raise refuse(path, "missing published artifact", profile)
        if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            raise refuse(
                path, "altered published artifact (its SHA-256 differs from the manifest's)", profile
            )
    return len(files)
