"""The device the study's runs use: ``$ADVSAMPLES_DEVICE`` (``cpu`` or ``cuda``), else CUDA when
it is available, else the CPU. The manifest of published results records it."""

from __future__ import annotations

import os

import torch

__all__ = ["DEVICE_ENV", "device"]

DEVICE_ENV = "ADVSAMPLES_DEVICE"


def device() -> torch.device:
    """The study's device.

    Raises:
        ValueError: if ``$ADVSAMPLES_DEVICE`` is neither ``cpu`` nor ``cuda``, or asks for CUDA
            on a machine without it.
    """
    value = os.environ.get(DEVICE_ENV, "").strip().lower()
    if value not in ("", "cpu", "cuda"):
        raise ValueError(f"environment variable {DEVICE_ENV}={value!r} must be 'cpu' or 'cuda' (or unset)")
    if value == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}=cuda, but torch sees no CUDA device here; unset it to use the CPU")
    if value == "cpu" or (not value and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")
