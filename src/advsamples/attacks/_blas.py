"""Keep the BLAS libraries bundled with NumPy and SciPy on one thread while a block runs.

SciPy's L-BFGS-B works on one sample's 784 values at a time: its BLAS calls are far too small to
gain from threads, and on a busy 2-core CPU the idle OpenBLAS thread spins while it waits for a core
(measured: 3 LeNet samples took 18.8 s with OpenBLAS's default 2 threads, 2.0 s on one).
``torch.set_num_threads`` does not reach these pools.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["single_threaded_blas"]


def _openblas_setters() -> list[tuple[Callable[[int], None], int]]:
    """``(set_num_threads, current)`` for every OpenBLAS loaded in this process (NumPy and SciPy each
    bundle one); empty where none is found or ``/proc/self/maps`` does not exist (not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", ""), ("scipy_openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                found.append((put, int(get())))
                break
    return found


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with every loaded OpenBLAS on one thread, restoring the counts afterwards.

    The attack runs SciPy's L-BFGS-B on one sample (784 values) at a time; its BLAS calls are far too
    small to gain from threads, and on a shared CPU the idle BLAS thread spins while it waits for a
    core. Measured on the study's 2-core machine with both cores busy with other work, 3 LeNet samples
    took 18.8 s (CPU time 18.8 s) with SciPy's OpenBLAS on its default 2 threads and 2.0 s on one.
    ``torch.set_num_threads`` (what ``$ADVSAMPLES_THREADS`` sets) does not reach these pools.
    """
    setters = _openblas_setters()
    for put, _ in setters:
        put(1)
    try:
        yield
    finally:
        for put, n in setters:
            put(n)
