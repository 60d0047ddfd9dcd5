"""Timing of the attacks (``python -m advsamples bench jsma`` and ``bench cw``).

:func:`bench_jsma` times :func:`advsamples.attacks.jsma.jsma_trace` with theta = +1,
gamma = 14.5% and the logits' forward derivative (Papernot et al. 2016, Section IV), reports
throughput, iterations and the process's peak resident memory, and checks the first few
samples against the plain reference implementation
(:mod:`advsamples.attacks._jsma_reference`). :func:`format_bench` renders the result.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from typing import Any

import torch
from torch import nn

from .attacks._jsma_reference import reference_jsma
from .attacks._validate import channels_last_copy, check_int, frozen
from .attacks.jsma import forward_derivative, jsma_trace
from .device import device

__all__ = [
    "bench_cw",
    "bench_cw_test_set",
    "bench_jsma",
    "bench_jsma_peers",
    "bench_jsma_test_set",
    "format_bench",
    "format_bench_cw",
    "format_bench_peers",
    "network_bound",
]

#: The paper's full JSMA experiment: 10,000 MNIST test digits x 9 targets.
PAPER_ATTACKS = 90_000
#: The small batch whose throughput ``bench jsma`` sets beside the large batch's (issue 11: at least 80%).
SMALL_BATCH = 100

#: ``bench cw``'s settings: enough Adam steps and rounds of the c search for most attacks to succeed
#: (at 100 steps and 3 rounds only 7-8% did, so the batch stopped shrinking early and the figure
#: said little about the attack the chapters run).
CW_MAX_ITER = 200
CW_SEARCH_STEPS = 5


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB: Linux's ``VmHWM`` (the high-water
    mark of this process's own memory; ``ru_maxrss`` would carry over a forking parent's peak
    across ``exec``), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
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
    with frozen(net):
        net.eval()
        forward_derivative(net, xb, tb, use_logits=use_logits)  # warm-up
        best = _best_pass(net, xb, tb, repeats, use_logits)
    return batch_size / best


def _sync(x: torch.Tensor) -> None:
    """Wait for ``x``'s device to finish its queued work (CUDA runs asynchronously), so a timer
    read after it times the work; nothing to wait for on the CPU."""
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def _best_pass(net: nn.Module, xb: torch.Tensor, tb: torch.Tensor, repeats: int, use_logits: bool) -> float:
    """The best of ``repeats`` timed forward derivatives of ``net`` on ``(xb, tb)``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        forward_derivative(net, xb, tb, use_logits=use_logits)
        _sync(xb)
        best = min(best, time.perf_counter() - start)
    return best


def pool_sizes(iterations: torch.Tensor, batch_size: int) -> list[int]:
    """The number of rows of each forward-derivative pass of :func:`jsma_trace` on rows that ran
    ``iterations`` iterations each: its pool holds at most ``batch_size`` rows, refilled in
    order as rows finish, and a row is in ``iterations + 1`` passes (the last one sees it stop).

    Raises:
        ValueError: for ``batch_size`` below 1.
    """
    check_int("batch_size", batch_size, 1)
    left = [int(i) + 1 for i in iterations.tolist()]
    pool: list[int] = []
    nxt, sizes = 0, list[int]()
    while True:
        while len(pool) < batch_size and nxt < len(left):
            pool.append(left[nxt])
            nxt += 1
        if not pool:
            return sizes
        sizes.append(len(pool))
        pool = [r - 1 for r in pool if r > 1]


