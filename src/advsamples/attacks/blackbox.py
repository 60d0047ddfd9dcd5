r"""Papernot et al.'s practical black-box attack: a substitute trained on the target's labels.

The attacker sees only the labels :math:`\tilde O(x)` the target (the *oracle*) gives to inputs it
chooses. It trains a local substitute :math:`F` on a small seed set :math:`S_0` labelled by the
oracle and grows the set by **Jacobian-based dataset augmentation** (their Algorithm 1, Eq. 4),

.. math::

    S_{\rho+1} = S_\rho \cup \bigl\{\, x + \lambda_\rho \cdot
        \operatorname{sign}\bigl(J_F(x)[\tilde O(x)]\bigr) : x \in S_\rho \bigr\},
    \qquad \lambda_\rho = \lambda\,(-1)^{\lfloor \rho / \tau \rfloor},

where :math:`J_F(x)[k]` is the gradient with respect to :math:`x` of the substitute's
probability of class :math:`k` (the points move toward the substitute's decision boundaries,
where its labels are least certain) and the step's sign flips every :math:`\tau` rounds (their
Sec. 6's periodic step size). Each round trains the substitute on the current set, then (but
the last) augments it and asks the oracle for the new points' labels: after round
:math:`\rho` the oracle has answered :math:`|S_0|\,2^{\rho}` queries. Adversarial samples are then
crafted on the substitute with any white-box attack and sent to the oracle (transferability).

- :func:`jacobian_augmentation`: one augmentation step, Eq. 4.
- :func:`train_substitute`: Algorithm 1, returning the substitute after every round.

Reference:
    N. Papernot, P. McDaniel, I. Goodfellow, S. Jha, Z. B. Celik, A. Swami. "Practical Black-Box
    Attacks against Machine Learning". ASIA CCS 2017. arXiv:1602.02697. The defaults (150 seed
    samples, 6 rounds of 10 epochs, λ = 0.1, Adam at 1e-3 in batches of 128, a 784-200-200-10
    ReLU substitute) are those of the authors' reference tutorial (cleverhans'
    ``mnist_blackbox``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from advsamples.attacks._validate import (
    check_clip,
    check_inputs,
    check_int,
    check_labels,
    frozen,
    num_classes,
)

__all__ = ["SubstituteRun", "augmentation_step", "jacobian_augmentation", "train_substitute"]

Oracle = Callable[[torch.Tensor], torch.Tensor]


def augmentation_step(lam: float, rho: int, tau: int) -> float:
    r""":math:`\lambda_\rho = \lambda\,(-1)^{\lfloor \rho/\tau \rfloor}`: the step of augmentation
    round ``rho`` (their periodic step size; ``tau`` large keeps it at ``lam``)."""
    return lam * (-1.0) ** (rho // tau)


def jacobian_augmentation(
    substitute: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    lam: float,
    *,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    r"""The new points of one Jacobian-based augmentation step (Papernot et al. 2017, Eq. 4):
    :math:`x + \lambda\,\operatorname{sign}(\nabla_x F_{\tilde O(x)}(x))`, clipped to the box.

    Arguments:
        substitute: classifier returning logits ``(N, C)``; :math:`F` is their softmax. Its
            mode, flags and ``.grad`` are left as they were.
        x: the current set ``(N, ...)`` inside ``clip``.
        labels: ``(N,)`` the oracle's labels of ``x`` in ``[0, C)``.
        lam: the step :math:`\lambda_\rho` (finite; negative moves away from the boundary).
        clip: the input range.

    Returns:
        ``(N, ...)`` the new points (``x`` itself is not repeated), detached, dtype of ``x``.

    Raises:
        ValueError: for a non-finite ``lam``, ``x`` outside ``clip`` or bad labels.

    Example:
        >>> new = jacobian_augmentation(sub, x, oracle(x), 0.1)  # doctest: +SKIP
    """
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not math.isfinite(lam):
        raise ValueError(f"lam must be a finite number, got lam={lam!r}")
    lo, hi = check_clip(clip)
    check_inputs(x, (lo, hi))
    with frozen(substitute), torch.enable_grad():
        x_in = x.detach().clone().requires_grad_(True)
        probs = substitute(x_in).softmax(1)
        k = check_labels("labels", labels, len(x), num_classes(probs)).to(probs.device)
        # Eq. 4: the gradient of F's component for the oracle's label, one row per sample
        (grad,) = torch.autograd.grad(probs.gather(1, k[:, None]).sum(), x_in)
    return (x.detach() + lam * grad.sign().to(x.dtype)).clamp(lo, hi)


@dataclass(frozen=True)
class SubstituteRun:
    """Outcome of :func:`train_substitute`.

    Attributes:
        states: the substitute's ``state_dict`` after each round (index ``rho``).
        queries: ``(rounds,)`` labels the oracle had given when round ``rho``'s training ended.
        x / labels: the final training set and its oracle labels.
    """

    states: tuple[dict[str, torch.Tensor], ...]
    queries: tuple[int, ...]
    x: torch.Tensor
    labels: torch.Tensor


def train_substitute(
    oracle: Oracle,
    x_seed: torch.Tensor,
    make_substitute: Callable[[], nn.Module],
    *,
    rounds: int = 6,
    epochs: int = 10,
    lam: float = 0.1,
    tau: int = 3,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    clip: tuple[float, float] = (0.0, 1.0),
    progress: bool = False,
) -> SubstituteRun:
    r"""Papernot et al.'s substitute training (their Algorithm 1) against a label-only ``oracle``.

    Each of the ``rounds`` rounds trains the substitute (its weights carried over, a fresh Adam)
    for ``epochs`` epochs on the current set with the oracle's labels (cross-entropy), then, but
    for the last, adds :func:`jacobian_augmentation`'s points at step
    :func:`augmentation_step` ``(lam, rho, tau)`` and asks the oracle for their labels.

    Arguments:
        oracle: ``x -> labels`` ``(N,)``: the only access the attacker has to the target.
        x_seed: ``(N0, ...)`` the attacker's seed inputs inside ``clip`` (labelled by the oracle).
        make_substitute: builds the untrained substitute (called once, under ``seed``).
        rounds, epochs, lam, tau, lr, batch_size: Algorithm 1's settings (defaults: theirs).
        seed: the substitute's initialisation and every shuffle.
        clip: the input range.
        progress: a progress bar over the rounds.

    Returns:
        :class:`SubstituteRun`: after round ``rho`` the oracle has answered
        ``N0 * 2**rho`` queries.

    Raises:
        ValueError: for bad counts or inputs outside ``clip``.
    """
    rounds = check_int("rounds", rounds, 1, 20)
    epochs = check_int("epochs", epochs, 1, 10_000)
    tau = check_int("tau", tau, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got lr={lr!r}")
    lo, hi = check_clip(clip)
    check_inputs(x_seed, (lo, hi))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sub = make_substitute()
    gen = torch.Generator().manual_seed(seed)
    x = x_seed.detach().clone()
    with torch.no_grad():
        labels = oracle(x).long()
    states, queries = [], []
    for rho in tqdm(range(rounds), desc="substitute rounds", disable=not progress, leave=False):
        sub.train()
        opt = torch.optim.Adam(sub.parameters(), lr=lr)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch_size):
                b = order[i : i + batch_size]
                opt.zero_grad()
                F.cross_entropy(sub(x[b]), labels[b]).backward()
                opt.step()
        sub.eval()
        states.append(copy.deepcopy(sub.state_dict()))
        queries.append(len(x))
        if rho < rounds - 1:
            new = jacobian_augmentation(sub, x, labels, augmentation_step(lam, rho, tau), clip=(lo, hi))
            with torch.no_grad():
                new_labels = oracle(new).long()
            x, labels = torch.cat([x, new]), torch.cat([labels, new_labels])
    return SubstituteRun(tuple(states), tuple(queries), x, labels)
