"""Fast Gradient Sign Method (FGSM), untargeted and targeted."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from advsamples.attacks._validate import (
    check_clip,
    check_finite_nonneg,
    check_inputs,
    check_labels,
    frozen,
    num_classes,
)

__all__ = ["fgsm"]


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    targeted: bool = False,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    r"""Fast Gradient Sign Method: one signed-gradient step of size ``eps`` in L-infinity.

    Distance measure: Linf.

    With :math:`L` the cross-entropy of the logits :math:`f(x)`, the untargeted attack moves
    each input *up* the loss of its true label :math:`y`,

    .. math::

        x' = \operatorname{clip}_{[a,b]}\bigl(x + \epsilon\,
             \operatorname{sign}(\nabla_x L(f(x), y))\bigr),

    and the targeted attack moves it *down* the loss of the target label :math:`t`,

    .. math::

        x' = \operatorname{clip}_{[a,b]}\bigl(x - \epsilon\,
             \operatorname{sign}(\nabla_x L(f(x), t))\bigr).

    The perturbation :math:`\eta = \epsilon\,\operatorname{sign}(\nabla_x J(\theta, x, y))` is
    the formula of Goodfellow et al. (Section 4); for a model that is linear in :math:`x` it is
    the exact maximiser of the (linearised) loss over the ball
    :math:`\|x' - x\|_\infty \le \epsilon` (see :func:`advsamples.linear.linf_box_optimum`).
    The loss is summed over the batch, so each sample's gradient is its own and the result
    does not depend on how samples are batched. Coordinates with a zero gradient stay put.
    The budget holds up to floating-point rounding: in float32, :math:`|x'_i - x_i|` can exceed
    ``eps`` by an ulp of :math:`x_i`.

    Arguments:
        model: classifier returning logits shaped ``(N, C)``; the number of classes ``C`` is
            read from them. It is run in whatever train/eval mode it is in (put it in eval
            mode first if it has dropout or batch norm); its parameters, their ``.grad``,
            their ``requires_grad`` flags and its mode are left as they were.
        x: inputs shaped ``(N, ...)`` (e.g. ``(N, 1, 28, 28)`` for MNIST), floating point,
            inside ``clip``. Not modified.
        y: int64-compatible labels shaped ``(N,)`` in ``[0, C)``: the true labels, or the
            target labels when ``targeted=True``.
        eps: L-infinity budget, finite and ``>= 0``; ``eps=0`` returns ``x`` unchanged.
        targeted: descend the loss of the target labels ``y`` instead of ascending the
            loss of the true labels.
        clip: the valid input range ``(min, max)``, ``min < max``.

    Shape:
        - x: :math:`(N, *)`, y: :math:`(N)`, output: :math:`(N, *)`, same dtype as ``x``,
          detached.

    Raises:
        ValueError: naming the argument, for a negative or non-finite ``eps``, a ``clip`` with
            ``min >= max``, an ``x`` outside ``clip``, or labels of the wrong shape, dtype or
            range.

    Examples::

        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
        >>> x = torch.rand(8, 1, 28, 28)
        >>> y = torch.randint(0, 10, (8,))
        >>> x_adv = fgsm(model, x, y, eps=0.1)
        >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6), x_adv.shape
        (True, torch.Size([8, 1, 28, 28]))

    Reference:
        I. J. Goodfellow, J. Shlens, C. Szegedy. "Explaining and Harnessing Adversarial
        Examples". ICLR 2015. arXiv:1412.6572.
    """
    eps = check_finite_nonneg("eps", eps)
    lo, hi = check_clip(clip)
    check_inputs(x.detach() if isinstance(x, torch.Tensor) else x, (lo, hi))

    with frozen(model), torch.enable_grad():
        x_in = x.detach().clone().requires_grad_(True)
        logits = model(x_in)
        labels = check_labels("y", y, x.shape[0], num_classes(logits)).to(logits.device)
        loss = F.cross_entropy(logits, labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_in)

    step = eps * grad.sign().to(x.dtype)
    x_adv = x.detach() - step if targeted else x.detach() + step
    return x_adv.clamp(lo, hi).detach()