def bound_at_sizes(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    sizes: list[int],
    *,
    repeats: int = 3,
    use_logits: bool = True,
) -> float:
    """Seconds the network passes alone take at the attack's own batches: one forward derivative
    (:func:`advsamples.attacks.jsma.forward_derivative`) per entry of ``sizes`` (rows from ``x``,
    repeated if it has fewer), each distinct size timed as the best of ``repeats``."""
    check_int("repeats", repeats, 1)
    net = channels_last_copy(model) if x.dim() == 4 else model
    best: dict[int, float] = {}
    with frozen(net):
        net.eval()
        forward_derivative(net, x[:1], target[:1].long(), use_logits=use_logits)  # warm-up
        for size in sorted(set(sizes)):
            idx = torch.arange(size, device=x.device) % x.shape[0]
            best[size] = _best_pass(net, x[idx], target[idx].long(), repeats, use_logits)
    return sum(best[size] for size in sizes)


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
    ``batch_size``, ``device``, ``dtype``, ``small_batch_attacks_per_s`` and
    ``small_batch_share`` (the same rows attacked :data:`SMALL_BATCH` at a time: the rate and its
    share of the large batch's; NaN when ``batch_size`` is not larger),
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
        _sync(x)
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
        # the same passes at the batches the attack itself ran (its pool shrinks as rows finish)
        own_bound_s = bound_at_sizes(
            model, x, target, pool_sizes(res.iterations, batch_size), use_logits=use_logits
        )
        # The same rows attacked 100 at a time: how much of the large-batch rate small calls keep.
        small_s = math.nan
        if batch_size > SMALL_BATCH:
            start = time.perf_counter()
            jsma_trace(model, x, target, batch_size=SMALL_BATCH, **kwargs)
            _sync(x)
            small_s = time.perf_counter() - start
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
        # ... and over the time they take at the attack's own batch sizes
        "own_bound_s": own_bound_s,
        "own_bound_ratio": seconds / own_bound_s,
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
        "small_batch": SMALL_BATCH,
        "small_batch_attacks_per_s": num / small_s,
        # the throughput a call of SMALL_BATCH rows keeps, as a share of the large batch's
        "small_batch_share": seconds / small_s,
    }


