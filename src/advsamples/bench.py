"""Timing of the attacks (``python -m advsamples bench jsma`` and ``bench cw``).

:func:`bench_jsma` times :func:`advsamples.attacks.jsma.jsma_trace` with theta = +1,
gamma = 14.5% and the logits' forward derivative (Papernot et al. 2016, Section IV), reports
throughput, iterations and the process's peak resident memory, and checks the first few
samples against the plain reference implementation
(:mod:`advsamples.attacks._jsma_reference`). :func:`format_bench` renders the result.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import torch
from torch import nn

from .attacks._jsma_reference import reference_jsma
from .attacks._validate import channels_last_copy, check_int, frozen
from .attacks.jsma import forward_derivative, jsma_trace

__all__ = [
    "bench_cw",
    "bench_cw_test_set",
    "bench_jsma",
    "bench_jsma_test_set",
    "format_bench",
    "format_bench_cw",
    "network_bound",
]

#: The paper's full JSMA experiment: 10,000 MNIST test digits x 9 targets.
PAPER_ATTACKS = 90_000


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def network_bound(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    batch_size: int,
    repeats: int = 10,
    use_logits: bool = True,
) -> float:
    """The network-only bound of a JSMA iteration: forward-derivative rows per second when the
    model does nothing but what any exact JSMA must do per sample-iteration, one forward pass and
    the input vector-Jacobian products of :func:`advsamples.attacks.jsma.forward_derivative`
    (two with the logits, one with the probabilities), on full batches of ``batch_size`` rows
    drawn from ``x`` (repeated if it has fewer), with the channels-last copy the attack uses.
    The best of ``repeats`` timed passes, after one warm-up, in the current thread count.

    Raises:
        ValueError: for ``batch_size`` or ``repeats`` below 1.
    """
    check_int("batch_size", batch_size, 1)
    check_int("repeats", repeats, 1)
    idx = torch.arange(batch_size, device=x.device) % x.shape[0]
    xb, tb = x[idx], target[idx].long()
    net = channels_last_copy(model) if x.dim() == 4 else model
    best = float("inf")
    with frozen(net):
        net.eval()
        forward_derivative(net, xb, tb, use_logits=use_logits)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            forward_derivative(net, xb, tb, use_logits=use_logits)
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            best = min(best, time.perf_counter() - start)
    return batch_size / best


def bench_jsma(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    threads: int,
    batch_size: int,
    reference_samples: int = 3,
    theta: float = 1.0,
    gamma: float = 0.145,
    use_logits: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Time JSMA on ``(x, target)`` with ``threads`` torch threads; return the figures.

    The first ``reference_samples`` rows are re-run with the reference implementation (not
    timed) and must give the same adversarial sample, iteration count and success. The
    previous torch thread count is restored afterwards.

    The timed path is exactly what the chapters run: :func:`jsma_trace` itself attacks image
    batches with a channels-last copy of ``model`` (about 1.7x faster on CPU).

    Returns a dict with ``attacks``, ``seconds``, ``attacks_per_s``,
    ``sample_iterations_per_s`` (forward-derivative rows per second), ``mean_iterations``,
    ``success_rate``, ``mean_distortion`` (over successes), ``budget``, ``peak_rss_mib``
    (process peak, ``ru_maxrss``), ``bound_rows_per_s`` (:func:`network_bound` at the same batch)
    and ``bound_ratio`` (the attack's time over its network-only time), ``threads``,
    ``batch_size``, ``device``, ``dtype``,
    ``reference_checked``, ``reference_agree`` and ``extrapolated_paper_s`` (time for the
    paper's 90,000 attacks at the measured rate).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got threads={threads!r}")
    if reference_samples < 0:
        raise ValueError(f"reference_samples must be >= 0, got reference_samples={reference_samples!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        kwargs: dict[str, Any] = {"theta": theta, "gamma": gamma, "use_logits": use_logits}
        jsma_trace(model, x[:2], target[:2], **kwargs)  # warm-up (allocator, kernels)
        start = time.perf_counter()
        res = jsma_trace(model, x, target, batch_size=batch_size, progress=progress, **kwargs)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        seconds = time.perf_counter() - start

        checked = min(reference_samples, x.shape[0])
        agree = 0
        with frozen(model):
            model.eval()
            for i in range(checked):
                x_ref, ok, it = reference_jsma(model, x[i], int(target[i]), **kwargs)
                agree += int(
                    torch.equal(x_ref, res.x_adv[i])
                    and ok == bool(res.success[i])
                    and it == int(res.iterations[i])
                )
        bound = network_bound(
            model, x, target, batch_size=min(batch_size, int(x.shape[0])), use_logits=use_logits
        )
    finally:
        torch.set_num_threads(previous)

    num = int(x.shape[0])
    ok_mask = res.success
    rate = num / seconds
    rows = float((res.iterations + 1).sum())
    return {
        "attacks": num,
        "seconds": seconds,
        "attacks_per_s": rate,
        # each attack evaluates the derivative once per iteration plus one final forward
        "sample_iterations_per_s": rows / seconds,
        "bound_rows_per_s": bound,
        # the attack's time over the time its network passes alone would take at full batches
        "bound_ratio": seconds / (rows / bound),
        "mean_iterations": float(res.iterations.double().mean()),
        "success_rate": float(ok_mask.double().mean()),
        "mean_distortion": float(res.distortion[ok_mask].double().mean()) if ok_mask.any() else float("nan"),
        "budget": res.budget,
        "peak_rss_mib": _peak_rss_mib(),
        "threads": threads,
        "batch_size": batch_size,
        "device": str(x.device),
        "dtype": str(x.dtype).removeprefix("torch."),
        "reference_checked": checked,
        "reference_agree": agree,
        "extrapolated_paper_s": PAPER_ATTACKS / rate,
    }


def format_bench(d: dict[str, Any]) -> str:
    """Human-readable report of a :func:`bench_jsma` result."""
    lines = [
        f"JSMA bench: {d['attacks']} attacks on {d['device']} ({d['dtype']}), "
        f"threads={d['threads']}, batch_size={d['batch_size']}",
        f"  time            {d['seconds']:.2f} s  ->  {d['attacks_per_s']:.1f} attacks/s "
        f"({d['sample_iterations_per_s']:.0f} derivative rows/s)",
        f"  iterations      mean {d['mean_iterations']:.2f} (budget {d['budget']})",
    ]
    if "bound_ratio" in d:  # older cached figures have no bound
        lines.append(
            f"  network bound   {d['bound_rows_per_s']:.0f} derivative rows/s (forward + input VJPs, "
            f"full batches): the attack takes {d['bound_ratio']:.2f}x its network-only time"
        )
    lines += [
        f"  success         {100 * d['success_rate']:.2f}%  mean distortion of successes "
        f"{100 * d['mean_distortion']:.2f}%",
        f"  peak RSS        {d['peak_rss_mib']:.0f} MiB (process, ru_maxrss)",
        f"  reference       {d['reference_agree']}/{d['reference_checked']} samples identical",
        f"  extrapolated    {PAPER_ATTACKS:,} attacks in {d['extrapolated_paper_s'] / 60:.1f} min "
        "at this rate",
    ]
    return "\n".join(lines)


def bench_jsma_test_set(
    samples: int, *, schedule: str = "quick", threads: int, batch_size: int = 512, progress: bool = False
) -> dict[str, Any]:
    """:func:`bench_jsma` on the trained ``lenet_paper`` (``schedule``), with the first ``samples``
    MNIST test digits each crafted toward every other class, as in the paper's Fig. 11 experiment."""
    from .data import load_mnist
    from .experiments.common import other_targets
    from .models import get_model

    model = get_model("lenet_paper", schedule, progress=progress)
    mnist = load_mnist()
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= len(mnist.x_test):
        raise ValueError(f"samples={samples!r} must be an integer between 1 and {len(mnist.x_test)}")
    x, y = mnist.x_test[:samples], mnist.y_test[:samples]
    with torch.no_grad():
        classes = int(model(x[:1]).shape[1])
    rows, target = other_targets(y, classes)
    return bench_jsma(model, x[rows], target, threads=threads, batch_size=batch_size, progress=progress)


