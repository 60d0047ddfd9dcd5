"""``make audit``: re-derive a seeded random sample of a published profile's results from its
committed checkpoints, and count how many agree *exactly* with what is committed.

- **checkpoints**: every committed checkpoint's test accuracy, evaluated again;
- **JSMA**: attacks drawn from the JSMA chapter's committed runs (each sample of the paper's three
  sets toward each other class), crafted again one by one;
- **FGSM**: digits drawn from the FGSM chapter's per-sample record (each model's prediction and
  confidence on its FGSM sample at the table's budget), the batch holding each crafted again;
- **L-BFGS**: attacks drawn from the L-BFGS chapter's per-attack record (success, distortion and
  the penalty weight c that the search settled on), crafted again;
- **adversarial training**: chunks drawn from the adversarial-training chapter's FGSM and PGD
  evaluation of its three models (per digit: misclassified at every FGSM budget, the predicted
  label's probability, fooled by PGD), computed again; each digit is one check;
- **the optimal attack**: chunks of that chapter's FGSM and PGD evaluation, and (full audit) whole
  chunks of its L-BFGS and C&W attacks on the linear model, computed again;
- **beside the libraries**: chunks of the libraries chapter's attacks (FGSM; the full audit adds
  PGD and JSMA at θ = ±1), every implementation crafted again, each digit's success, distance
  and agreement with ours compared.
- **gradient flow**: chunks of that chapter's white-box FGSM record (every model variant, every
  budget), and (full audit) whole chunks of its L-BFGS attacks, computed again.

It reads the committed artifacts only (frozen: nothing missing is recomputed) after checking them
against the manifest, so a change to an attack that changes its answers shows here even when
nobody reruns the paper profile. ``make test`` runs it at a small size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from .artifacts import FROZEN_ENV, ArtifactError, frozen_env, profile_env, verify_manifest

__all__ = ["Check", "audit", "format_audit", "recorded_threads"]

R = TypeVar("R")


@dataclass
class Check:
    """One kind of check: how many were re-derived, how many agree exactly, and the first few
    disagreements in words."""

    what: str
    checked: int = 0
    agree: int = 0
    seconds: float = 0.0
    disagreements: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, ok: bool, detail: str) -> None:
        self.checked += 1
        self.agree += int(ok)
        if not ok and len(self.disagreements) < 5:
            self.disagreements.append(detail)

    @property
    def passed(self) -> bool:
        """Everything re-derived agrees; a kind with no committed result yet (a paper run still
        under way) checks nothing and passes, and says so."""
        return self.agree == self.checked and (self.checked > 0 or bool(self.missing))


def _what(exc: ArtifactError) -> str:
    return str(exc).split(". The published")[0]  # the file and why, without the ways on


def _committed(check: Check, load: Callable[[], R]) -> R | None:
    """``load()``, or ``None`` (noted in ``check``) when its result is not committed yet."""
    try:
        return load()
    except ArtifactError as exc:
        check.missing.append(_what(exc))
        return None


def _draw(n_total: int, k: int, rng: np.random.Generator) -> list[int]:
    return sorted(rng.choice(n_total, size=min(k, n_total), replace=False).tolist())


def _checkpoints(check: Check, limit: int | None, rng: np.random.Generator) -> None:
    from . import models as M
    from .data import load_mnist
    from .paths import checkpoint_dir

    paths = sorted(checkpoint_dir().glob("*.pt"))
    if limit is not None:
        paths = [paths[i] for i in _draw(len(paths), limit, rng)]
    mnist = load_mnist()
    for path in paths:
        model, meta = M.load_checkpoint(path)
        x, y = M.evaluation_set(str(meta["name"]), mnist.x_test, mnist.y_test)
        acc = M.evaluate(model, x, y)
        check.add(acc == meta["test_accuracy"], f"{path.name}: {acc!r} against {meta['test_accuracy']!r}")


def _jsma(check: Check, profile: str, k: int, rng: np.random.Generator) -> None:
    from .attacks.jsma import jsma_trace
    from .data import paper_sets
    from .experiments import jsma as J

    p = J.Params.from_profile(profile)
    main: dict[str, J.MainRuns] = {}
    for s in p.sets:  # each set's committed run (a paper run still under way may lack some)
        try:
            main[s] = J.main_runs(p, sets=[s])
        except ArtifactError as exc:
            check.missing.append(f"{s} set: {_what(exc)}")
    data = paper_sets()
    flat = [(s, i) for s, m in main.items() for i in range(len(m.runs[s]))]
    for j in _draw(len(flat), k, rng):
        s, i = flat[j]
        run = main[s].runs[s]
        digit = int(main[s].indices[s][i // (J.CLASSES - 1)])
        res = jsma_trace(
            main[s].model,
            data[s][0][digit][None],
            run.target[i][None],
            theta=run.theta,
            gamma=run.gamma,
            use_logits=run.use_logits,
        )
        got = (bool(res.success[0]), int(res.iterations[0]), float(res.distortion[0]))
        want = (bool(run.success[i]), int(run.iterations[i]), float(run.distortion[i]))
        check.add(got == want, f"{s} digit {digit} → {int(run.target[i])}: {got} against {want}")


def _fgsm(check: Check, profile: str, k: int, rng: np.random.Generator) -> None:
    from .data import load_mnist
    from .experiments import fgsm as F

    p = F.Params.from_profile(profile)
    result = _committed(check, lambda: F.run(p, progress=False))
    if result is None:
        return
    sets = F.attack_sets(result.names, p.schedule, p.n_samples, p.seed, mnist=load_mnist())
    flat = [(n, i) for n in result.names for i in range(len(sets[n][1]))]
    for j in _draw(len(flat), k, rng):
        name, i = flat[j]
        model, x, y = sets[name]
        a = i // F.BATCH * F.BATCH  # the batch the chapter crafted this digit in
        pred, conf = F.sample_outcome(model, x[a : a + F.BATCH], y[a : a + F.BATCH], result.table_eps)
        row = result.row(name)
        want_pred, want_conf = int(result.sample_pred[row, i]), float(result.sample_conf[row, i])
        got_pred, got_conf = int(pred[i - a]), float(conf[i - a])
        check.add(
            got_pred == want_pred and got_conf == want_conf,
            f"{name} digit {i}: {got_pred} ({got_conf!r}) against {want_pred} ({want_conf!r})",
        )


def _lbfgs(check: Check, profile: str, k: int, rng: np.random.Generator) -> None:
    from .attacks.lbfgs import lbfgs_trace
    from .data import load_mnist
    from .experiments import lbfgs as L

    p = L.Params.from_profile(profile)
    result = _committed(check, lambda: L.run(p, progress=False))
    if result is None:
        return
    mnist = load_mnist()
    flat = [(m, i) for m in range(len(p.models)) for i in range(result.attack_success.shape[1])]
    nets: dict[str, torch.nn.Module] = {}
    for j in _draw(len(flat), k, rng):
        m, i = flat[j]
        key = p.models[m]
        if key not in nets:  # each model loaded once (setdefault would load it on every draw)
            nets[key] = L.load_model(key, p.schedule)
        net = nets[key]
        idx, targets = L.attacked_samples(net, mnist.x_test, mnist.y_test, p.n_samples, p.seed)
        res = lbfgs_trace(net, mnist.x_test[idx[i : i + 1]], targets[i : i + 1], **p.search(), progress=False)
        want = (
            bool(result.attack_success[m, i]),
            float(result.attack_distortion[m, i]),
            float(result.attack_c[m, i]),
        )
        got = (bool(res.success[0]), float(res.distortion[0]), float(res.c[0]))
        same = want[0] == got[0] and all(
            a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(want[1:], got[1:], strict=True)
        )
        check.add(same, f"{key} sample {i}: {got} against {want}")


def _eval_chunks(
    check: Check,
    k: int,
    rng: np.random.Generator,
    labels: Sequence[str],
    n_items: int,
    chunk: int,
    recompute: Callable[[int, int, int], Mapping[str, np.ndarray]],
    committed: Callable[[int], Mapping[str, np.ndarray]],
) -> None:
    """``k`` chunks drawn over every (model, chunk) of a chapter's per-digit evaluation,
    computed again (``recompute(model, start, stop)``) and compared, digit by digit, with the
    committed record (``committed(model)``, indexed by digit); each digit is one check."""
    flat = [(m, a) for m in range(len(labels)) for a in range(0, n_items, chunk)]
    for j in _draw(len(flat), k, rng):
        m, a = flat[j]
        b = min(a + chunk, n_items)
        got, want = recompute(m, a, b), committed(m)
        for i in range(b - a):
            same = all(np.array_equal(got[key][i], want[key][a + i]) for key in got)
            check.add(same, f"{labels[m]} digit {a + i}: FGSM/PGD outcome differs from the committed one")


def _advtrain(check: Check, profile: str, k: int, rng: np.random.Generator) -> None:
    from .experiments import advtrain as A

    p = A.Params.from_profile(profile)
    result = _committed(check, lambda: A.run(p, progress=False))
    if result is None:
        return
    models = A.load_models(p)
    x, y = A.eval_digits(p)
    _eval_chunks(
        check,
        k,
        rng,
        A.MODELS,
        len(x),
        A.EVAL_CHUNK,
        lambda m, a, b: A.eval_chunk(p, models[A.MODELS[m]][0], x[a:b], y[a:b], a),
        lambda m: {
            "wrong": result.eval_wrong[m],
            "conf": result.eval_conf[m],
            "pgd_wrong": result.eval_pgd_wrong[m],
        },
    )


def _optimal(check: Check, profile: str, k: int, attacks: int, rng: np.random.Generator) -> None:
    from .experiments import optimal as O
    from .models import load

    p = O.Params.from_profile(profile)
    result = _committed(check, lambda: O.run(p, progress=False))
    if result is None:
        return
    nets: dict[str, torch.nn.Module] = {}

    def net(m: int) -> torch.nn.Module:
        if p.models[m] not in nets:
            nets[p.models[m]] = load(p.models[m], p.schedule)
        return nets[p.models[m]]

    xe, ye = O.eval_digits(p)
    _eval_chunks(
        check,
        k,
        rng,
        p.models,
        p.n_eval,
        O.EVAL_CHUNK,
        lambda m, a, b: O.eval_chunk(p, net(m), xe[a:b], ye[a:b], a),
        lambda m: {"fgsm_wrong": result.eval_fgsm_wrong[m], "pgd_wrong": result.eval_pgd_wrong[m]},
    )
    # Whole chunks of L-BFGS and C&W attacks (a chunk is what the run batched), on the cheapest model.
    linear = [m for m, key in enumerate(p.models) if key.startswith("fc10(")]
    if not linear or attacks < 1:
        return
    m = linear[0]
    x, _, t = O.attack_digits(p, net(m))
    chunk_starts = list(range(0, p.n_samples, O.CHUNK))
    for j in _draw(len(chunk_starts), attacks, rng):
        a = chunk_starts[j]
        b = min(a + O.CHUNK, p.n_samples)
        got = O.attack_chunk(p, net(m), x[a:b], t[a:b])
        for q, name in enumerate(O.ATTACKS):
            for i in range(b - a):
                same = bool(got[f"{name}_success"][i]) == bool(
                    result.success[q, m, a + i]
                ) and np.array_equal(got[f"{name}_l2"][i], result.l2[q, m, a + i], equal_nan=True)
                check.add(same, f"{p.models[m]} {name} attack {a + i}: differs from the committed one")


def _gradflow(check: Check, profile: str, k: int, attacks: int, rng: np.random.Generator) -> None:
    """``k`` chunks of the gradient-flow chapter's white-box FGSM record (every variant, every
    budget) and ``attacks`` chunks of its L-BFGS attacks, computed again and compared digit by digit."""
    from .experiments import gradflow as Gf
    from .models import load

    p = Gf.Params.from_profile(profile)
    result = _committed(check, lambda: Gf.run(p, progress=False))
    if result is None:
        return
    net = load(p.model, p.schedule)
    xe, ye = Gf.eval_digits(p)
    _eval_chunks(
        check,
        k,
        rng,
        [p.model],
        p.n_eval,
        Gf.EVAL_CHUNK,
        lambda m, a, b: {"wrong": Gf.eval_chunk(p, net, xe[a:b], ye[a:b])["wrong"]},
        lambda m: {"wrong": result.eval_wrong},
    )
    x, _, t = Gf.lbfgs_digits(p)
    starts = list(range(0, p.n_lbfgs, Gf.LBFGS_CHUNK))
    for j in _draw(len(starts), attacks, rng):
        a = starts[j]
        b = min(a + Gf.LBFGS_CHUNK, p.n_lbfgs)
        got = Gf.lbfgs_chunk(p, net, x[a:b], t[a:b])
        for i in range(b - a):
            same = np.array_equal(got["success"][i], result.lbfgs_success[:, a + i]) and np.array_equal(
                got["l2"][i], result.lbfgs_l2[:, a + i], equal_nan=True
            )
            check.add(same, f"L-BFGS digit {a + i}: differs from the committed one on some variant")


def _libraries(
    check: Check, profile: str, k: int, attacks: tuple[str, ...], rng: np.random.Generator
) -> None:
    """``k`` chunks of each of ``attacks`` of the libraries chapter (every implementation of the
    attack on those digits, ours and the libraries'), crafted again and compared digit by digit
    with the committed success, distance and agreement with ours."""
    from .experiments import libraries as Lib
    from .models import load

    p = Lib.Params.from_profile(profile)
    result = _committed(check, lambda: Lib.run(p, progress=False))
    if result is None:
        return
    for attack in attacks:
        targeted = Lib.ATTACKS[attack][1]
        n = p.n_slow if attack in ("cw", "lbfgs", "lbfgs_untargeted") else p.n_digits
        flat = [(m, a) for m in range(len(p.models)) for a in range(0, n, Lib.CHUNK)]
        for j in _draw(len(flat), k, rng):
            m, a = flat[j]
            b = min(a + Lib.CHUNK, n)
            net = load(p.models[m], p.schedule)
            x, y, t = Lib.digits(p, net)
            got = Lib.attack_chunk(p, attack, net, x[a:b], (t if targeted else y)[a:b])
            for c, (name, lib) in enumerate(result.cells):
                if name != attack:
                    continue
                for i in range(b - a):
                    same = all(
                        np.array_equal(got[f"{lib}_{f}"][i], getattr(result, f)[m, c, a + i], equal_nan=True)
                        for f in ("success", "distance", "same")
                    )
                    check.add(
                        same,
                        f"{p.models[m]} {attack} by {lib}, digit {a + i}: differs from the committed one",
                    )


def recorded_threads(profile: str = "paper") -> int:
    """The torch thread count the profile's run recorded (every chapter's provenance and every
    checkpoint; 1 if they are not all the same or none is recorded): a sum's order, hence its last
    digit, depends on it, so the audit re-derives with the same count."""
    from .artifacts import load_manifest

    manifest = load_manifest(profile)
    counts = {int(p["threads"]) for p in (manifest.get("chapters") or {}).values() if p and p.get("threads")}
    counts |= {int(c["threads"]) for c in (manifest.get("checkpoints") or {}).values() if c.get("threads")}
    return counts.pop() if len(counts) == 1 else 1


def audit(
    profile: str = "paper",
    *,
    checkpoints: int | None = None,
    jsma: int = 200,
    fgsm: int = 200,
    lbfgs: int = 20,
    advtrain: int = 3,
    optimal: int = 2,
    optimal_attacks: int = 0,
    libraries: int = 1,
    library_attacks: tuple[str, ...] = ("fgsm",),
    gradflow: int = 1,
    gradflow_attacks: int = 0,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[Check]:
    """Re-derive a seeded random sample of ``profile``'s committed results (``checkpoints``
    checkpoints, all if ``None``; ``jsma``, ``fgsm`` and ``lbfgs`` attacks, ``advtrain`` chunks of
    the adversarial-training evaluation; ``optimal`` chunks of the optimal-attack chapter's FGSM and
    PGD evaluation and ``optimal_attacks`` chunks of its L-BFGS and C&W attacks; ``libraries`` chunks
    of each of the libraries chapter's ``library_attacks``, every implementation; ``gradflow`` chunks
    of the gradient-flow chapter's white-box FGSM record and ``gradflow_attacks`` of its L-BFGS
    attacks) and count exact
    agreements. Raises :class:`advsamples.artifacts.ArtifactError` if an artifact is missing or
    altered."""
    env = profile_env(profile)
    with frozen_env(env):
        n = verify_manifest(profile)
    log(f"[audit {profile}] {n} artifacts match their manifest")
    rng = np.random.default_rng(seed)
    out = []
    steps: list[tuple[str, Callable[[Check], None]]] = [
        ("checkpoints: test accuracy", lambda c: _checkpoints(c, checkpoints, rng)),
        ("JSMA attacks", lambda c: _jsma(c, profile, jsma, rng)),
        ("FGSM samples", lambda c: _fgsm(c, profile, fgsm, rng)),
        ("L-BFGS attacks", lambda c: _lbfgs(c, profile, lbfgs, rng)),
        ("adversarial training", lambda c: _advtrain(c, profile, advtrain, rng)),
        ("optimal attack", lambda c: _optimal(c, profile, optimal, optimal_attacks, rng)),
        ("beside the libraries", lambda c: _libraries(c, profile, libraries, library_attacks, rng)),
        ("gradient flow", lambda c: _gradflow(c, profile, gradflow, gradflow_attacks, rng)),
    ]
    with frozen_env(env | {FROZEN_ENV: "1"}):
        for what, fn in steps:
            check = Check(what)
            start = time.perf_counter()
            fn(check)
            check.seconds = time.perf_counter() - start
            log(format_audit([check]).splitlines()[1])
            out.append(check)
    return out


def format_audit(checks: list[Check]) -> str:
    """One line per check (``agree/checked``, seconds), then its disagreements."""
    lines = ["check                        agree / re-derived   seconds"]
    for c in checks:
        lines.append(f"{c.what:28s} {c.agree:6d} / {c.checked:<10d} {c.seconds:8.1f}")
        lines.extend(f"    differs: {d}" for d in c.disagreements)
        lines.extend(f"    not committed yet, not audited: {m}" for m in c.missing)
    return "\n".join(lines)
