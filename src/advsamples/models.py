"""The study's models, their training, and a checkpoint cache keyed by the whole configuration.

Every model maps images ``(N, 1, 28, 28)`` in [0, 1] to logits ``(N, classes)``.

==================  =====================================================================  ==========
name                what                                                                   source
==================  =====================================================================  ==========
``lenet_paper``     conv 20@5×5, max-pool 2, conv 50@5×5, max-pool 2, fc 500, 10; tanh;     Papernot
                    SGD lr 0.1, batch 500, trained on the first 50,000 images (Theano
                    tutorial LeNet, its Glorot-uniform initialisation)
``lenet_relu``      the same shape with ReLU, Adam lr 1e-3, batch 128                      this study
``fc10``            softmax regression with weight decay λ (``weight_decay``)               Szegedy
``fc100_100_10``    two sigmoid hidden layers of 100                                        Szegedy
``fc200_200_10``    two sigmoid hidden layers of 200                                        Szegedy
``logreg_3v7``      binary logistic regression, 3 (class 0) versus 7 (class 1)              Goodfellow
``lenet_paper_fgsm`` ``lenet_paper`` trained on the adversarial objective α·J(x, y) +          Goodfellow
                    (1 − α)·J(x + ε·sign ∇ₓJ, y), α = 0.5, ε = 0.25
==================  =====================================================================  ==========

:func:`get_model` returns a trained model in eval mode, training it first (seeded, deterministic,
with a progress bar) when no checkpoint matches its configuration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from . import data as _data
from .attacks.fgsm import fgsm
from .paths import checkpoint_dir

__all__ = [
    "DEFENDED_NAMES",
    "EXTRA_NAMES",
    "CWNet",
    "InputStep",
    "MLP",
    "MODEL_NAMES",
    "SCHEDULES",
    "CheckpointError",
    "TEXTBOOK_DECAY_FACTOR",
    "TrainConfig",
    "TrainedInfo",
    "build_model",
    "config_for",
    "evaluate",
    "get_model",
    "load_checkpoint",
    "model_info",
    "training_data",
    "MODEL_KEYS",
    "SZEGEDY_KEYS",
    "DISJOINT_MODELS",
    "fc10_key",
    "info",
    "load",
    "model_spec",
    "slug",
    "textbook_decay",
    "quantize",
]

Activation = Literal["tanh", "relu", "sigmoid"]


# --------------------------------------------------------------------------- architectures
class LeNet(nn.Module):
    """LeNet-5 as in the Theano deep-learning tutorial (Papernot et al.'s MNIST model).

    conv 20@5×5 → max-pool 2 → act → conv 50@5×5 → max-pool 2 → act → fc 500 → act → fc ``classes``.
    """

    def __init__(self, activation: Activation = "tanh", classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, classes)
        self.act: Callable[[torch.Tensor], torch.Tensor] = _ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(nn.functional.max_pool2d(self.conv1(x), 2))
        x = self.act(nn.functional.max_pool2d(self.conv2(x), 2))
        x = self.act(self.fc1(x.flatten(1)))
        return self.fc2(x)

    def theano_init_(self, generator: torch.Generator) -> None:
        """The tutorial's initialisation: U(±sqrt(6 / (fan_in + fan_out))) with fan_out divided by
        the pooling area for convolutions, zero biases, and a zero-initialised output layer."""
        for conv in (self.conv1, self.conv2):
            k = conv.kernel_size[0] * conv.kernel_size[1]
            bound = math.sqrt(6.0 / (conv.in_channels * k + conv.out_channels * k / 4))
            conv.weight.data.uniform_(-bound, bound, generator=generator)
            assert conv.bias is not None
            conv.bias.data.zero_()
        bound = math.sqrt(6.0 / (self.fc1.in_features + self.fc1.out_features))
        self.fc1.weight.data.uniform_(-bound, bound, generator=generator)
        self.fc1.bias.data.zero_()
        self.fc2.weight.data.zero_()
        self.fc2.bias.data.zero_()


class MLP(nn.Module):
    """Fully connected network ``784 → hidden… → classes`` (``hidden=()`` is softmax regression)."""

    def __init__(
        self, hidden: tuple[int, ...], activation: Activation = "sigmoid", classes: int = 10
    ) -> None:
        super().__init__()
        sizes = (28 * 28, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.out = nn.Linear(sizes[-1], classes)
        self.act = _ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


class CWNet(nn.Module):
    """Carlini and Wagner's MNIST model (their Table I, arXiv 1608.04644): a larger CNN.

    conv 32@3×3 → ReLU → conv 32@3×3 → ReLU → max-pool 2 → conv 64@3×3 → ReLU → conv 64@3×3 →
    ReLU → max-pool 2 → fc 200 → ReLU → fc 200 → ReLU → fc ``classes``. Their dropout (0.5 after
    the first fc layer) is left out, so that training stays a function of its seed alone across a
    resume (dropout would draw from the global generator, which the resumable state does not hold).
    """

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.conv4 = nn.Conv2d(64, 64, 3)
        self.fc1 = nn.Linear(64 * 4 * 4, 200)
        self.fc2 = nn.Linear(200, 200)
        self.fc3 = nn.Linear(200, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu, pool = torch.relu, nn.functional.max_pool2d
        x = pool(relu(self.conv2(relu(self.conv1(x)))), 2)
        x = pool(relu(self.conv4(relu(self.conv3(x)))), 2)
        x = relu(self.fc2(relu(self.fc1(x.flatten(1)))))
        return self.fc3(x)


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    r"""Each pixel of ``x`` (in [0, 1]) rounded to the nearest of ``levels`` evenly spaced values,
    :math:`q(x) = \lfloor (L - 1)\,x + \tfrac12 \rfloor / (L - 1)`; ``levels = 2`` binarises at
    0.5 (0.5 itself goes up). Its derivative is 0 wherever it exists.

    Raises:
        ValueError: for ``levels`` not an integer >= 2.
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got levels={levels!r}")
    k = levels - 1
    return torch.floor(x * k + 0.5) / k


class InputStep(nn.Module):
    r"""A classifier behind a non-differentiable input step: ``net(quantize(x, levels))``.

    The forward pass is the same with or without ``straight_through``; the backward pass is not:

    - ``straight_through=False``: autograd differentiates the step, whose derivative is zero
      almost everywhere, so the input gradient of any loss is exactly zero (a *masked*
      gradient);
    - ``straight_through=True``: the step is replaced by the identity in the backward pass,
      :math:`q(x) \approx x` (BPDA, Athalye et al. 2018, arXiv 1802.00420, Sec. 4.1): the input
      gradient is the network's gradient at :math:`q(x)`.

    Example:
        >>> binarised = InputStep(lenet, levels=2)  # doctest: +SKIP
        >>> bpda = InputStep(lenet, levels=2, straight_through=True)  # doctest: +SKIP
    """

    def __init__(self, net: nn.Module, levels: int, straight_through: bool = False) -> None:
        super().__init__()
        quantize(torch.zeros(1), levels)  # validates levels
        self.net = net
        self.levels = levels
        self.straight_through = bool(straight_through)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = quantize(x, self.levels)
        if self.straight_through:
            # forward: q(x); backward: d q / d x := 1
            q = x + (q - x).detach()
        return self.net(q)


class BinaryLogistic(nn.Module):
    """Binary logistic regression ``p(class 1 | x) = σ(w·x + b)`` as two logits ``(0, w·x + b)``,
    so that softmax cross-entropy on them is exactly the logistic loss."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x.flatten(1))
        return torch.cat([torch.zeros_like(z), z], dim=1)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
}


# --------------------------------------------------------------------------- configuration
DataName = Literal["train50k", "train60k", "half1", "half2", "3v7"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model; its hash is the checkpoint's key."""

    arch: Literal["lenet", "mlp", "binary_logistic", "cwnet"]
    activation: Activation = "tanh"
    hidden: tuple[int, ...] = ()
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.1
    batch_size: int = 500
    epochs: int = 1
    weight_decay: float = 0.0
    data: DataName = "train60k"
    seed: int = 0
    theano_init: bool = False
    #: Goodfellow et al.'s adversarial objective (their Eq. 6) when ``adv_eps > 0``:
    #: ``adv_alpha`` · J(x, y) + (1 − ``adv_alpha``) · J(x + ``adv_eps`` · sign ∇ₓJ(x, y), y),
    #: the FGSM samples crafted against the current weights at every minibatch.
    adv_eps: float = 0.0
    adv_alpha: float = 0.5
    #: A recipe key of extra training samples appended to ``data`` (empty: none), for example
    #: adversarial samples crafted by a chapter; the caller supplies them (:func:`get_model`).
    extra: str = ""

    def key(self) -> str:
        """Digest of this configuration and of the data checksum. The adversarial-objective
        fields enter it only when the objective is on, so every plain configuration keeps the
        key (and the checkpoint) it had before those fields existed; so does ``extra``."""
        config = dataclasses.asdict(self)
        if not self.adv_eps:
            del config["adv_eps"], config["adv_alpha"]
        if not self.extra:
            del config["extra"]
        payload = json.dumps({"config": config, "data": _data.data_checksum()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def trajectory_key(self) -> str:
        """Digest of this configuration but its number of epochs (and of the data checksum): the
        runs of one configuration to different lengths share their first epochs exactly."""
        return dataclasses.replace(self, epochs=0).key()


# Base configurations; the number of epochs comes from a schedule (or an explicit override).
_BASE: dict[str, TrainConfig] = {
    "lenet_paper": TrainConfig(
        "lenet", "tanh", optimizer="sgd", lr=0.1, batch_size=500, data="train50k", theano_init=True
    ),
    "lenet_relu": TrainConfig("lenet", "relu", optimizer="adam", lr=1e-3, batch_size=128, data="train50k"),
    "fc10": TrainConfig("mlp", "sigmoid", (), optimizer="adam", lr=1e-3, batch_size=128, weight_decay=1e-4),
    "fc100_100_10": TrainConfig("mlp", "sigmoid", (100, 100), optimizer="adam", lr=1e-3, batch_size=128),
    "fc200_200_10": TrainConfig("mlp", "sigmoid", (200, 200), optimizer="adam", lr=1e-3, batch_size=128),
    "logreg_3v7": TrainConfig("binary_logistic", optimizer="adam", lr=1e-3, batch_size=128, data="3v7"),
    # The paper's LeNet trained on Goodfellow et al.'s adversarial objective (α = 0.5, ε = 0.25).
    # The paper's LeNet trained on its data plus JSMA samples (Papernot et al.'s adversarial
    # training); the adversarial-training chapter crafts them and names them (``extra``).
    "lenet_paper_jsma": TrainConfig(
        "lenet", "tanh", optimizer="sgd", lr=0.1, batch_size=500, data="train50k", theano_init=True
    ),
    "lenet_paper_fgsm": TrainConfig(
        "lenet",
        "tanh",
        optimizer="sgd",
        lr=0.1,
        batch_size=500,
        data="train50k",
        theano_init=True,
        adv_eps=0.25,
        adv_alpha=0.5,
    ),
    # Carlini and Wagner's MNIST CNN (their Table I and train_models.py: batch 128; Adam here in
    # place of their SGD with momentum, no dropout), the libraries chapter's larger model.
    "cwnet": TrainConfig("cwnet", "relu", optimizer="adam", lr=1e-3, batch_size=128, data="train50k"),
}
#: The defended models of the adversarial-training chapter, trained only when it asks for them.
DEFENDED_NAMES: tuple[str, ...] = ("lenet_paper_fgsm", "lenet_paper_jsma")
#: Models of one chapter beyond the papers' (the libraries chapter's larger CNN), trained only
#: when it asks for them; they are model keys, but not of every chapter's default set.
EXTRA_NAMES: tuple[str, ...] = ("cwnet",)
#: The models that train on extra samples a chapter supplies (:attr:`TrainConfig.extra`).
_NEEDS_EXTRA = frozenset({"lenet_paper_jsma"})
#: The models trained on the plain objective: the ones the papers' chapters use (and train).
MODEL_NAMES: tuple[str, ...] = tuple(name for name in _BASE if name not in (*DEFENDED_NAMES, *EXTRA_NAMES))

#: Epochs per model: ``quick`` sizes the whole book for CI on a 2-core CPU; ``paper`` is the papers'
#: scale where a paper states it (Papernot: 200 epochs for the LeNet) and convergence elsewhere.
SCHEDULES: dict[str, dict[str, int]] = {
    "quick": {
        "lenet_paper": 3,
        "lenet_relu": 1,
        "fc10": 10,
        "fc100_100_10": 20,
        "fc200_200_10": 20,
        "logreg_3v7": 20,
        "lenet_paper_fgsm": 3,
        "lenet_paper_jsma": 3,
        "cwnet": 1,
    },
    "paper": {
        "lenet_paper": 200,
        "lenet_relu": 20,
        "fc10": 50,
        "fc100_100_10": 50,
        "fc200_200_10": 50,
        "logreg_3v7": 50,
        # the same 50 epochs as the clean LeNet it is compared with (its 50th epoch)
        "lenet_paper_fgsm": 50,
        "lenet_paper_jsma": 50,
        # C&W's 50 epochs
        "cwnet": 50,
    },
}


def config_for(name: str, schedule: str = "quick", **overrides: Any) -> TrainConfig:
    """The training configuration of model ``name`` under ``schedule``, with field ``overrides``
    (for example ``weight_decay=1.0`` or ``data="half2"``)."""
    if name not in _BASE:
        raise ValueError(f"unknown model name={name!r}; choose one of {', '.join(_BASE)}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule={schedule!r}; choose one of {', '.join(SCHEDULES)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValueError(f"unknown training option(s) {bad}; allowed: {sorted(fields)}")
    cfg = dataclasses.replace(_BASE[name], epochs=SCHEDULES[schedule][name])
    cfg = dataclasses.replace(cfg, **overrides)
    if cfg.epochs < 1 or cfg.batch_size < 1 or not cfg.lr > 0 or cfg.weight_decay < 0:
        raise ValueError(f"invalid training configuration for {name}: {cfg}")
    if name in _NEEDS_EXTRA and not cfg.extra:
        raise ValueError(f"model {name} trains on extra samples: name them with extra=<their recipe key>")
    if not (math.isfinite(cfg.adv_eps) and cfg.adv_eps >= 0) or not 0 <= cfg.adv_alpha <= 1:
        raise ValueError(
            f"invalid adversarial objective for {name}: adv_eps={cfg.adv_eps!r} must be finite "
            f"and >= 0, adv_alpha={cfg.adv_alpha!r} in [0, 1]"
        )
    return cfg


def build_model(cfg: TrainConfig) -> nn.Module:
    """An untrained model of ``cfg``'s architecture (default PyTorch initialisation)."""
    if cfg.arch == "lenet":
        return LeNet(cfg.activation)
    if cfg.arch == "mlp":
        return MLP(cfg.hidden, cfg.activation)
    if cfg.arch == "cwnet":
        return CWNet()
    return BinaryLogistic()


# --------------------------------------------------------------------------- data for training
def training_data(cfg: TrainConfig, mnist: _data.MNIST | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(x, y)`` a configuration trains on."""
    m = mnist or _data.load_mnist()
    x, y = m.x_train, m.y_train
    if cfg.data == "train50k":
        return x[:50000], y[:50000]
    if cfg.data == "half1":
        return x[:30000], y[:30000]
    if cfg.data == "half2":
        return x[30000:], y[30000:]
    if cfg.data == "3v7":
        return binary_3v7(x, y)
    return x, y


def binary_3v7(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3s and 7s of ``(x, y)``, relabelled 3 → 0 and 7 → 1 (Goodfellow et al.'s Fig. 2 task)."""
    keep = (y == 3) | (y == 7)
    return x[keep], (y[keep] == 7).long()


def evaluation_set(name: str, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The part of ``(x, y)`` that model ``name`` classifies, in its own labels."""
    return binary_3v7(x, y) if _BASE[name].data == "3v7" else (x, y)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Accuracy of ``model`` on ``(x, y)``."""
    dev = next(model.parameters()).device  # the batches go where the model is (CPU or CUDA)
    correct = 0
    for i in range(0, len(x), batch_size):
        pred = model(x[i : i + batch_size].to(dev)).argmax(1)
        correct += int((pred == y[i : i + batch_size].to(dev)).sum())
    return correct / len(x)


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainedInfo:
    """What a checkpoint records besides the weights."""

    name: str
    config: TrainConfig
    key: str
    test_accuracy: float
    train_seconds: float
    threads: int
    path: Path = field(compare=False)
    history: tuple[float, ...] = ()  # test accuracy after each epoch


def train(
    cfg: TrainConfig,
    *,
    progress: bool = True,
    desc: str = "",
    monitor: Callable[[nn.Module], float] | None = None,
    state_path: Path | None = None,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[nn.Module, float, list[float]]:
    """Train a model of ``cfg`` from its seed, resumably.

    Trains on :func:`advsamples.device.device` (CUDA when available) and returns the model on
    the CPU (eval mode), the seconds spent training (monitoring excluded) and
    ``monitor(model)`` after each epoch (empty without a monitor). Deterministic: the
    initialisation and every minibatch order come from ``cfg.seed`` alone.

    With ``state_path``, the full training state (weights, optimiser, minibatch RNG, epoch,
    history, seconds) is written there atomically after every epoch, and a state found there
    is resumed: a run killed at any point loses at most one epoch, and ends in exactly the
    weights of an uninterrupted one (same thread count). The state is keyed by the
    configuration *without* its number of epochs (:meth:`TrainConfig.trajectory_key`), so a
    longer run continues a shorter one: the 200-epoch LeNet continues the 50-epoch one, whose
    weights equal the 50th epoch of the 200-epoch run (a constant schedule). A state further
    along than ``cfg.epochs`` is not used (training starts afresh, and leaves it in place).
    """
    from .device import device

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg)
    if isinstance(model, LeNet) and cfg.theano_init:
        model.theano_init_(gen)
    dev = device()  # CUDA when there is one (``$ADVSAMPLES_DEVICE``); the seeds stay on the CPU
    model.to(dev)
    x, y = training_data(cfg)
    if bool(cfg.extra) != (extra is not None):
        raise ValueError(
            f"extra training samples are given if and only if the configuration names them "
            f"(extra={cfg.extra!r}, samples {'given' if extra is not None else 'missing'})"
        )
    if extra is not None:  # appended after the base data: the minibatch order covers both
        x, y = torch.cat([x, extra[0].to(x.dtype)]), torch.cat([y, extra[1].long()])
    x, y = x.to(dev), y.to(dev)
    params = list(model.parameters())
    opt: torch.optim.Optimizer
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr)
    decayed = [p for n, p in model.named_parameters() if n.endswith("weight")]
    steps = math.ceil(len(x) / cfg.batch_size)
    history: list[float] = []
    seconds = 0.0
    first = 0
    resumed = _load_state(state_path, cfg) if state_path is not None else None
    if resumed is not None:
        model.load_state_dict(resumed["state_dict"], strict=True)
        opt.load_state_dict(resumed["optimizer"])
        gen.set_state(resumed["generator"])
        first, history, seconds = resumed["epoch"], list(resumed["history"]), resumed["seconds"]
    total = cfg.epochs * steps
    with tqdm(
        total=total, initial=first * steps, desc=desc or "training", unit="batch", disable=not progress
    ) as bar:
        for epoch in range(first, cfg.epochs):
            start = time.perf_counter()
            model.train()
            order = torch.randperm(len(x), generator=gen)
            for i in range(steps):
                idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size].to(dev)
                xb, yb = x[idx], y[idx]
                loss = nn.functional.cross_entropy(model(xb), yb)
                if cfg.adv_eps:
                    # Goodfellow et al. Eq. (6): α·J(x, y) + (1 − α)·J(x + ε·sign ∇ₓJ(x, y), y);
                    # the FGSM sample is a constant of the step (sign has no gradient).
                    x_adv = fgsm(model, xb, yb, cfg.adv_eps)
                    adv_loss = nn.functional.cross_entropy(model(x_adv), yb)
                    loss = cfg.adv_alpha * loss + (1 - cfg.adv_alpha) * adv_loss
                if cfg.weight_decay:
                    # L2 weight decay λ·Σ‖W‖² on weights (not biases), added to the mean loss.
                    loss = loss + cfg.weight_decay * sum(p.pow(2).sum() for p in decayed)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                bar.update()
            seconds += time.perf_counter() - start
            model.eval()
            if monitor is not None:
                history.append(monitor(model))
            if state_path is not None:
                _save_state(state_path, cfg, model, opt, gen, epoch + 1, history, seconds)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
    return model.cpu().eval(), seconds, history


def _state_path(name: str, cfg: TrainConfig) -> Path:
    return checkpoint_dir() / f"{name}-{cfg.trajectory_key()}.state"


def _save_state(
    path: Path,
    cfg: TrainConfig,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    epoch: int,
    history: list[float],
    seconds: float,
) -> None:
    meta = {"trajectory": cfg.trajectory_key(), "epoch": epoch, "history": history, "seconds": seconds}
    blob = {
        "state_dict": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "meta": json.dumps(meta),
    }
    _atomic_save(path, blob)


def _load_state(path: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The training state at ``path`` if it belongs to ``cfg``'s trajectory and is not past
    ``cfg.epochs``; None otherwise. A damaged state is never trusted: it is reported and ignored."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        state = {
            "state_dict": blob["state_dict"],
            "optimizer": blob["optimizer"],
            "generator": blob["generator"],
            "epoch": int(meta["epoch"]),
            "history": [float(h) for h in meta["history"]],
            "seconds": float(meta["seconds"]),
        }
        ok = meta["trajectory"] == cfg.trajectory_key()
    except Exception as exc:  # truncated, unpicklable, missing keys: recompute, never trust
        warnings.warn(f"ignoring unreadable training state {path} ({type(exc).__name__})", stacklevel=3)
        return None
    if not ok or not 0 < state["epoch"] <= cfg.epochs or len(state["history"]) != state["epoch"]:
        return None
    return state


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be loaded; it is never used half-way."""


def _reason(exc: BaseException) -> str:
    """Why torch refused a file, in one line, without torch's advice to retry with
    ``weights_only=False`` (which would run whatever code the file holds)."""
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
        return "it holds objects other than tensors and plain values, which a safe load refuses"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return first[:300]


def _checkpoint_path(name: str, cfg: TrainConfig) -> Path:
    return checkpoint_dir() / f"{name}-{cfg.key()}.pt"


def _load(path: Path, name: str, cfg: TrainConfig) -> tuple[nn.Module, dict[str, Any]]:
    fix = f"Delete {path} or call get_model({name!r}, ..., retrain=True) to train it again."
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(cfg)
        model.load_state_dict(blob["state_dict"], strict=True)
        meta = json.loads(blob["meta"])
    except Exception as exc:  # unpickling, truncation, missing/mismatched keys: all fatal
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {_reason(exc)}). {fix}"
        ) from exc
    if meta.get("key") != cfg.key():
        raise CheckpointError(f"checkpoint {path} was written for another configuration. {fix}")
    return model.eval(), meta


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The model saved at ``path`` (any checkpoint of the study) and its record (name, config,
    test accuracy, training time and threads), checked as :func:`get_model` checks it.

    Raises:
        CheckpointError: if the file is unreadable or its record does not match its weights.
    """
    try:
        meta = json.loads(torch.load(path, map_location="cpu", weights_only=True)["meta"])
        config = dict(meta["config"])
        config["hidden"] = tuple(config.get("hidden", ()))
        cfg = TrainConfig(**config)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {_reason(exc)})"
        ) from exc
    return _load(path, str(meta["name"]), cfg)


def _atomic_save(path: Path, blob: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(blob, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _save(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    _atomic_save(path, {"state_dict": model.state_dict(), "meta": json.dumps(meta)})


ExtraData = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def get_model(
    name: str,
    schedule: str = "quick",
    *,
    retrain: bool = False,
    progress: bool = True,
    extra_data: ExtraData | None = None,
    **overrides: Any,
) -> nn.Module:
    """The trained model ``name`` in eval mode, trained first if no checkpoint matches.

    ``schedule`` picks the number of epochs (:data:`SCHEDULES`); ``overrides`` change any
    :class:`TrainConfig` field (``epochs=30``, ``weight_decay=1.0``, ``data="half2"``, ``seed=1``).
    The checkpoint's file name carries :meth:`TrainConfig.key`, so a changed configuration never
    loads an old model. ``retrain=True`` discards an existing (or unreadable) checkpoint.
    A configuration with ``extra=<recipe key>`` trains on its data plus the samples
    ``extra_data()`` returns, called only when the model has to be trained.

    >>> model = get_model("lenet_paper")            # doctest: +SKIP
    >>> model(torch.zeros(1, 1, 28, 28)).shape      # doctest: +SKIP
    torch.Size([1, 10])
    """
    return _get(name, schedule, retrain=retrain, progress=progress, extra_data=extra_data, **overrides)[0]


def model_info(
    name: str, schedule: str = "quick", *, extra_data: ExtraData | None = None, **overrides: Any
) -> TrainedInfo:
    """The record of a trained model (training it first if needed): test accuracy, time, threads."""
    return _get(name, schedule, retrain=False, progress=True, extra_data=extra_data, **overrides)[1]


def _get(
    name: str,
    schedule: str,
    *,
    retrain: bool,
    progress: bool,
    extra_data: ExtraData | None = None,
    **overrides: Any,
) -> tuple[nn.Module, TrainedInfo]:
    cfg = config_for(name, schedule, **overrides)
    path = _checkpoint_path(name, cfg)
    if path.exists() and not retrain:
        model, meta = _load(path, name, cfg)
    else:
        from .artifacts import frozen, refuse

        if frozen():
            raise refuse(path, f"missing published checkpoint of {name} ({cfg.epochs} epochs)", schedule)
        if cfg.extra and extra_data is None:
            raise ValueError(
                f"{name} ({cfg.extra}) is not trained yet, and no extra_data was given to train it"
            )
        m = _data.load_mnist()
        x_test, y_test = evaluation_set(name, m.x_test, m.y_test)
        model, seconds, history = train(
            cfg,
            progress=progress,
            desc=f"{name} ({cfg.epochs} epochs)",
            monitor=lambda net: evaluate(net, x_test, y_test),
            state_path=_state_path(name, cfg),
            extra=extra_data() if cfg.extra and extra_data is not None else None,
        )
        meta = {
            "name": name,
            "key": cfg.key(),
            "config": dataclasses.asdict(cfg),
            "test_accuracy": history[-1],
            "history": history,
            "train_seconds": seconds,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
        _save(path, model, meta)
    for p in model.parameters():
        p.requires_grad_(False)
    info = TrainedInfo(
        name,
        cfg,
        meta["key"],
        meta["test_accuracy"],
        meta["train_seconds"],
        meta["threads"],
        path,
        tuple(meta.get("history", ())),
    )
    return model, info


# --------------------------------------------------------------------------- models by key
# One registry of the study's models by key: a model name, ``"fc10(λ)"`` (softmax regression
# with weight decay λ), or a label of the disjoint-halves models.
#: Szegedy et al.'s models of Table 1 that this study has (AE400-10 is not built here).
SZEGEDY_KEYS: tuple[str, ...] = ("fc10(0.0001)", "fc10(0.01)", "fc10(1.0)", "fc100_100_10", "fc200_200_10")
#: Every ten-class model of the study, by key (``logreg_3v7`` is binary and left out).
MODEL_KEYS: tuple[str, ...] = (*SZEGEDY_KEYS, "lenet_paper", "lenet_relu")

_FC10 = re.compile(r"fc10\((.+)\)")


#: Szegedy et al.'s disjoint-halves models (their Table 3): two architectures on the first 30,000
#: training images (P1) and the first architecture again on the last 30,000 (P2).
DISJOINT_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "FC100-100-10 (P1)": ("fc100_100_10", {"data": "half1"}),
    "FC123-456-10 (P1)": ("fc100_100_10", {"data": "half1", "hidden": (123, 456)}),
    "FC100-100-10' (P2)": ("fc100_100_10", {"data": "half2"}),
}


#: We add λ‖W‖² to the mean loss; the textbook form ½λ‖W‖² makes a paper's λ our λ times this.
TEXTBOOK_DECAY_FACTOR = 0.5


def textbook_decay(weight_decay: float) -> float:
    """Our weight decay for a paper's λ read in the textbook form ½λ‖W‖²."""
    return float(weight_decay) * TEXTBOOK_DECAY_FACTOR


def fc10_key(weight_decay: float) -> str:
    """The key of the softmax regression trained with weight decay λ, e.g. ``"fc10(0.0001)"``."""
    return f"fc10({float(weight_decay)})"


def model_spec(key: str) -> tuple[str, dict[str, Any]]:
    """``(name, overrides)`` for :func:`advsamples.models.get_model` from a model key.

    ``"fc10(λ)"`` is the softmax regression with weight decay λ (any finite λ >= 0); the other
    ten-class models are their own names. ``"fc10"`` alone and ``"logreg_3v7"`` are rejected.

    Raises:
        ValueError: naming the key and the allowed forms.
    """
    m = _FC10.fullmatch(key) if isinstance(key, str) else None
    if m:
        try:
            wd = float(m.group(1))
        except ValueError:
            wd = math.nan
        if not math.isfinite(wd) or wd < 0:
            raise ValueError(f"model key {key!r}: the weight decay in fc10(λ) must be a finite number >= 0")
        return "fc10", {"weight_decay": wd}
    if isinstance(key, str) and key in (*MODEL_NAMES, *EXTRA_NAMES) and key not in ("fc10", "logreg_3v7"):
        return key, {}
    if isinstance(key, str) and key in DISJOINT_MODELS:
        name, overrides = DISJOINT_MODELS[key]
        return name, dict(overrides)
    raise ValueError(
        f"unknown model key {key!r}; use one of {list(MODEL_KEYS)}, 'fc10(<weight decay>)' "
        f"or a disjoint-halves label {list(DISJOINT_MODELS)}"
    )


def slug(key: str) -> str:
    """A glue-key-safe form of a model or row label: ``"fc10(0.0001)"`` -> ``"fc10_0p0001"``."""
    out = key.replace("(", "_").replace(")", "").replace(".", "p").replace("'", "prime")
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in out).strip("_")


def load(key: str, schedule: str = "quick") -> nn.Module:
    """The trained model of ``key`` (a :data:`MODEL_KEYS` entry, ``"fc10(λ)"`` or a
    :data:`DISJOINT_MODELS` label), trained first if no checkpoint matches, in eval mode."""
    name, overrides = model_spec(key)
    return get_model(name, schedule, progress=False, **overrides)


def info(key: str, schedule: str = "quick") -> TrainedInfo:
    """The checkpoint record (test accuracy, key, time, threads) of the model of ``key``."""
    name, overrides = model_spec(key)
    return model_info(name, schedule, **overrides)