def bench_cw(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    threads: int,
    max_iter: int = 100,
    search_steps: int = 3,
    c_init: float = 1.0,
    one_by_one: int | None = None,
) -> dict[str, Any]:
    """Time :func:`advsamples.attacks.cw_l2_trace` (targeted) batched against a loop of the same
    attack one sample at a time, with ``threads`` torch threads; return the figures.

    The loop runs on the first ``one_by_one`` rows (default: all); its answers must equal the
    batch's on those rows (success, iterations, and samples within 1e-5), which
    ``agree``/``compared`` report. ``speedup`` is the ratio of attacks per second.
    """
    from .attacks.cw import cw_l2_trace

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got threads={threads!r}")
    n = int(x.shape[0])
    loop_n = n if one_by_one is None else one_by_one
    if isinstance(loop_n, bool) or not isinstance(loop_n, int) or not 1 <= loop_n <= n:
        raise ValueError(f"one_by_one must be an integer in [1, {n}], got one_by_one={one_by_one!r}")
    # c starts at 1 (C&W's 1e-3 needs more rounds than a benchmark runs to bracket it)
    kwargs: dict[str, Any] = {
        "targeted": True,
        "max_iter": max_iter,
        "search_steps": search_steps,
        "c_init": c_init,
    }
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cw_l2_trace(model, x[:1], target[:1], **kwargs)  # warm-up
        start = time.perf_counter()
        batch = cw_l2_trace(model, x, target, **kwargs)
        batch_s = time.perf_counter() - start
        start = time.perf_counter()
        singles = [cw_l2_trace(model, x[i : i + 1], target[i : i + 1], **kwargs) for i in range(loop_n)]
        loop_s = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
    agree = sum(
        int(
            bool(s.success[0] == batch.success[i])
            and int(s.iterations[0]) == int(batch.iterations[i])
            and torch.allclose(s.adv[0], batch.adv[i], atol=1e-5)
        )
        for i, s in enumerate(singles)
    )
    batch_rate, loop_rate = n / batch_s, loop_n / loop_s
    return {
        "attacks": n,
        "batch_s": batch_s,
        "batch_attacks_per_s": batch_rate,
        "loop_attacks": loop_n,
        "loop_s": loop_s,
        "loop_attacks_per_s": loop_rate,
        "speedup": batch_rate / loop_rate,
        "success_rate": float(batch.success.double().mean()),
        "mean_l2": float(batch.l2[batch.success].mean()) if bool(batch.success.any()) else float("nan"),
        "agree": agree,
        "compared": loop_n,
        "threads": threads,
        "max_iter": max_iter,
        "search_steps": search_steps,
        "peak_rss_mib": _peak_rss_mib(),
    }