def format_bench(d: dict[str, Any]) -> str:
    """Human-readable report of a :func:`bench_jsma` result."""
    lines = [
        f"JSMA bench: {d['attacks']} attacks on {d.get('model', 'the model')}, {d['device']} ({d['dtype']}), "
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
    if "own_bound_ratio" in d:
        lines.append(
            f"                  at the attack's own batch sizes the passes take {d['own_bound_s']:.2f} s: "
            f"the attack takes {d['own_bound_ratio']:.2f}x that"
        )
    lines += [
        *(
            [
                f"  small batches   {d['small_batch_attacks_per_s']:.1f} attacks/s at batch_size="
                f"{d['small_batch']}: {d['small_batch_share']:.0%} of the large batch's rate"
            ]
            if math.isfinite(d.get("small_batch_share", math.nan))
            else []
        ),
        f"  success         {100 * d['success_rate']:.2f}%  mean distortion of successes "
        f"{100 * d['mean_distortion']:.2f}%",
        f"  peak RSS        {d['peak_rss_mib']:.0f} MiB (process high-water mark)",
        f"  reference       {d['reference_agree']}/{d['reference_checked']} samples identical",
        f"  extrapolated    {PAPER_ATTACKS:,} attacks in {d['extrapolated_paper_s'] / 60:.1f} min "
        "at this rate",
    ]
    return "\n".join(lines)


def bench_jsma_test_set(
    samples: int,
    *,
    schedule: str = "quick",
    threads: int,
    batch_size: int = 512,
    progress: bool = False,
    model: str = "lenet_paper",
) -> dict[str, Any]:
    """:func:`bench_jsma` on the trained ``model`` (``schedule``; the paper's LeNet by default),
    with the first ``samples`` MNIST test digits each crafted toward every other class, as in the
    paper's Fig. 11 experiment."""
    from .data import load_mnist
    from .experiments.common import other_targets
    from .models import get_model

    mnist = load_mnist()
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= len(mnist.x_test):
        raise ValueError(f"samples={samples!r} must be an integer between 1 and {len(mnist.x_test)}")
    dev = device()
    net = get_model(model, schedule, progress=progress).to(dev)
    x, y = mnist.x_test[:samples].to(dev), mnist.y_test[:samples].to(dev)
    with torch.no_grad():
        classes = int(net(x[:1]).shape[1])
    rows, target = other_targets(y, classes)
    result = bench_jsma(net, x[rows], target, threads=threads, batch_size=batch_size, progress=progress)
    return result | {"model": model}


def bench_cw(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    threads: int,
    max_iter: int = CW_MAX_ITER,
    search_steps: int = CW_SEARCH_STEPS,
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
        _sync(x)
        batch_s = time.perf_counter() - start
        start = time.perf_counter()
        singles = [cw_l2_trace(model, x[i : i + 1], target[i : i + 1], **kwargs) for i in range(loop_n)]
        _sync(x)
        loop_s = time.perf_counter() - start
        # the passes as the attack runs them: a channels-last copy for image batches
        net = channels_last_copy(model) if x.dim() == 4 else model
        with frozen(net):
            pass_one, pass_batch = _step_seconds(net, x[:1]), _step_seconds(net, x)
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
    # the same outcome to a tolerance: success, and L2 within CW_L2_RTOL (float32 convolutions
    # round differently at another batch size, so Adam's path and its early abort may move a step)
    close = sum(
        int(
            bool(s.success[0] == batch.success[i])
            and (
                not bool(s.success[0]) or math.isclose(float(s.l2[0]), float(batch.l2[i]), rel_tol=CW_L2_RTOL)
            )
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
        "agree_close": close,
        "compared": loop_n,
        # the most batching can give: one forward and input-gradient pass per sample at batch 1
        # over the same per sample at the whole batch
        "pass_speedup": pass_one / (pass_batch / n),
        # the batch's time per sample and Adam step over its passes' time per sample: how far the
        # batch is from the most its passes allow (the loop's rate over it bounds the speed-up)
        "batch_step_over_pass": (batch_s / max(1, int(batch.iterations.sum()))) / (pass_batch / n),
        "max_speedup": (loop_s / max(1, sum(int(s.iterations.sum()) for s in singles))) / (pass_batch / n),
        "threads": threads,
        "device": str(x.device),
        "max_iter": max_iter,
        "search_steps": search_steps,
        "peak_rss_mib": _peak_rss_mib(),
    }


def format_bench_cw(d: dict[str, Any]) -> str:
    """Human-readable report of a :func:`bench_cw` result."""
    return "\n".join(
        [
            f"C&W L2 bench: {d['attacks']} targeted attacks on {d.get('device', 'cpu')}, "
            f"threads={d['threads']}, max_iter={d['max_iter']}, search_steps={d['search_steps']}",
            f"  batched         {d['batch_s']:.2f} s  ->  {d['batch_attacks_per_s']:.2f} attacks/s",
            f"  one by one      {d['loop_s']:.2f} s for {d['loop_attacks']}  ->  "
            f"{d['loop_attacks_per_s']:.2f} attacks/s",
            f"  speed-up        {d['speedup']:.1f}x",
            f"  network bound   {d['pass_speedup']:.1f}x: one forward and input-gradient pass per sample, "
            "batch of one over the whole batch (what batching the passes gives)",
            f"  batch's limit   each batched step takes {d['batch_step_over_pass']:.2f}x its passes; "
            f"with the batch at its passes the speed-up would be {d['max_speedup']:.1f}x",
            f"  same answers    {d['agree']}/{d['compared']} samples (success, iterations, sample); "
            f"{d['agree_close']}/{d['compared']} with the same success and L2 within {CW_L2_RTOL:.0e}",
            f"  success         {100 * d['success_rate']:.1f}%  mean L2 of successes {d['mean_l2']:.3f}",
            f"  peak RSS        {d['peak_rss_mib']:.0f} MiB (process high-water mark)",
        ]
    )


#: Relative tolerance of "the same L2" in ``bench cw``'s agreement to a tolerance.
CW_L2_RTOL = 1e-3


def _step_seconds(model: nn.Module, x: torch.Tensor, repeats: int = 20) -> float:
    """Seconds of one forward pass and one input-gradient pass (C&W's step without Adam) on ``x``,
    the median of ``repeats``, after a warm-up."""
    times = []
    for r in range(repeats + 2):
        z = x.detach().clone().requires_grad_(True)
        start = time.perf_counter()
        (g,) = torch.autograd.grad(model(z).sum(), z)
        _sync(z)
        if r >= 2:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


#: Digits the one-by-one loop of ``bench cw`` attacks (its rate is per attack; the batch's
#: answers on them must equal the loop's).
CW_LOOP_SAMPLES = 20


def bench_cw_test_set(
    samples: int,
    *,
    schedule: str = "quick",
    threads: int,
    max_iter: int = CW_MAX_ITER,
    search_steps: int = CW_SEARCH_STEPS,
    one_by_one: int | None = None,
) -> dict[str, Any]:
    """:func:`bench_cw` on the trained ``lenet_paper`` (``schedule``): the first ``samples`` MNIST
    test digits, each toward the next class, batched; one by one, the first ``one_by_one``
    (default: :data:`CW_LOOP_SAMPLES`, or ``samples`` if fewer)."""
    from .data import load_mnist
    from .models import get_model

    mnist = load_mnist()
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= len(mnist.x_test):
        raise ValueError(f"samples={samples!r} must be an integer between 1 and {len(mnist.x_test)}")
    dev = device()
    model = get_model("lenet_paper", schedule, progress=False).to(dev)
    x, y = mnist.x_test[:samples].to(dev), mnist.y_test[:samples].to(dev)
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


# --------------------------------------------------------------------------- JSMA beside the libraries
def _peer_digits(
    key: str, schedule: str, samples: int, seed: int = 0
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    from . import models as M
    from .data import load_mnist
    from .experiments.common import correct_indices, random_targets

    net = M.load(key, schedule)
    m = load_mnist()
    with torch.no_grad():
        idx = correct_indices(net, m.x_test, m.y_test, samples, seed)
    return net, m.x_test[idx], random_targets(m.y_test[idx], seed)


#: Runs of our JSMA whose best the benchmark beside the libraries sets against the network bound.
BOUND_RUNS = 3


def _peer_main(impl: str, key: str, schedule: str, digits: str, gamma: float, threads: int, out: str) -> None:
    """One implementation's JSMA in this (fresh) process, on the digits of the ``digits`` file
    (so that the data set is never loaded here and the peak memory is the attack's): its
    seconds, peak RSS and samples go to ``out`` (an ``.npz``); ours also measures its
    network-only bound."""
    import numpy as np

    from . import models as M
    from . import peers

    torch.set_num_threads(threads)
    net = M.load(key, schedule)
    with np.load(digits) as z:
        x, t = torch.from_numpy(z["x"]), torch.from_numpy(z["t"])
    kw: dict[str, Any] = {"theta": 1.0, "gamma": gamma}
    peers.load(impl)
    base = _peak_rss_mib()  # the interpreter, torch, the library and the model
    peers.craft("jsma", impl, net, x[:1], t[:1], **kw)  # warm-up (allocator, kernels)
    start = time.perf_counter()
    x_adv = peers.craft("jsma", impl, net, x, t, **kw)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    figures = {"seconds": seconds, "peak_rss_mib": peak, "attack_mib": peak - base}
    if impl == "ours":
        # The bound is the best of repeated passes, so the attack beside it is the best of
        # BOUND_RUNS runs, the table's one included (a single run also holds the machine's noise).
        best = seconds
        for _ in range(BOUND_RUNS - 1):
            start = time.perf_counter()
            res = jsma_trace(net, x, t, **kw)
            best = min(best, time.perf_counter() - start)
        rows = float((res.iterations + 1).sum())
        bound = network_bound(net, x, t, batch_size=min(256, len(x)))
        own = bound_at_sizes(net, x, t, pool_sizes(res.iterations, 256))
        figures |= {
            "best_seconds": best,
            "bound_rows_per_s": bound,
            "bound_ratio": best / (rows / bound),
            "own_bound_ratio": best / own,
        }
    arrays: dict[str, Any] = {k: np.float64(v) for k, v in figures.items()}
    np.savez(out, x_adv=x_adv.numpy(), **arrays)


def bench_jsma_peers(
    key: str = "lenet_paper",
    schedule: str = "quick",
    samples: int = 20,
    gamma: float = 0.145,
    *,
    threads: int = 1,
) -> dict[str, Any]:
    """JSMA (θ = +1, Υ = ``gamma``, the logits) by ours and by every installed library that ships
    it, each in its own fresh Python process (so that peak memory is its own), ``threads`` torch
    threads, on the same ``samples`` correctly classified test digits of model ``key``, each
    toward one random other class.

    Returns ``{"rows": [...], "bound": {...}}``: per implementation ``impl``, ``attacks``,
    ``seconds``, ``attacks_per_s``, ``ours_over`` (how many times faster ours is),
    ``peak_rss_mib`` (the process's peak), ``attack_mib`` (how far the attack raised
    it above the process with its library and model loaded) and ``same`` (the share of samples
    identical to ours); and our attack's network-only bound (:func:`network_bound`) and its
    ratio to it (the best of :data:`BOUND_RUNS` runs of ours over the best of the passes). A
    library that is not installed is left out. The digits are chosen here and handed to each
    process in a file, so no process loads the data set, and its peak memory is
    the interpreter, torch, the library, the model and the attack.

    Raises:
        ValueError: for ``samples`` or ``threads`` below 1.
        RuntimeError: naming the implementation whose process failed, with its last output.
    """
    import os
    import subprocess
    import tempfile

    import numpy as np

    from . import peers

    check_int("samples", samples, 1)
    check_int("threads", threads, 1)
    impls = ["ours"] + [lib for lib in peers.ATTACK_LIBRARIES["jsma"][1:] if peers.versions()[lib]]
    got: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _, x, t = _peer_digits(key, schedule, samples)
        digits = os.path.join(tmp, "digits.npz")
        np.savez(digits, x=x.numpy(), t=t.numpy())
        for impl in impls:
            out = os.path.join(tmp, f"{impl}.npz")
            argv = [impl, key, schedule, digits, gamma, threads, out]
            call = f"from advsamples.bench import _peer_main; _peer_main(*{argv!r})"
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            proc = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"bench jsma --peers: {impl} failed:\n{proc.stderr[-2000:]}")
            with np.load(out) as z:
                got[impl] = {k: z[k] if k == "x_adv" else float(z[k]) for k in z.files}
    ours = got["ours"]
    rows = []
    for impl, fig in got.items():
        same = (fig["x_adv"] == ours["x_adv"]).reshape(samples, -1).all(1).mean()
        rows.append(
            {
                "impl": impl,
                "attacks": samples,
                "seconds": fig["seconds"],
                "attacks_per_s": samples / fig["seconds"],
                "ours_over": fig["seconds"] / ours["seconds"],
                "peak_rss_mib": fig["peak_rss_mib"],
                "attack_mib": fig["attack_mib"],
                "same": float(same),
            }
        )
    bound = {
        "rows_per_s": ours["bound_rows_per_s"],
        "ratio": ours["bound_ratio"],
        "own_ratio": ours["own_bound_ratio"],
        "runs": BOUND_RUNS,
        "threads": threads,
        "model": key,
    }
    return {"rows": rows, "bound": bound}


def format_bench_peers(d: dict[str, Any]) -> str:
    """Human-readable report of a :func:`bench_jsma_peers` result."""
    b = d["bound"]
    lines = [
        f"JSMA beside the libraries: {d['rows'][0]['attacks']} attacks on {b['model']}, "
        f"threads={b['threads']}, each implementation in its own process",
        f"  {'implementation':<14} {'attacks/s':>10} {'ours is x faster':>17} "
        f"{'peak RSS MiB':>13} {'attack MiB':>11} {'identical':>10}",
    ]
    for r in d["rows"]:
        lines.append(
            f"  {r['impl']:<14} {r['attacks_per_s']:>10.2f} {r['ours_over']:>17.1f} "
            f"{r['peak_rss_mib']:>13.0f} {r['attack_mib']:>11.0f} {r['same']:>10.0%}"
        )
    lines.append(
        f"  network bound  {b['rows_per_s']:.0f} derivative rows/s: ours"
        + (f" (best of {b['runs']} runs)" if "runs" in b else "")
        + f" takes {b['ratio']:.2f}x its network-only time at full batches"
        + (f", {b['own_ratio']:.2f}x at its own batch sizes" if "own_ratio" in b else "")
    )
    return "\n".join(lines)
