"""Plain, one-sample-at-a-time JSMA: the reference the fast implementation is tested against.

Written to be obviously correct rather than fast: the full Jacobian of the model output
(``torch.autograd.functional.jacobian``), the full ``n x n`` pair matrix of Algorithm 3 and
a Python loop for Algorithm 2 of Papernot et al. 2016 (arXiv:1511.07528). Semantics and tie
rule are those documented in :mod:`advsamples.attacks.jsma`:

* alpha_pq = dF_t/dx_p + dF_t/dx_q, beta_pq = sum_{j != t} (dF_j/dx_p + dF_j/dx_q);
* theta > 0: admissible iff alpha > 0 and beta < 0; theta < 0: alpha < 0 and beta > 0;
  the admissible pair (p < q, both in the search domain) maximising -alpha * beta wins,
  ties going to the lexicographically smallest (p, q);
* the search domain starts as the features that can move in theta's direction and loses
  every modified feature;
* stop when the model predicts the target, after floor(n * gamma / 2) iterations, or when
  no admissible pair is left.

For probabilities the sum over ``j != t`` is taken literally from the Jacobian rows (the
fast code uses the exact identity beta = -alpha instead).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["reference_best_pair", "reference_jacobian", "reference_jsma"]


def reference_jacobian(model: nn.Module, x: torch.Tensor, use_logits: bool) -> torch.Tensor:
    """Full forward derivative ``dF/dx`` of one sample ``x`` (shape ``(...)``), as ``(C, n)``."""
    shape = x.shape

    def f(z: torch.Tensor) -> torch.Tensor:
        out = model(z.reshape(1, *shape))
        return (out if use_logits else torch.softmax(out, dim=1))[0]

    return torch.autograd.functional.jacobian(f, x.detach().reshape(-1))


def reference_best_pair(
    a: torch.Tensor, b: torch.Tensor, domain: torch.Tensor, theta: float
) -> tuple[int, int] | None:
    """Algorithm 3 over the full pair matrix; ``None`` when no pair is admissible.

    ``a[i] = dF_t/dx_i``, ``b[i] = sum_{j != t} dF_j/dx_i``, ``domain`` bool, all shape ``(n,)``.
    """
    n = a.numel()
    alpha = a[:, None] + a[None, :]
    beta = b[:, None] + b[None, :]
    if theta > 0:
        adm = (alpha > 0) & (beta < 0)
    else:
        adm = (alpha < 0) & (beta > 0)
    adm &= domain[:, None] & domain[None, :]
    adm &= torch.ones(n, n, dtype=torch.bool, device=a.device).triu(1)  # p < q
    if not bool(adm.any()):
        return None
    score = -alpha * beta
    best = score[adm].max()
    ties = (adm & (score == best)).nonzero()  # row-major order: lexicographic (p, q)
    return int(ties[0, 0]), int(ties[0, 1])


def reference_jsma(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    *,
    theta: float = 1.0,
    gamma: float = 0.145,
    use_logits: bool = True,
    clip: tuple[float, float] = (0.0, 1.0),
) -> tuple[torch.Tensor, bool, int]:
    """JSMA on one sample ``x`` (no batch dimension); returns ``(x_adv, success, iterations)``.

    The caller puts ``model`` in eval mode.
    """
    lo, hi = clip
    x_adv = x.detach().clone().reshape(-1)
    n = x_adv.numel()
    budget = math.floor(n * gamma / 2)
    domain = x_adv < hi if theta > 0 else x_adv > lo
    iterations = 0
    while True:
        with torch.no_grad():
            pred = int(model(x_adv.reshape(1, *x.shape)).argmax(dim=1)[0])
        if pred == target:
            return x_adv.reshape(x.shape), True, iterations
        if iterations >= budget:
            return x_adv.reshape(x.shape), False, iterations
        jac = reference_jacobian(model, x_adv.reshape(x.shape), use_logits)
        a = jac[target]
        others = torch.arange(jac.shape[0], device=jac.device) != target
        b = jac[others].sum(dim=0)
        pair = reference_best_pair(a, b, domain, theta)
        if pair is None:
            return x_adv.reshape(x.shape), False, iterations
        for i in pair:
            x_adv[i] = (x_adv[i] + theta).clamp(lo, hi)
            domain[i] = False
        iterations += 1