def format_bench_cw(d: dict[str, Any]) -> str:
    """Human-readable report of a :func:`bench_cw` result."""
    return "\n".join(
        [
            f"C&W L2 bench: {d['attacks']} targeted attacks, threads={d['threads']}, "
            f"max_iter={d['max_iter']}, search_steps={d['search_steps']}",
            f"  batched         {d['batch_s']:.2f} s  ->  {d['batch_attacks_per_s']:.2f} attacks/s",
            f"  one by one      {d['loop_s']:.2f} s for {d['loop_attacks']}  ->  "
            f"{d['loop_attacks_per_s']:.2f} attacks/s",
            f"  speed-up        {d['speedup']:.1f}x",
            f"  same answers    {d['agree']}/{d['compared']} samples (success, iterations, sample)",
            f"  success         {100 * d['success_rate']:.1f}%  mean L2 of successes {d['mean_l2']:.3f}",
            f"  peak RSS        {d['peak_rss_mib']:.0f} MiB (process, ru_maxrss)",
        ]
    )


#: Digits the one-by-one loop of ``bench cw`` attacks (its rate is per attack; the batch's
#: answers on them must equal the loop's).
CW_LOOP_SAMPLES = 20


def bench_cw_test_set(
    samples: int,
    *,
    schedule: str = "quick",
    threads: int,
    max_iter: int = 100,
    search_steps: int = 3,
    one_by_one: int | None = None,
) -> dict[str, Any]:
    """:func:`bench_cw` on the trained ``lenet_paper`` (``schedule``): the first ``samples`` MNIST
    test digits, each toward the next class, batched; one by one, the first ``one_by_one``
    (default: :data:`CW_LOOP_SAMPLES`, or ``samples`` if fewer)."""
    from .data import load_mnist
    from .models import get_model

    model = get_model("lenet_paper", schedule, progress=False)
    mnist = load_mnist()
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= len(mnist.x_test):
        raise ValueError(f"samples={samples!r} must be an integer between 1 and {len(mnist.x_test)}")
    x, y = mnist.x_test[:samples], mnist.y_test[:samples]
    loop = min(samples, CW_LOOP_SAMPLES) if one_by_one is None else one_by_one
    return bench_cw(
        model,
        x,
        (y + 1) % 10,
        threads=threads,
        max_iter=max_iter,
        search_steps=search_steps,
        one_by_one=loop,
    )
