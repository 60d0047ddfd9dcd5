"""Command line: ``python -m advsamples {data,train,run,manifest,audit,bench}``."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``python -m advsamples train: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _threads(args: argparse.Namespace) -> int:
    from .notebook import threads_from_env

    return int(args.threads) if args.threads is not None else threads_from_env()


def _data(args: argparse.Namespace) -> int:
    from . import data

    raw, source = data.ensure_mnist(log=lambda msg: print(f"  {msg}", file=sys.stderr))
    print(f"MNIST from: {source}")
    print(f"cache: {data.data_dir() / data.CACHE_FILE}")
    for name, array in raw._asdict().items():
        print(f"  {name:8s} {str(array.shape):16s} sha256 {data.sha256(array)}  ok")
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch

    from . import models
    from .artifacts import frozen_env, profile_env
    from .runner import profile_schedule

    torch.set_num_threads(_threads(args))
    names = args.models or list(models.MODEL_NAMES)
    schedule, env = args.schedule, {}
    if args.profile is not None:
        schedule = profile_schedule(args.profile)
        env = profile_env(args.profile)  # a published profile trains into results/<profile>/
    with frozen_env(env):
        _train_models(models, names, schedule)
    return 0


def _train_models(models: Any, names: list[str], schedule: str) -> None:
    for name in names:
        info = models.model_info(name, schedule)
        print(
            f"{name:14s} epochs={info.config.epochs:<4d} test accuracy={info.test_accuracy:.4f} "
            f"trained in {info.train_seconds:.0f} s ({info.threads} threads)  {info.path}"
        )


def _run(args: argparse.Namespace) -> int:
    from .runner import run_profile

    seconds = run_profile(args.profile, args.only or None, compute=args.compute, log_output=args.compute)
    print(f"[{args.profile}] all notebooks: {sum(seconds.values()):.0f} s")
    return 0


def _compute(args: argparse.Namespace) -> int:
    from .lanes import compute_profile

    codes = compute_profile(args.profile, lanes=args.lanes, interval=args.interval)
    return 1 if any(codes.values()) else 0


def _manifest(args: argparse.Namespace) -> int:
    from .artifacts import frozen_env as with_env
    from .artifacts import profile_env, verify_manifest, write_manifest

    with with_env(profile_env(args.profile)):
        if args.check:
            print(f"[{args.profile}] {verify_manifest(args.profile)} artifacts match the manifest")
        else:
            print(f"[{args.profile}] wrote {write_manifest(args.profile)}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    import torch

    from .artifacts import frozen_env, profile_env
    from .audit import audit, format_audit, recorded_threads

    with frozen_env(profile_env(args.profile)):
        threads = args.threads if args.threads is not None else recorded_threads(args.profile)
    torch.set_num_threads(threads)
    print(f"[audit {args.profile}] {threads} torch thread(s), as the run recorded")
    small = args.small
    checks = audit(
        args.profile,
        checkpoints=4 if small else None,
        jsma=args.jsma if args.jsma is not None else (10 if small else 500),
        fgsm=args.fgsm if args.fgsm is not None else (10 if small else 500),
        lbfgs=args.lbfgs if args.lbfgs is not None else (2 if small else 30),
        advtrain=1 if small else 6,
        optimal=1 if small else 4,
        optimal_attacks=0 if small else 1,
        library_attacks=("fgsm",) if small else ("fgsm", "pgd", "jsma", "jsma_neg"),
        gradflow=1 if small else 4,
        gradflow_attacks=0 if small else 1,
        seed=args.seed,
        log=lambda line: print(line, flush=True),
    )
    print(format_audit(checks))
    bad = [c.what for c in checks if not c.passed]
    if bad:
        print(f"audit: {', '.join(bad)} disagree with the committed results", file=sys.stderr)
        return 1
    print(f"audit: every re-derived result agrees exactly with the committed {args.profile} results")
    return 0


def _check_book(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .browser import check_book
    from .paths import project_root

    root = project_root()
    html = root / "_build" / "html"
    if not (html / "index.html").is_file():
        raise ValueError(f"no built book at {html.relative_to(root)}; build it first with `make book`")
    shots = root / "_build" / "screenshots"
    reports = check_book(html, shots, project_root=Path(root))
    for r in reports:
        state = "ok" if r.ok else "FAILED"
        print(f"{state:6s} {r.page}  (math: {r.typeset} typeset, images: {r.images})")
        for p in r.problems:
            print(f"       {p}")
    bad = [r.page for r in reports if not r.ok]
    print(
        f"{len(reports) - len(bad)} of {len(reports)} pages pass; screenshots in {shots.relative_to(root)}/"
    )
    return 1 if bad else 0


def _bench(args: argparse.Namespace) -> int:
    from .artifacts import frozen_env, profile_env
    from .runner import profile_schedule

    if args.profile is not None:  # its schedule, and a published profile's committed checkpoints
        args.schedule = profile_schedule(args.profile)
        with frozen_env(profile_env(args.profile)):
            return _bench_models(args)
    return _bench_models(args)


def _bench_models(args: argparse.Namespace) -> int:
    from .bench import bench_cw_test_set, bench_jsma_test_set, format_bench, format_bench_cw

    threads = _threads(args)
    if args.what == "jsma" and args.peers:
        from .bench import bench_jsma_peers, format_bench_peers

        peer = bench_jsma_peers(args.model, args.schedule, args.samples, threads=threads)
        print(format_bench_peers(peer))
        return 0
    if args.what == "cw":
        print(format_bench_cw(bench_cw_test_set(args.samples, schedule=args.schedule, threads=threads)))
        return 0
    result = bench_jsma_test_set(
        args.samples,
        schedule=args.schedule,
        threads=threads,
        batch_size=args.batch_size,
        progress=True,
        model=args.model,
    )
    print(format_bench(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m advsamples", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("data", help="fetch and verify MNIST, and say where it came from")
    p.set_defaults(func=_data)

    p = sub.add_parser("train", help="train (or load) the study's models and print their accuracy")
    p.add_argument("models", nargs="*", help="model names (default: all)")
    p.add_argument("--schedule", default="quick", help="epochs schedule: quick or paper")
    p.add_argument(
        "--profile",
        default=None,
        help="train a profile's models (its schedule; a published profile's go to results/<profile>/)",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch threads (default: $ADVSAMPLES_THREADS or all cores)",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("run", help="execute every chapter notebook of a profile with papermill")
    p.add_argument("--profile", default="quick", help="params/<profile>.yml (quick or paper)")
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks")
    p.add_argument(
        "--compute",
        action="store_true",
        help="a published profile (paper) computes what is missing, resumably, instead of reading "
        "its committed artifacts only (make paper)",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser("compute", help="compute every chapter of a profile in parallel lanes (resumable)")
    p.add_argument("--profile", default="paper", help="params/<profile>.yml (default: paper)")
    p.add_argument(
        "--lanes", type=int, choices=[1, 2], default=2, help="parallel processes, 1 torch thread each"
    )
    p.add_argument("--interval", type=float, default=60.0, help="seconds between progress lines")
    p.set_defaults(func=_compute)

    p = sub.add_parser("manifest", help="write (or --check) the manifest of a published profile's artifacts")
    p.add_argument("--profile", default="paper", help="the published profile (default: paper)")
    p.add_argument("--check", action="store_true", help="verify the files against the manifest instead")
    p.set_defaults(func=_manifest)

    p = sub.add_parser(
        "audit", help="re-derive a seeded sample of the published results and count agreements"
    )
    p.add_argument("--profile", default="paper", help="the published profile (default: paper)")
    p.add_argument("--small", action="store_true", help="the size make test runs (under a minute)")
    p.add_argument("--jsma", type=_positive_int, default=None, help="JSMA attacks to re-craft")
    p.add_argument("--fgsm", type=_positive_int, default=None, help="FGSM digits to re-craft")
    p.add_argument("--lbfgs", type=_positive_int, default=None, help="L-BFGS attacks to re-craft")
    p.add_argument("--seed", type=int, default=0, help="seed of the draw of what is re-derived")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch threads (default: the run's recorded count)",
    )
    p.set_defaults(func=_audit)

    p = sub.add_parser("check-book", help="open every page of the built book in headless Chromium, offline")
    p.set_defaults(func=_check_book)

    p = sub.add_parser("bench", help="benchmarks that print figures (speed, memory)")
    p.add_argument("what", choices=["jsma", "cw"], help="which benchmark (cw: batched against one by one)")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch threads (default: $ADVSAMPLES_THREADS or all cores)",
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=200,
        help="test digits to attack (jsma: each toward its 9 other classes; cw: toward the next class)",
    )
    p.add_argument("--schedule", default="quick", help="which trained model to attack: quick or paper")
    p.add_argument(
        "--profile",
        default=None,
        help="attack a profile's models (its schedule; a published profile's committed checkpoints)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=512, help="samples attacked together")
    p.add_argument(
        "--peers",
        action="store_true",
        help="jsma: ours beside ART, torchattacks and advertorch, each in its own process "
        "(--samples digits, one random target each)",
    )
    p.add_argument("--model", default="lenet_paper", help="jsma: the model key attacked")
    p.set_defaults(func=_bench)

    args = parser.parse_args(argv)
    from .artifacts import ArtifactError
    from .data import DataError
    from .models import CheckpointError

    try:
        return int(args.func(args))
    except (ValueError, DataError, CheckpointError, ArtifactError, FileNotFoundError) as exc:
        # a user error: one line naming the flag, variable or file and the fix, no traceback
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
