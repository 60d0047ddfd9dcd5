"""Carlini–Wagner L2 attack, targeted and untargeted, batched."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from advsamples.attacks._validate import (
    channels_last_copy,
    check_clip,
    check_finite_nonneg,
    check_inputs,
    check_int,
    check_labels,
    check_positive,
    frozen,
    num_classes,
)

__all__ = ["CWTrace", "cw_l2", "cw_l2_trace"]

#: Bounds that keep a call finite.
MAX_ITER = 100_000
MAX_SEARCH_STEPS = 50
#: Upper bound of c before a success brackets it (Carlini and Wagner's 1e10).
_C_UPPER = 1e10


@dataclass(frozen=True)
class CWTrace:
    """What :func:`cw_l2_trace` found, per sample.

    Attributes:
        adv: ``(N, ...)`` the successful sample of smallest L2 distance found, or ``x`` where
            none succeeded.
        success: ``(N,)`` bool, whether any iterate succeeded.
        l2: ``(N,)`` float64, ``‖adv − x‖₂`` (0 where none succeeded).
        const: ``(N,)`` float64, the weight c of the search step that found ``adv`` (NaN where
            none succeeded).
        iterations: ``(N,)`` int64, Adam steps taken over the whole search.
    """

    adv: torch.Tensor
    success: torch.Tensor
    l2: torch.Tensor
    const: torch.Tensor
    iterations: torch.Tensor


def cw_l2_trace(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    targeted: bool = False,
    kappa: float = 0.0,
    c_init: float = 1e-3,
    search_steps: int = 9,
    max_iter: int = 1000,
    lr: float = 1e-2,
    abort_early: bool = True,
    clip: tuple[float, float] = (0.0, 1.0),
) -> CWTrace:
    r"""Carlini and Wagner's L2 attack: gradient descent on the penalised objective, with a
    binary search of the penalty weight per sample. :func:`cw_l2` returns only the samples.

    Distance measure: L2.

    The box constraint is removed by a change of variables (their Sec. V-A, "change of
    variables"): :math:`\hat x = a + (b - a)\,\tfrac12(\tanh w + 1)` lies in :math:`[a, b]^n`
    for every :math:`w`. For each sample, Adam minimises over :math:`w` (their Eq. for the L2
    attack)

    .. math::

        \lVert \hat x - x\rVert_2^2 + c \cdot f(\hat x),\qquad
        f(\hat x) = \max\bigl(\max_{i \ne t} Z(\hat x)_i - Z(\hat x)_t,\; -\kappa\bigr)

    for a target :math:`t` (their :math:`f_6` on the logits :math:`Z`; untargeted:
    :math:`f = \max(Z_y - \max_{i \ne y} Z_i, -\kappa)` for the true label :math:`y`). Each of
    ``search_steps`` rounds restarts Adam from :math:`w = \operatorname{atanh}` of ``x`` and
    runs ``max_iter`` steps; a round that succeeds halves the bracket of c from above, one
    that fails from below (c grows ×10 until a success brackets it), as in their code. A
    sample succeeds at an iterate where the target has the largest logit after subtracting
    :math:`\kappa` from it (untargeted: the true label's logit plus :math:`\kappa` is not the
    largest); the smallest successful iterate over all rounds is kept. With ``abort_early``,
    a sample stops its round when its objective has not fallen by 0.01% over the last
    ``max_iter // 10`` steps (their rule, applied per sample rather than to the batch's sum,
    so that a batch gives what its samples give one by one).

    Arguments:
        model: classifier returning logits ``(N, C)``; the classes are read from them. Its
            parameters and mode are left as they were.
        x: inputs ``(N, ...)``, floating point, inside ``clip``. Not modified.
        y: labels ``(N,)`` in ``[0, C)``: targets when ``targeted``, else the true labels.
        targeted: reach the target ``y`` instead of leaving the label ``y``.
        kappa: confidence :math:`\kappa \ge 0` (their default 0).
        c_init: first penalty weight c, ``> 0`` (their 1e-3).
        search_steps: rounds of the binary search on c, in ``[1, 50]`` (their 9).
        max_iter: Adam steps per round, in ``[1, 100000]`` (their 10,000; ours 1,000).
        lr: Adam's learning rate, ``> 0`` (their 1e-2).
        abort_early: stop a sample's round once its objective stalls.
        clip: the box ``(min, max)``, ``min < max``.

    Shape:
        - x: :math:`(N, *)`, y: :math:`(N)`; ``adv``: :math:`(N, *)` in ``x``'s dtype, the
          others :math:`(N)`.

    Raises:
        ValueError: naming the argument, for a negative or non-finite ``kappa``, a ``c_init``
            or ``lr`` that is not positive and finite, ``search_steps`` or ``max_iter`` out of
            range or not an integer, a bad ``clip``, an ``x`` outside it, or bad labels.

    Examples::

        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
        >>> x = torch.rand(4, 1, 28, 28)
        >>> trace = cw_l2_trace(model, x, torch.tensor([1, 2, 3, 4]), targeted=True, max_iter=100)
        >>> trace.adv.shape, trace.success.dtype
        (torch.Size([4, 1, 28, 28]), torch.bool)

    Reference:
        N. Carlini, D. Wagner. "Towards Evaluating the Robustness of Neural Networks". IEEE S&P
        2017. arXiv:1608.04644 (and their code, ``l2_attack.py``, for the search and the
        early abort).
    """
    kappa = check_finite_nonneg("kappa", kappa)
    c_init = check_positive("c_init", c_init)
    lr = check_positive("lr", lr)
    search_steps = check_int("search_steps", search_steps, 1, MAX_SEARCH_STEPS)
    max_iter = check_int("max_iter", max_iter, 1, MAX_ITER)
    lo, hi = check_clip(clip)
    check_inputs(x.detach() if isinstance(x, torch.Tensor) else x, (lo, hi))

    x0 = x.detach()
    n = x0.shape[0]
    dims = tuple(range(1, x0.dim()))
    # w of x itself: x = a + (b - a)(tanh w + 1)/2, pulled inside (-1, 1) so atanh is finite
    w0 = torch.atanh(((x0 - lo) / (hi - lo) * 2 - 1) * 0.999999)
    with torch.no_grad():
        logits0 = model(x0)
    labels = check_labels("y", y, n, num_classes(logits0)).to(logits0.device)
    onehot = torch.nn.functional.one_hot(labels, logits0.shape[1]).bool()

    lower = torch.zeros(n, dtype=torch.float64)
    upper = torch.full((n,), _C_UPPER, dtype=torch.float64)
    const = torch.full((n,), c_init, dtype=torch.float64)
    best_l2sq = torch.full((n,), math.inf, dtype=torch.float64)
    best_adv = x0.clone()
    best_const = torch.full((n,), math.nan, dtype=torch.float64)
    steps_taken = torch.zeros(n, dtype=torch.int64)
    check_every = max(1, max_iter // 10)

    if x0.dim() == 4:  # images: a channels-last copy runs the convolutions faster on CPU
        model = channels_last_copy(model)
    with frozen(model), torch.enable_grad():
        for _ in range(search_steps):  # the binary search on c
            found = torch.zeros(n, dtype=torch.bool)  # a success in this round
            # The round's batch holds only the samples still running (``ids``): a sample whose
            # round ended (early abort) leaves it, with its rows of w and of Adam's moments, so
            # the passes cost what the running samples cost. Adam is elementwise and its step
            # count is the round's, so a sample's updates do not depend on who else is running.
            ids = torch.arange(n)
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=lr)
            c = const.to(x0.dtype).to(x0.device)
            prev = torch.full((n,), math.inf, dtype=torch.float64)
            for it in range(max_iter):
                dev_ids = ids.to(x0.device)
                x_ref, hot, lab = x0[dev_ids], onehot[dev_ids], labels[dev_ids]
                x_hat = lo + (hi - lo) * (torch.tanh(w) + 1) / 2
                z = model(x_hat)
                l2sq = ((x_hat - x_ref) ** 2).sum(dim=dims)
                own = z[hot]  # Z_t (targeted) or Z_y
                other = z.masked_fill(hot, -math.inf).amax(dim=1)
                margin = other - own if targeted else own - other
                f = torch.clamp(margin + kappa, min=0.0)  # max(margin, -κ) + κ: the same minimiser
                loss = l2sq + c[dev_ids] * f
                with torch.no_grad():
                    # success at this iterate (their compare(): argmax after the κ shift)
                    shifted = z - kappa * hot if targeted else z + kappa * hot
                    top = shifted.argmax(dim=1)
                    ok = ((top == lab) if targeted else (top != lab)).cpu()
                    d = l2sq.detach().double().cpu()
                    better = ok & (d < best_l2sq[ids])
                    if bool(better.any()):
                        rows = ids[better]
                        best_l2sq[rows] = d[better]
                        best_adv[rows.to(x0.device)] = x_hat.detach()[better.to(x0.device)]
                        best_const[rows] = const[rows]
                    found[ids] |= ok
                    running = torch.ones(len(ids), dtype=torch.bool)
                    if abort_early and it % check_every == 0:
                        now = loss.detach().double().cpu()
                        running = ~(now > prev[ids] * 0.9999)  # stalled: this sample's round ends
                        prev[ids] = torch.where(running, now, prev[ids])
                    if not bool(running.any()):
                        break
                (grad,) = torch.autograd.grad(loss.sum(), w)  # each row's own: the rows do not interact
                if not bool(running.all()):  # compact the batch to the samples still running
                    keep = running.to(x0.device)
                    ids, grad = ids[running], grad[keep]
                    state = opt.state.get(w, {})  # empty before the round's first step
                    w = w.detach()[keep].clone().requires_grad_(True)
                    opt = torch.optim.Adam([w], lr=lr)
                    if state:
                        opt.state[w] = {
                            k: v[keep].clone() if v.dim() else v.clone() for k, v in state.items()
                        }
                steps_taken[ids] += 1
                w.grad = grad
                opt.step()
            # the bracket of c, sample by sample (their l2_attack.py)
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            bracketed = upper < _C_UPPER / 10
            const = torch.where(bracketed, (lower + upper) / 2, const * 10)
    success = torch.isfinite(best_l2sq)
    return CWTrace(
        adv=best_adv.detach(),
        success=success,
        l2=torch.where(success, best_l2sq.sqrt(), torch.zeros_like(best_l2sq)),
        const=best_const,
        iterations=steps_taken,
    )


def cw_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    targeted: bool = False,
    kappa: float = 0.0,
    c_init: float = 1e-3,
    search_steps: int = 9,
    max_iter: int = 1000,
    lr: float = 1e-2,
    abort_early: bool = True,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """Carlini and Wagner's L2 attack: the smallest successful sample found per input (the input
    itself where none succeeded). The math, the arguments and the source are
    :func:`cw_l2_trace`'s."""
    return cw_l2_trace(
        model,
        x,
        y,
        targeted=targeted,
        kappa=kappa,
        c_init=c_init,
        search_steps=search_steps,
        max_iter=max_iter,
        lr=lr,
        abort_early=abort_early,
        clip=clip,
    ).adv
