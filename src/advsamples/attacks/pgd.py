"""Projected gradient descent (PGD) under L-infinity, untargeted and targeted."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from advsamples.attacks._validate import (
    check_clip,
    check_finite_nonneg,
    check_inputs,
    check_int,
    check_labels,
    frozen,
    num_classes,
)

__all__ = ["STEP_FACTOR", "pgd"]

#: Most iterations a call may ask for (a bound that keeps a run finite).
MAX_STEPS = 100_000
#: Madry et al.'s step rule: the default step is ``STEP_FACTOR * eps / steps``, enough for the
#: walk to cross the ball.
STEP_FACTOR = 2.5


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 40,
    alpha: float | None = None,
    targeted: bool = False,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    r"""Projected gradient descent on the loss, inside the L-infinity ball of radius ``eps``.

    Distance measure: Linf.

    With :math:`L` the cross-entropy of the logits :math:`f(x)`, :math:`B = \{x' :
    \|x' - x\|_\infty \le \epsilon\} \cap [a, b]^n` and :math:`\Pi_B` the projection onto it
    (a clamp, coordinate by coordinate), the untargeted attack iterates (Madry et al., Eq. 2 and
    Sec. 2.1)

    .. math::

        x^{t+1} = \Pi_B\bigl(x^t + \alpha\,\operatorname{sign}(\nabla_x L(f(x^t), y))\bigr),

    from :math:`x^0 = x`, or from a uniform draw in the ball when ``random_start``; the
    targeted attack descends the loss of the target :math:`t` instead (:math:`-\alpha`).
    One step with :math:`\alpha = \epsilon` and no random start is exactly FGSM
    (:func:`advsamples.attacks.fgsm`): the same tensor, bit for bit. The loss is summed over the
    batch, so each sample's iterates are its own: a batch gives what its samples give one by
    one. Every step is taken (no early stop), and the last iterate is returned.

    Arguments:
        model: classifier returning logits shaped ``(N, C)``; the number of classes is read
            from them. Run in whatever mode it is in; its parameters, their ``.grad`` and
            ``requires_grad`` flags and its mode are left as they were.
        x: inputs shaped ``(N, ...)``, floating point, inside ``clip``. Not modified.
        y: labels shaped ``(N,)`` in ``[0, C)``: the true labels, or the targets when
            ``targeted=True``.
        eps: L-infinity radius, finite and ``>= 0``.
        steps: iterations, ``1 <= steps <= 100000``.
        alpha: step size, finite and ``>= 0``; default ``2.5 * eps / steps`` (Madry et al.'s
            choice: enough to reach the ball's boundary from anywhere inside it).
        targeted: descend the loss of the target labels ``y``.
        random_start: start from ``x + U(-eps, eps)`` (clipped to the box), drawn with
            ``generator``.
        generator: the random generator of the start (``None``: torch's global one).
        clip: the valid input range ``(min, max)``, ``min < max``.

    Shape:
        - x: :math:`(N, *)`, y: :math:`(N)`, output: :math:`(N, *)`, same dtype as ``x``,
          detached.

    Raises:
        ValueError: naming the argument, for a negative or non-finite ``eps`` or ``alpha``,
            ``steps`` outside ``[1, 100000]`` or not an integer, a bad ``clip``, an ``x``
            outside ``clip``, or labels of the wrong shape, dtype or range.

    Examples::

        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
        >>> x = torch.rand(8, 1, 28, 28)
        >>> y = torch.randint(0, 10, (8,))
        >>> x_adv = pgd(model, x, y, eps=0.1, steps=10)
        >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6), x_adv.shape
        (True, torch.Size([8, 1, 28, 28]))

    Reference:
        A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu. "Towards Deep Learning Models
        Resistant to Adversarial Attacks". ICLR 2018. arXiv:1706.06083.
    """
    eps = check_finite_nonneg("eps", eps)
    steps = check_int("steps", steps, 1, MAX_STEPS)
    step_size = STEP_FACTOR * eps / steps if alpha is None else check_finite_nonneg("alpha", alpha)
    lo, hi = check_clip(clip)
    check_inputs(x.detach() if isinstance(x, torch.Tensor) else x, (lo, hi))

    x0 = x.detach()
    x_adv = x0.clone()
    if random_start:  # Madry et al.: start at a uniform point of the ball
        noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        x_adv = (x0 + (2 * noise - 1) * eps).clamp(lo, hi)
    sign = -1.0 if targeted else 1.0
    with frozen(model), torch.enable_grad():
        labels = None
        for _ in range(steps):
            x_in = x_adv.clone().requires_grad_(True)
            logits = model(x_in)
            if labels is None:
                labels = check_labels("y", y, x.shape[0], num_classes(logits)).to(logits.device)
            loss = F.cross_entropy(logits, labels, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_in)
            # the ascent (descent, targeted) step, then the projection Π_B: a clamp to the ball
            # around x, then to the box; in this order one step of α = ε is FGSM exactly
            step = x_adv + (sign * step_size) * grad.sign().to(x.dtype)
            x_adv = torch.minimum(torch.maximum(step, x0 - eps), x0 + eps).clamp(lo, hi)
    return x_adv.detach()
