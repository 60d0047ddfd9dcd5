"""Jacobian-based Saliency Map Attack (JSMA), Papernot et al. 2016, Algorithms 2 and 3.

Source: N. Papernot, P. McDaniel, S. Jha, M. Fredrikson, Z. B. Celik, A. Swami, "The
Limitations of Deep Learning in Adversarial Settings", IEEE EuroS&P 2016, arXiv:1511.07528.

The attack pushes a sample ``x`` towards a chosen target class ``t`` by changing two input
features per iteration:

1. compute the forward derivative (the Jacobian of the network output ``F`` with respect to
   the input; ``F`` is the logits layer, the paper's choice, or the softmax probabilities);
2. among the pairs ``(p, q)`` of the search domain, pick the one that increases ``F_t`` while
   decreasing the other outputs the most (the pair saliency map, Algorithm 3);
3. move both features by ``theta`` (clipped), drop them from the search domain;

until the model predicts ``t``, the distortion budget ``gamma`` is spent, or no admissible
pair is left.

Everything here is batched: every row has its own target, finished rows leave the active
set, and new rows join it (so the batch stays full), ``batch_size`` bounds the memory.
Because the attack is deterministic, one run at the largest budget answers every smaller
budget (:func:`success_at_budgets`).

The pair search (:func:`best_pairs`) is exact over the whole search domain, yet costs
a ``K x K`` pair matrix over the ``K`` most promising features instead of ``n x n``; see its
docstring for the optimality certificate. A plain reference implementation lives in
:mod:`advsamples.attacks._jsma_reference` and the tests check that both agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import channels_last_copy, check_clip, check_inputs, check_labels, frozen, num_classes

__all__ = [
    "JSMAResult",
    "adversarial_distance",
    "best_pairs",
    "forward_derivative",
    "jsma",
    "jsma_budget",
    "jsma_trace",
    "saliency_map",
    "success_at_budgets",
]

#: First number of features ``K`` the pair search looks at (a ``K x K`` pair matrix, twice: with
#: ``lam = 1``, then ``lam`` tuned to the best pair).
_K_START = 32
#: Rows left after those two rounds search strips: the top ``k`` features against all ``n``;
#: ``k`` starts here and doubles until the strip's certificate holds (or covers the domain).
_STRIP_START = 8
_STRIP_GROWTH = 2
#: Bound on the elements of one chunk of ``(rows, K, K)`` pair matrices (memory cap).
_PAIR_CHUNK = 1 << 22


@dataclass(frozen=True)
class JSMAResult:
    """Outcome of :func:`jsma_trace`, one entry per sample.

    Attributes:
        x_adv: adversarial samples, same shape, dtype and device as ``x``.
        success: bool ``(N,)``, the model predicts the target on ``x_adv``.
        iterations: int64 ``(N,)``, number of feature pairs modified (Algorithm 2 iterations).
        distortion: ``(N,)`` in x's dtype, fraction of the ``n`` input features whose value
            changed, ``||x_adv - x||_0 / n`` (the paper's distortion ``epsilon``).
        budget: the iteration budget ``floor(n * gamma / 2)`` the run used.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    iterations: torch.Tensor
    distortion: torch.Tensor
    budget: int


def jsma_budget(n_features: int, gamma: float) -> int:
    """Maximum number of iterations (pairs): ``floor(n_features * gamma / 2)``."""
    return math.floor(n_features * gamma / 2)


# ----------------------------------------------------------------------------- derivatives


def _forward_derivative(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, use_logits: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits and the two rows of the forward derivative the attack needs, flattened.

    Returns ``(logits, a, b)`` with ``a[r, i] = dF_t/dx_i`` and
    ``b[r, i] = sum_{j != t} dF_j/dx_i`` (shapes ``(R, C)``, ``(R, n)``, ``(R, n)``), from one
    forward pass and two backward passes (two vector-Jacobian products instead of the ``C``
    of a full Jacobian). Two plain backward passes over the retained graph measured faster
    on CPU than one vmapped pass (``is_grads_batched``) or a duplicated batch.
    """
    xr = x.detach().requires_grad_(True)
    logits = model(xr)
    onehot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
    if use_logits:
        # Two VJPs, cotangents e_t and (1 - e_t): dF_t/dx and d(sum_{j != t} F_j)/dx.
        (a,) = torch.autograd.grad(logits, xr, onehot, retain_graph=True)
        (b,) = torch.autograd.grad(logits, xr, 1.0 - onehot)
    else:
        # Probabilities sum to one, so sum_j dF_j/dx = 0 and beta = -alpha exactly: one VJP.
        # Autograd would return -alpha plus rounding noise; the exact value is used instead.
        probs = torch.softmax(logits, dim=1)
        (a,) = torch.autograd.grad(probs, xr, onehot)
        b = -a
    r = x.shape[0]
    return logits.detach(), a.reshape(r, -1), b.reshape(r, -1)


def forward_derivative(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, use_logits: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attack's forward derivative at ``x`` toward ``target``: ``(logits, a, b)`` with
    ``a[r] = dF_t/dx`` and ``b[r] = sum_{j != t} dF_j/dx`` flattened to ``(N, n)`` (``b = -a``
    exactly with the probabilities), the logits detached. The same computation every iteration of
    :func:`jsma_trace` uses; gradients are enabled inside."""
    with torch.enable_grad():
        return _forward_derivative(model, x, target.long(), use_logits)


# ----------------------------------------------------------------------------- pair search


def _scores(
    a_p: torch.Tensor, b_p: torch.Tensor, a_q: torch.Tensor, b_q: torch.Tensor, sign: int
) -> torch.Tensor:
    """Algorithm 3's pair saliency of every ``(p, q)``, ``p`` a feature of the ``(R, k)`` rows
    ``a_p``, ``b_p`` and ``q`` one of the ``(R, m)`` rows ``a_q``, ``b_q``: ``(R, k, m)`` scores
    ``-alpha * beta``, ``-inf`` where the pair is not admissible. A feature outside the search
    domain enters with ``a = NaN``, which makes every pair with it inadmissible."""
    alpha = a_p[:, :, None] + a_q[:, None, :]  # Alg. 3: alpha = sum_{i=p,q} dF_t/dX_i
    beta = b_p[:, :, None] + b_q[:, None, :]  # Alg. 3: beta = sum_{i=p,q} sum_{j!=t} dF_j/dX_i
    if sign > 0:
        adm = alpha > 0  # Alg. 3: "if alpha > 0 and beta < 0" (False for NaN)
        adm &= beta < 0
    else:
        adm = alpha < 0  # decreasing variant (theta < 0)
        adm &= beta > 0
    return alpha.mul_(beta).neg_().masked_fill_(adm.logical_not_(), -math.inf)  # Alg. 3: -alpha * beta


def _pair_scores(
    a: torch.Tensor, b: torch.Tensor, ok: torch.Tensor, idx: torch.Tensor, sign: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Best admissible pair among the ``(R, k)`` features ``idx`` (sorted, may repeat).

    ``a``, ``b``, ``ok`` are the derivatives and domain mask gathered at ``idx``. Returns
    ``(best, flat)``: the best score per row (``-inf`` when no pair is admissible) and its
    flat position ``i * k + j`` (``i < j``) in the ``k x k`` pair matrix. Because ``idx`` is
    sorted by feature index, the first maximum in row-major order over ``i < j`` is the
    lexicographically smallest ``(p, q)`` among the maxima.
    """
    k = a.shape[1]
    a = torch.where(ok, a, math.nan)  # outside Gamma: every pair with the feature inadmissible
    score = _scores(a, b, a, b, sign)
    keep = torch.ones(k, k, dtype=torch.bool, device=a.device).triu_(1)  # i < j
    keep = keep & (idx[:, :, None] != idx[:, None, :])  # p != q (idx may hold a feature twice)
    score.masked_fill_(~keep, -math.inf)
    flat = score.flatten(1).argmax(dim=1)  # first maximum (torch.argmax returns the first)
    best = score.flatten(1).gather(1, flat[:, None])[:, 0]
    return best, flat


def _strip_scores(
    a: torch.Tensor, b: torch.Tensor, ok: torch.Tensor, idx: torch.Tensor, sign: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best admissible pair with at least one feature among the ``(R, k)`` features ``idx``
    (distinct), over the whole ``(R, n)`` rows ``a``, ``b``, ``ok``: the ``k x n`` strip of the
    pair matrix.

    Returns ``(best, p, q)``: the best score per row (``-inf`` when no such pair is
    admissible) and the lexicographically smallest ``(p, q)``, ``p < q``, among the pairs
    reaching it. The scores are :func:`_pair_scores`' (``a_p + a_q`` is the same float
    whatever the order), so a pair scores the same in a strip as in the full matrix.
    """
    r, n = a.shape
    a = torch.where(ok, a, math.nan)  # outside Gamma: every pair with the feature inadmissible
    score = _scores(a.gather(1, idx), b.gather(1, idx), a, b, sign)
    score.scatter_(2, idx[:, :, None], -math.inf)  # p != q
    best = score.flatten(1).amax(dim=1)
    got = best > -math.inf
    # The tie rule over unordered pairs: the smallest key min(p, q) * n + max(p, q) among the
    # maxima (a pair inside idx appears twice in the strip, once each way).
    row, i, j = ((score == best[:, None, None]) & got[:, None, None]).nonzero(as_tuple=True)
    fp = idx[row, i]
    key = torch.minimum(fp, j) * n + torch.maximum(fp, j)
    first = torch.full((r,), n * n, dtype=torch.long, device=a.device).scatter_reduce_(0, row, key, "amin")
    first = torch.where(got, first, 0)
    return best, first // n, first % n


def best_pairs(
    a: torch.Tensor,
    b: torch.Tensor,
    domain: torch.Tensor,
    sign: int,
    *,
    k_start: int = _K_START,
    strip_start: int = _STRIP_START,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact pair saliency search (Algorithm 3), one pair per row.

    Args:
        a: ``(R, n)`` ``dF_t/dx_i``.
        b: ``(R, n)`` ``sum_{j != t} dF_j/dx_i``.
        domain: ``(R, n)`` bool, the search domain Gamma.
        sign: ``+1`` (theta > 0: alpha > 0 and beta < 0) or ``-1`` (theta < 0: alpha < 0 and
            beta > 0); either way the pair maximising ``-alpha * beta`` is chosen.
        k_start: first subset size ``K`` (tuning only; the answer does not depend on it).
        strip_start: first strip size ``k`` (tuning only, likewise).

    Returns:
        ``(p, q, found)``: int64 ``(R,)`` with ``p < q`` and bool ``(R,)``; rows with no
        admissible pair have ``found`` False (and ``p = q = 0``).

    Tie rule: among the pairs with the maximal score, the lexicographically smallest ``(p, q)``
    with ``p < q`` (the first one in a row-major scan of the upper triangle of the pair matrix).

    Optimality certificate. Write ``A = sign * alpha`` and ``B = -sign * beta``, so a pair is
    admissible iff ``A > 0`` and ``B > 0``, and its score is ``-alpha * beta = A * B``. For any
    ``lam > 0``, AM-GM gives ``A * B = (lam A)(B / lam) <= ((lam A + B / lam) / 2) ** 2`` and
    ``lam A + B / lam = u_p + u_q`` with ``u_i = sign * (lam a_i - b_i / lam)`` (for theta > 0
    ``u = lam a - b / lam``; for theta < 0 the same with ``a``, ``b`` negated). Sort the domain
    by ``u`` descending, ``u_(1) >= u_(2) >= ...``. A pair whose two features are not both in the
    top ``K`` has ``u_p + u_q <= u_(1) + u_(K+1) =: s``; a pair with neither feature in the top
    ``k`` has ``u_p + u_q <= u_(k+1) + u_(k+2) =: s``. Either way, if ``s <= 0`` no such pair is
    admissible (``A + B > 0`` is needed), and otherwise its score is at most ``(s / 2) ** 2``.
    So the best pair of the searched part (the ``K x K`` matrix of the top ``K``, plus the best
    pair found so far; or the strip of the top ``k`` against all ``n`` features) is the global
    best, ties included, once its score is *strictly* above that bound (or ``s <= 0``, or the
    searched part covers the domain).

    Search schedule per row: the top ``K = k_start`` with ``lam = 1`` (the plain bound
    ``((A + B) / 2) ** 2``); if that does not certify, ``lam = sqrt(B* / A*)`` from the best
    pair so far (which makes the bound tight for pairs shaped like it) at the same ``K``; then
    strips, ``k = strip_start`` doubling (re-tuning ``lam`` each time) up to the full ``n x n``
    search. A strip costs ``k n`` scores where the ``K x K`` matrix that replaces it would cost
    ``K ** 2``, but its bound leaves out the top feature: on flat gradients, where the best pair
    joins a top feature with a low one, small strips certify where large matrices do not (the
    paper-profile C&W CNN, the 100 digits of ``bench jsma --peers``, one thread: of 3,248 row
    searches, 582 had gone past a 512 x 512 matrix to the full search; strips of at most 128
    features certify every one, and the pair search takes 0.55 s instead of 5.5 s, same pairs).
    A trained MNIST LeNet certifies every row at ``K = 32``: a ``32 x 32`` matrix instead of
    ``784 x 784``.

    Rounding is covered by inflating the bound: ``s`` is computed in float64 and widened by
    ``8 eps (lam max|a| + max|b| / lam)`` (the error of alpha and beta in the working dtype),
    the square by ``1 + 16 eps``, plus the smallest subnormal (underflow of the product);
    non-finite derivatives never certify and fall back to the full search.
    """
    r, n = a.shape
    dev = a.device
    p = torch.zeros(r, dtype=torch.long, device=dev)
    q = torch.zeros(r, dtype=torch.long, device=dev)
    found = torch.zeros(r, dtype=torch.bool, device=dev)
    if r == 0 or n < 2:
        return p, q, found
    fin = torch.finfo(a.dtype)
    eps, tiny = fin.eps, fin.smallest_normal * fin.eps
    sa = a.double() * sign  # A = sa_p + sa_q
    sb = b.double() * -sign  # B = sb_p + sb_q
    cand = domain & ~torch.isnan(sa) & ~torch.isnan(sb)  # NaN: every pair with it inadmissible
    count = cand.sum(dim=1)
    max_a = torch.where(cand, sa.abs(), 0.0).amax(dim=1)
    max_b = torch.where(cand, sb.abs(), 0.0).amax(dim=1)
    lam = torch.ones(r, dtype=torch.float64, device=dev)
    # Best pair seen so far (p*, q*); -1 for none. It joins every later candidate set.
    bp = torch.full((r,), -1, dtype=torch.long, device=dev)
    bq = torch.full((r,), -1, dtype=torch.long, device=dev)

    todo = torch.arange(r, device=dev)
    k_square = min(max(2, k_start), n)
    first_strip = max(1, strip_start)
    rnd = 0  # 0: K x K, lam = 1; 1: K x K, lam tuned; 2, 3, ...: strips of k x n, k doubling
    while todo.numel():
        strip = rnd >= 2 and k_square < n
        k = min(first_strip * _STRIP_GROWTH ** (rnd - 2), n) if strip else k_square
        full = k + 2 > n if strip else k >= n
        fail_parts = []
        per_chunk = max(1, _PAIR_CHUNK // (k * n if strip and not full else (k + 2) ** 2))
        for c0 in range(0, todo.numel(), per_chunk):
            rows = todo[c0 : c0 + per_chunk]
            if full:
                idx = torch.arange(n, device=dev).expand(rows.numel(), n)
                best, flat = _pair_scores(a[rows], b[rows], cand[rows], idx, sign)
                i, j = flat // n, flat % n
                ok = torch.ones_like(best, dtype=torch.bool)
            else:
                lr = lam[rows, None]
                u = lr * sa[rows] + sb[rows] / lr
                # Candidates rank above non-candidates even when u = -inf.
                u = torch.where(cand[rows], u.clamp(min=-1e308), -math.inf)
                if strip:
                    vals, top = u.topk(k + 2, dim=1)  # sorted, descending
                    best, i, j = _strip_scores(a[rows], b[rows], cand[rows], top[:, :k], sign)
                    # a pair outside the strip has both features below the top k
                    s = vals[:, k] + vals[:, k + 1]
                    covered = count[rows] <= k + 1
                else:
                    vals, top = u.topk(k + 1, dim=1)  # sorted, descending
                    prev = torch.stack([bp[rows], bq[rows]], dim=1)
                    prev = torch.where(prev >= 0, prev, top[:, :1])  # none yet: repeat a top one
                    idx = torch.cat([top[:, :k], prev], dim=1).sort(dim=1).values  # feature order
                    best, flat = _pair_scores(
                        a[rows].gather(1, idx), b[rows].gather(1, idx), cand[rows].gather(1, idx), idx, sign
                    )
                    i = idx.gather(1, (flat // (k + 2))[:, None])[:, 0]
                    j = idx.gather(1, (flat % (k + 2))[:, None])[:, 0]
                    # a pair outside the K x K matrix has one feature below the top K
                    s = vals[:, 0] + vals[:, k]
                    covered = count[rows] <= k
                lr = lam[rows]
                s = s + 8.0 * eps * (lr * max_a[rows] + max_b[rows] / lr)
                bound = (0.5 * s) ** 2 * (1.0 + 16.0 * eps) + tiny
                ok = covered | (s <= 0) | ((best > -math.inf) & (best.double() > bound))
            got = best > -math.inf
            sel = rows[ok]
            p[sel], q[sel], found[sel] = i[ok], j[ok], got[ok]
            # Rows left: remember their best pair and tune lam to it, lam^2 = B* / A*.
            nf = ~ok & got
            rn, pn, qn = rows[nf], i[nf], j[nf]
            bp[rn], bq[rn] = pn, qn
            big_a = sa[rn, pn] + sa[rn, qn]
            big_b = sb[rn, pn] + sb[rn, qn]
            tuned = torch.sqrt(big_b / big_a)
            lam[rn] = torch.where(torch.isfinite(tuned) & (tuned > 0), tuned, lam[rn])
            fail_parts.append(~ok)
        todo = todo[torch.cat(fail_parts)]
        rnd += 1
    p = torch.where(found, p, 0)
    q = torch.where(found, q, 0)
    return p, q, found


# ----------------------------------------------------------------------------- the attack


def _check_attack_args(
    x: torch.Tensor, theta: float, gamma: float, clip: tuple[float, float]
) -> tuple[float, float, float, float]:
    lo, hi = check_clip(clip)
    check_inputs(x, (lo, hi))
    g = float(gamma)
    if not (math.isfinite(g) and 0.0 < g <= 1.0):
        raise ValueError(f"gamma must lie in (0, 1], got gamma={gamma!r}")
    th = float(theta)
    if not math.isfinite(th) or th == 0.0 or abs(th) > hi - lo:
        raise ValueError(
            f"theta must be finite, non-zero and |theta| <= clip range {hi - lo:g}, got theta={theta!r}"
        )
    return th, g, lo, hi


def jsma_trace(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    theta: float = 1.0,
    gamma: float = 0.145,
    use_logits: bool = True,
    clip: tuple[float, float] = (0.0, 1.0),
    batch_size: int = 256,
    progress: bool = False,
    domain: Literal["movable", "all"] | torch.Tensor = "movable",
) -> JSMAResult:
    """Run JSMA (Papernot et al. 2016, Algorithms 2 and 3) and report per-sample outcomes.

    Args:
        model: classifier returning logits ``(N, C)``; put in eval mode for the attack (its
            mode, ``requires_grad`` flags and ``.grad`` are left as they were).
        x: inputs ``(N, ...)`` inside ``clip`` (e.g. ``(N, 1, 28, 28)`` MNIST in [0, 1]).
        target: int ``(N,)`` target class of each row, in ``[0, C)``.
        theta: change applied to the chosen features; ``+1`` (paper) sets them to the
            maximum, a negative value decreases them.
        gamma: maximum distortion, a fraction of the ``n`` features in (0, 1]; the attack
            stops after ``floor(n * gamma / 2)`` iterations (the paper uses 14.5%).
        use_logits: forward derivative of the logits (paper) or of the softmax probabilities.
        clip: feature range ``(min, max)``.
        batch_size: number of rows attacked together (memory bound).
        progress: show a tqdm progress bar over the samples.
        domain: the initial search domain Gamma. ``"movable"`` (default): the features that
            can still move in theta's direction. ``"all"``: every feature, the literal reading
            of Algorithm 2's ``Gamma = {1 .. |X|}`` (advertorch's): a feature already at the
            bound can then be picked, is clipped back (no change) and leaves Gamma, a wasted
            iteration of the budget. A bool tensor with one row of ``n`` features per sample:
            that initial domain, as given (for example torchattacks' ``x < 0.99``).

    Returns:
        :class:`JSMAResult`.

    Semantics (Algorithms 2 and 3, with the paper's MNIST choices made explicit):

    * search domain Gamma: initially the features that can still move in theta's direction
      (``x < max`` for theta > 0, ``x > min`` for theta < 0; every feature with ``domain="all"``);
      a modified feature leaves it (Algorithm 3 removes a feature once it reaches a bound, which
      every modified feature does when ``|theta|`` spans the range, as at the paper's theta = +-1);
    * each iteration picks the admissible pair maximising ``-alpha * beta`` (see
      :func:`best_pairs`, exact, ties to the lexicographically smallest ``(p, q)``), moves both
      features by theta and clips them;
    * a row stops when the model predicts its target (checked before every iteration, so a
      row already at its target comes back unchanged), after ``floor(n * gamma / 2)``
      iterations, or when no admissible pair is left; ``success`` is the final prediction.

    Cost per iteration and row: one forward and two backward passes (input gradients only)
    plus a small pair search. Image batches (4-D ``x``) are attacked with a channels-last copy
    of ``model`` (:func:`channels_last_copy`), which runs the LeNet about 1.7x faster on CPU;
    ``model`` itself is not converted.

    Example:
        >>> res = jsma_trace(model, x, target, gamma=0.145)   # doctest: +SKIP
        >>> res.success.float().mean(), res.distortion[res.success].mean()   # doctest: +SKIP
    """
    th, g, lo, hi = _check_attack_args(x, theta, gamma, clip)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got batch_size={batch_size!r}")
    if isinstance(domain, torch.Tensor):
        if domain.dtype != torch.bool or domain.shape[0] != x.shape[0] or domain[0].numel() != x[0].numel():
            raise ValueError(
                f"a domain tensor must be bool, one row per sample of x's features, "
                f"got dtype={domain.dtype}, shape={tuple(domain.shape)} for x of shape {tuple(x.shape)}"
            )
        dom0 = domain.reshape(x.shape[0], -1).to(x.device)
    elif domain not in ("movable", "all"):
        raise ValueError(f"domain must be 'movable', 'all' or a bool tensor, got domain={domain!r}")
    sign = 1 if th > 0 else -1
    dev = x.device
    num, shape = x.shape[0], x.shape[1:]
    n = math.prod(shape)
    budget = jsma_budget(n, g)
    if x.dim() == 4:  # images: a channels-last copy runs the convolutions ~1.7x faster on CPU
        model = channels_last_copy(model)

    with frozen(model):
        model.eval()
        with torch.no_grad():
            classes = num_classes(model(x[:1]))
        target = check_labels("target", target, num, classes).to(dev)

        x0 = x.detach().reshape(num, n)
        out_x = x0.clone()
        success = torch.zeros(num, dtype=torch.bool, device=dev)
        iters = torch.zeros(num, dtype=torch.long, device=dev)
        changed = torch.zeros(num, dtype=torch.long, device=dev)  # ||x_adv - x||_0

        # Active pool: row ids, current samples, search domains, iteration counts.
        pool_id = torch.empty(0, dtype=torch.long, device=dev)
        pool_x = x0.new_empty((0, n))
        pool_dom = torch.empty((0, n), dtype=torch.bool, device=dev)
        pool_it = torch.empty(0, dtype=torch.long, device=dev)
        nxt = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=num, desc="JSMA", unit="sample")
        try:
            while True:
                take = min(batch_size - pool_id.numel(), num - nxt)
                if take > 0:  # refill the pool with fresh rows (Alg. 2 initialisation)
                    new = torch.arange(nxt, nxt + take, device=dev)
                    nxt += take
                    xn = x0[new]
                    # Alg. 2: Gamma = {1..|X|}, less (by default) the features that cannot move by theta.
                    if isinstance(domain, torch.Tensor):
                        dn = dom0[new].clone()
                    elif domain == "all":
                        dn = torch.ones_like(xn, dtype=torch.bool)
                    else:
                        dn = xn < hi if sign > 0 else xn > lo
                    pool_id = torch.cat([pool_id, new])
                    pool_x = torch.cat([pool_x, xn])
                    pool_dom = torch.cat([pool_dom, dn])
                    pool_it = torch.cat([pool_it, torch.zeros_like(new)])
                if pool_id.numel() == 0:
                    break
                pool_t = target[pool_id]
                # Alg. 2: forward derivative nabla F(X*) (and F(X*) for the stopping test).
                with torch.enable_grad():
                    logits, a, b = _forward_derivative(model, pool_x.reshape(-1, *shape), pool_t, use_logits)
                hit = logits.argmax(dim=1) == pool_t
                # Alg. 2: "while F(X*) != Y* and ||delta X|| < Upsilon".
                stop = hit | (pool_it >= budget)
                go = (~stop).nonzero()[:, 0]
                if go.numel():
                    # Alg. 3: p1, p2 = argmax over Gamma of the pair saliency map.
                    p, q, fnd = best_pairs(a[go], b[go], pool_dom[go], sign)
                    stop[go[~fnd]] = True  # no admissible pair left: give up
                    rows, p, q = go[fnd], p[fnd], q[fnd]
                    # Alg. 2: modify X*_{p1}, X*_{p2} by theta (clipped) ...
                    pool_x[rows, p] = (pool_x[rows, p] + th).clamp_(lo, hi)
                    pool_x[rows, q] = (pool_x[rows, q] + th).clamp_(lo, hi)
                    # ... and remove them from the search domain Gamma.
                    pool_dom[rows, p] = False
                    pool_dom[rows, q] = False
                    pool_it[rows] += 1
                fin = stop.nonzero()[:, 0]
                if fin.numel():
                    ids = pool_id[fin]
                    out_x[ids] = pool_x[fin]
                    success[ids] = hit[fin]
                    iters[ids] = pool_it[fin]
                    changed[ids] = (pool_x[fin] != x0[ids]).sum(dim=1)
                    keep = ~stop
                    pool_id, pool_x = pool_id[keep], pool_x[keep]
                    pool_dom, pool_it = pool_dom[keep], pool_it[keep]
                    if bar is not None:
                        bar.update(int(fin.numel()))
        finally:
            if bar is not None:
                bar.close()

    distortion = changed.to(x.dtype) / n
    return JSMAResult(
        x_adv=out_x.reshape(x.shape),
        success=success,
        iterations=iters,
        distortion=distortion,
        budget=budget,
    )


def jsma(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    theta: float = 1.0,
    gamma: float = 0.145,
    use_logits: bool = True,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """Adversarial batch crafted by JSMA; see :func:`jsma_trace` for the arguments.

    Example:
        >>> x_adv = jsma(model, x, target=torch.full((len(x),), 3))   # doctest: +SKIP
    """
    return jsma_trace(model, x, target, theta=theta, gamma=gamma, use_logits=use_logits, clip=clip).x_adv


def success_at_budgets(
    result: JSMAResult,
    gammas: Sequence[float] | torch.Tensor,
    n_features: int | None = None,
    *,
    per_sample: bool = False,
) -> torch.Tensor:
    """Success rate at each smaller distortion budget, from one run at the largest.

    The attack is deterministic and a smaller budget only truncates the run, so a sample
    succeeds at budget ``gamma`` iff it succeeded and used at most ``floor(n * gamma / 2)``
    iterations.

    Args:
        result: a run of :func:`jsma_trace` with ``gamma >= max(gammas)``.
        gammas: the budgets (fractions of the features) to evaluate.
        n_features: features per sample ``n`` (default: read from ``result.x_adv``).
        per_sample: return the bool ``(G, N)`` matrix instead of the ``(G,)`` rates.

    Returns:
        float64 ``(G,)`` success rates (or bool ``(G, N)`` with ``per_sample``).
    """
    n = int(result.x_adv[0].numel()) if n_features is None else int(n_features)
    gs = [float(v) for v in (gammas.tolist() if isinstance(gammas, torch.Tensor) else gammas)]
    rows = []
    for gv in gs:
        if not (math.isfinite(gv) and 0.0 < gv <= 1.0):
            raise ValueError(f"gammas must lie in (0, 1], got {gv!r}")
        k = jsma_budget(n, gv)
        if k > result.budget:
            raise ValueError(
                f"gamma={gv!r} needs budget {k} > the run's budget {result.budget}; rerun with a larger gamma"
            )
        rows.append(result.success & (result.iterations <= k))
    mat = (
        torch.stack(rows)
        if rows
        else torch.zeros((0, result.success.numel()), dtype=torch.bool, device=result.success.device)
    )
    return mat if per_sample else mat.double().mean(dim=1)


# ----------------------------------------------------------------------------- saliency


def saliency_map(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    use_logits: bool = True,
    increase: bool = True,
) -> torch.Tensor:
    """Single-feature saliency map S(X, t) (paper Eq. 8; Eq. 9 with ``increase=False``).

    Eq. 8: ``S[i] = 0`` if ``dF_t/dX_i < 0`` or ``sum_{j != t} dF_j/dX_i > 0``, otherwise
    ``dF_t/dX_i * |sum_{j != t} dF_j/dX_i|``. Eq. 9 flips both conditions and gives
    ``|dF_t/dX_i| * sum_{j != t} dF_j/dX_i``. Returns a tensor shaped like ``x``.
    """
    check_inputs(x, (-math.inf, math.inf))  # floating, non-empty, finite (no clip here)
    with frozen(model):
        model.eval()
        with torch.no_grad():
            classes = num_classes(model(x[:1]))
        t = check_labels("target", target, x.shape[0], classes).to(x.device)
        with torch.enable_grad():
            _, a, b = _forward_derivative(model, x, t, use_logits)
    if increase:
        s = torch.where((a < 0) | (b > 0), torch.zeros_like(a), a * b.abs())
    else:
        s = torch.where((a > 0) | (b < 0), torch.zeros_like(a), a.abs() * b)
    return s.reshape(x.shape)


def adversarial_distance(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, use_logits: bool = True
) -> torch.Tensor:
    """Adversarial distance A(X, t) = 1 - (1/M) sum_i 1[S(X, t)[i] > 0] (paper Eq. 11), ``(N,)``.

    ``S`` is the increasing saliency map (Eq. 8) and ``M`` the number of features; a value
    close to 1 means few features help reach ``t``, i.e. ``t`` is hard to reach from ``X``.
    """
    s = saliency_map(model, x, target, use_logits=use_logits)
    return 1.0 - (s.reshape(s.shape[0], -1) > 0).to(s.dtype).mean(dim=1)
