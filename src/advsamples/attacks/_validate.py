"""Argument checks and model-state guards shared by every attack, and the channels-last copy
of a model that the image attacks run on.

Each check raises :class:`ValueError` naming the offending argument and value, so that a
notebook parameter typo stops with a message a reader can act on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = [
    "channels_last_copy",
    "check_clip",
    "check_finite_nonneg",
    "check_inputs",
    "check_int",
    "check_positive",
    "check_labels",
    "num_classes",
    "frozen",
]


def check_clip(clip: tuple[float, float]) -> tuple[float, float]:
    """Return ``clip`` as two floats, rejecting ``min >= max`` and non-finite bounds."""
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError):
        raise ValueError(f"clip must be a pair (min, max), got {clip!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ValueError(f"clip must satisfy finite min < max, got clip={clip!r}")
    return lo, hi


def check_finite_nonneg(name: str, value: float) -> float:
    """Return ``value`` as a float, rejecting negative, NaN and infinite values."""
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    return v


def check_positive(name: str, value: float) -> float:
    """Return ``value`` as a float, rejecting zero, negative, NaN and infinite values."""
    v = check_finite_nonneg(name, value)
    if v == 0:
        raise ValueError(f"{name} must be > 0, got {name}={value!r}")
    return v


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int, rejecting booleans, non-integers and values outside
    ``[minimum, maximum]`` (no upper bound when ``maximum`` is None)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        number = None
    else:
        number = int(value)
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, got {name}={value!r}")
    return number


def check_inputs(x: torch.Tensor, clip: tuple[float, float]) -> None:
    """Reject an ``x`` that is not a floating tensor of shape (N, ...) inside ``clip``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch shaped (N, ...), got shape {tuple(x.shape)}")
    lo, hi = clip
    xmin, xmax = float(x.min()), float(x.max())
    if not (math.isfinite(xmin) and math.isfinite(xmax)) or xmin < lo or xmax > hi:
        raise ValueError(f"x must lie inside clip={clip}, but its values span [{xmin:g}, {xmax:g}]")


def check_labels(name: str, y: torch.Tensor, batch: int, classes: int) -> torch.Tensor:
    """Return ``y`` as an int64 tensor of shape (batch,) with values in [0, classes)."""
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(y)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if tuple(y.shape) != (batch,):
        raise ValueError(f"{name} must have shape ({batch},) to match x, got {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise ValueError(
            f"{name} must lie in [0, {classes}) (the model has {classes} classes), "
            f"got values in [{int(y.min())}, {int(y.max())}]"
        )
    return y.long()


def num_classes(logits: torch.Tensor) -> int:
    """Number of classes, read from a logits tensor shaped (N, classes)."""
    if logits.dim() != 2:
        raise ValueError(f"the model must return logits shaped (N, classes), got {tuple(logits.shape)}")
    return int(logits.shape[1])


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Run an attack without leaving a trace on ``model``.

    Parameters stop requiring gradients for the duration (so no graph is built for them and
    their ``.grad`` is never written); their ``requires_grad`` flags and the model's train/eval
    mode are restored on exit, even when the attack raises.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    mode = model.training
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(mode)


def channels_last_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in the channels-last memory format, for 4-D image inputs.

    On CPU, oneDNN's convolutions run the LeNet's forward derivative about 1.7x faster in this
    layout; the results agree with the original up to float rounding. ``model`` is not changed.
    """
    return copy.deepcopy(model).to(memory_format=torch.channels_last)
