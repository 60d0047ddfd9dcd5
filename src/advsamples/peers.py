"""The attack libraries people use, behind one call each, beside ours.

Five libraries ship the attacks this study implements; each is called here through its own
public API, with the study's settings translated into its arguments, and nothing of theirs
patched or copied:

- **ART** (adversarial-robustness-toolbox): ``FastGradientMethod``, ``ProjectedGradientDescent``,
  ``SaliencyMapMethod``, ``CarliniL2Method``, on a ``PyTorchClassifier``;
- **torchattacks**: ``FGSM``, ``PGD``, ``JSMA``, ``CW``;
- **advertorch**: ``GradientSignAttack``, ``LinfPGDAttack``, ``JacobianSaliencyMapAttack``,
  ``CarliniWagnerL2Attack``, ``LBFGSAttack``;
- **foolbox 3**: ``LinfFastGradientAttack``, ``LinfPGD``, ``L2CarliniWagnerAttack``;
- **cleverhans 4** (its PyTorch attacks): ``fast_gradient_method``, ``projected_gradient_descent``,
  ``carlini_wagner_l2``.

advertorch 0.2.3 imports ``zero_gradients`` from ``torch.autograd.gradcheck``, which torch has
since removed; :func:`import_advertorch` provides that function there (from our side, at import
time) before advertorch is imported. The libraries are an optional install group, pinned in
``requirements-peers.lock`` (``make setup`` installs it); :func:`versions` says what is present.

Every adapter has the signature ``(model, x, labels, **settings) -> x_adv``: ``x`` a CPU float
batch in [0, 1], ``labels`` the true labels (untargeted) or the targets (targeted), ``x_adv`` a
tensor of ``x``'s shape and dtype. :data:`ADAPTERS` maps ``(attack, library)`` to the adapter,
``"ours"`` included, so that one loop runs everything (:func:`craft`).
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from advsamples.attacks.cw import cw_l2
from advsamples.attacks.fgsm import fgsm
from advsamples.attacks.jsma import jsma_trace
from advsamples.attacks.lbfgs import lbfgs
from advsamples.attacks.pgd import pgd

__all__ = [
    "ADAPTERS",
    "ATTACK_LIBRARIES",
    "DISTRIBUTIONS",
    "LABELS",
    "LIBRARIES",
    "MissingPeer",
    "craft",
    "import_advertorch",
    "load",
    "versions",
]

#: The libraries, by short name, and their distribution on PyPI.
DISTRIBUTIONS: dict[str, str] = {
    "art": "adversarial-robustness-toolbox",
    "torchattacks": "torchattacks",
    "advertorch": "advertorch",
    "foolbox": "foolbox",
    "cleverhans": "cleverhans",
}
LIBRARIES: tuple[str, ...] = tuple(DISTRIBUTIONS)
#: How the book names each implementation.
LABELS: dict[str, str] = {
    "ours": "ours",
    "art": "ART",
    "torchattacks": "torchattacks",
    "advertorch": "advertorch",
    "foolbox": "foolbox",
    "cleverhans": "cleverhans",
}

Adapter = Callable[..., torch.Tensor]


class MissingPeer(RuntimeError):
    """A library of the optional group is not installed (the message says how to install it)."""


def versions() -> dict[str, str | None]:
    """The installed version of each library (``None`` where it is missing)."""
    out: dict[str, str | None] = {}
    for lib, dist in DISTRIBUTIONS.items():
        try:
            out[lib] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[lib] = None
    return out


def _import(module: str, lib: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingPeer(
            f"{DISTRIBUTIONS[lib]} is not installed ({exc}); `make setup` installs the pinned "
            "libraries of requirements-peers.lock"
        ) from exc


#: The modules each library's adapters import (what :func:`load` imports ahead of a timing).
_MODULES: dict[str, tuple[str, ...]] = {
    "art": ("art.attacks.evasion", "art.estimators.classification"),
    "torchattacks": ("torchattacks",),
    "advertorch": (),
    "foolbox": ("foolbox",),
    "cleverhans": (
        "cleverhans.torch.attacks.fast_gradient_method",
        "cleverhans.torch.attacks.projected_gradient_descent",
        "cleverhans.torch.attacks.carlini_wagner_l2",
    ),
}


def load(library: str) -> None:
    """Import ``library``'s attack modules now (``"ours"``: nothing), so that a timing that
    follows does not count the import. Raises :class:`MissingPeer` if it is not installed."""
    if library == "advertorch":
        import_advertorch()
    for module in _MODULES.get(library, ()):
        _import(module, library)


def _zero_gradients(x: torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor]) -> None:
    """torch's former ``torch.autograd.gradcheck.zero_gradients``: zero ``x.grad`` in place."""
    if isinstance(x, torch.Tensor):
        if x.grad is not None:
            x.grad.detach_()
            x.grad.zero_()
    else:
        for elem in x:
            _zero_gradients(elem)


def import_advertorch() -> Any:
    """``advertorch.attacks``, importable on today's torch: ``zero_gradients`` (removed from
    ``torch.autograd.gradcheck`` in torch 1.9, imported by advertorch 0.2.3) is provided there
    first, if missing; advertorch's files are not touched."""
    import sys

    import torch.autograd.gradcheck  # noqa: F401  (the module; its attribute on torch.autograd is a function)

    gradcheck = sys.modules["torch.autograd.gradcheck"]
    if not hasattr(gradcheck, "zero_gradients"):
        gradcheck.zero_gradients = _zero_gradients  # type: ignore[attr-defined]
    return _import("advertorch.attacks", "advertorch")


def _classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


def _art_classifier(model: nn.Module, x: torch.Tensor) -> Any:
    est = _import("art.estimators.classification", "art")
    return est.PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=_classes(model, x),
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float32)


def _back(a: Any, like: torch.Tensor) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    return t.detach().to(like.dtype).reshape(like.shape).cpu()


def _onehot(labels: torch.Tensor, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels.cpu().numpy()]


def _fb_model(model: nn.Module) -> Any:
    fb = _import("foolbox", "foolbox")
    return fb, fb.PyTorchModel(model, bounds=(0.0, 1.0))


def _fb_criterion(fb: Any, labels: torch.Tensor, targeted: bool) -> Any:
    return (
        fb.criteria.TargetedMisclassification(labels) if targeted else fb.criteria.Misclassification(labels)
    )


# --------------------------------------------------------------------------- FGSM (untargeted)
def _fgsm_ours(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    return fgsm(model, x, y, eps)


def _fgsm_art(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    ev = _import("art.attacks.evasion", "art")
    clf = _art_classifier(model, x)
    atk = ev.FastGradientMethod(clf, norm=np.inf, eps=eps, batch_size=len(x))
    return _back(atk.generate(_np(x), y=_onehot(y, clf.nb_classes)), x)


def _fgsm_torchattacks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    ta = _import("torchattacks", "torchattacks")
    return _back(ta.FGSM(model, eps=eps)(x, y), x)


def _fgsm_advertorch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    at = import_advertorch()
    atk = at.GradientSignAttack(model, loss_fn=nn.CrossEntropyLoss(reduction="sum"), eps=eps)
    return _back(atk.perturb(x, y), x)


def _fgsm_foolbox(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    fb, fm = _fb_model(model)
    _, clipped, _ = fb.attacks.LinfFastGradientAttack(random_start=False)(fm, x, y, epsilons=eps)
    return _back(clipped, x)


def _fgsm_cleverhans(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    fgm = _import("cleverhans.torch.attacks.fast_gradient_method", "cleverhans")
    return _back(fgm.fast_gradient_method(model, x, eps, np.inf, clip_min=0.0, clip_max=1.0, y=y), x)


# ------------------------------------------------------------------ PGD (untargeted, no random start)
def _pgd_ours(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float
) -> torch.Tensor:
    return pgd(model, x, y, eps, steps=steps, alpha=alpha)


def _pgd_art(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float
) -> torch.Tensor:
    ev = _import("art.attacks.evasion", "art")
    clf = _art_classifier(model, x)
    atk = ev.ProjectedGradientDescent(
        clf,
        norm=np.inf,
        eps=eps,
        eps_step=alpha,
        max_iter=steps,
        num_random_init=0,
        batch_size=len(x),
        verbose=False,
    )
    return _back(atk.generate(_np(x), y=_onehot(y, clf.nb_classes)), x)


def _pgd_torchattacks(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float
) -> torch.Tensor:
    ta = _import("torchattacks", "torchattacks")
    return _back(ta.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y), x)


def _pgd_advertorch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float
) -> torch.Tensor:
    at = import_advertorch()
    atk = at.LinfPGDAttack(
        model,
        loss_fn=nn.CrossEntropyLoss(reduction="sum"),
        eps=eps,
        nb_iter=steps,
        eps_iter=alpha,
        rand_init=False,
    )
    return _back(atk.perturb(x, y), x)


def _pgd_foolbox(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float
) -> torch.Tensor:
    fb, fm = _fb_model(model)
    atk = fb.attacks.LinfPGD(abs_stepsize=alpha, steps=steps, random_start=False)
    _, clipped, _ = atk(fm, x, y, epsilons=eps)
    return _back(clipped, x)


def _pgd_cleverhans(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, alpha: float
) -> torch.Tensor:
    m = _import("cleverhans.torch.attacks.projected_gradient_descent", "cleverhans")
    out = m.projected_gradient_descent(
        model,
        x,
        eps,
        alpha,
        steps,
        np.inf,
        clip_min=0.0,
        clip_max=1.0,
        y=y,
        rand_init=False,
        sanity_checks=False,
    )
    return _back(out, x)


# --------------------------------------------------------------------------- JSMA (targeted)
def _jsma_ours(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, *, theta: float, gamma: float, domain: Any = "movable"
) -> torch.Tensor:
    return jsma_trace(model, x, t, theta=theta, gamma=gamma, domain=domain).x_adv


def _jsma_art(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, *, theta: float, gamma: float
) -> torch.Tensor:
    ev = _import("art.attacks.evasion", "art")
    clf = _art_classifier(model, x)
    atk = ev.SaliencyMapMethod(clf, theta=theta, gamma=gamma, batch_size=len(x), verbose=False)
    return _back(atk.generate(_np(x), y=_onehot(t, clf.nb_classes)), x)


def _jsma_torchattacks(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, *, theta: float, gamma: float
) -> torch.Tensor:
    ta = _import("torchattacks", "torchattacks")
    atk = ta.JSMA(model, theta=theta, gamma=gamma)
    atk.set_mode_targeted_by_label(quiet=True)
    return _back(atk(x, t), x)


def _jsma_advertorch(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, *, theta: float, gamma: float
) -> torch.Tensor:
    at = import_advertorch()
    atk = at.JacobianSaliencyMapAttack(model, _classes(model, x), theta=theta, gamma=gamma)
    return _back(atk.perturb(x, t), x)


# --------------------------------------------------------------------------- C&W L2 (targeted)
def _cw_ours(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    lr: float,
    c_init: float,
) -> torch.Tensor:
    return cw_l2(
        model, x, t, targeted=True, search_steps=search_steps, max_iter=max_iter, lr=lr, c_init=c_init
    )


def _cw_art(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    lr: float,
    c_init: float,
) -> torch.Tensor:
    ev = _import("art.attacks.evasion", "art")
    clf = _art_classifier(model, x)
    atk = ev.CarliniL2Method(
        clf,
        targeted=True,
        learning_rate=lr,
        binary_search_steps=search_steps,
        max_iter=max_iter,
        initial_const=c_init,
        batch_size=len(x),
        verbose=False,
    )
    return _back(atk.generate(_np(x), y=_onehot(t, clf.nb_classes)), x)


def _cw_torchattacks(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    lr: float,
    c_init: float,
) -> torch.Tensor:
    # torchattacks' CW has no search of c: one run of max_iter Adam steps at its default c = 1.
    ta = _import("torchattacks", "torchattacks")
    atk = ta.CW(model, c=1.0, kappa=0.0, steps=max_iter, lr=lr)
    atk.set_mode_targeted_by_label(quiet=True)
    return _back(atk(x, t), x)


def _cw_advertorch(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    lr: float,
    c_init: float,
) -> torch.Tensor:
    at = import_advertorch()
    atk = at.CarliniWagnerL2Attack(
        model,
        _classes(model, x),
        targeted=True,
        learning_rate=lr,
        binary_search_steps=search_steps,
        max_iterations=max_iter,
        initial_const=c_init,
    )
    return _back(atk.perturb(x, t), x)


def _cw_foolbox(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    lr: float,
    c_init: float,
) -> torch.Tensor:
    fb, fm = _fb_model(model)
    atk = fb.attacks.L2CarliniWagnerAttack(
        binary_search_steps=search_steps, steps=max_iter, stepsize=lr, initial_const=c_init
    )
    raw, _, _ = atk(fm, x, _fb_criterion(fb, t, True), epsilons=None)
    return _back(raw, x)


def _cw_cleverhans(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    lr: float,
    c_init: float,
) -> torch.Tensor:
    m = _import("cleverhans.torch.attacks.carlini_wagner_l2", "cleverhans")
    out = m.carlini_wagner_l2(
        model,
        x,
        _classes(model, x),
        y=t,
        targeted=True,
        lr=lr,
        initial_const=c_init,
        binary_search_steps=search_steps,
        max_iterations=max_iter,
    )
    return _back(out, x)


# --------------------------------------------------------------------------- L-BFGS (targeted)
def _lbfgs_ours(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, *, search_steps: int, max_iter: int, c_init: float
) -> torch.Tensor:
    return lbfgs(model, x, t, c_init=c_init, search_steps=search_steps, max_iter=max_iter)


def _lbfgs_advertorch(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    search_steps: int,
    max_iter: int,
    c_init: float,
    targeted: bool = True,
) -> torch.Tensor:
    at = import_advertorch()
    atk = at.LBFGSAttack(
        model,
        _classes(model, x),
        batch_size=len(x),
        binary_search_steps=search_steps,
        max_iterations=max_iter,
        initial_const=c_init,
        targeted=targeted,
    )
    return _back(atk.perturb(x, t), x)


#: ``(attack, library) -> adapter``; the attacks' settings are keyword arguments.
ADAPTERS: dict[tuple[str, str], Adapter] = {
    ("fgsm", "ours"): _fgsm_ours,
    ("fgsm", "art"): _fgsm_art,
    ("fgsm", "torchattacks"): _fgsm_torchattacks,
    ("fgsm", "advertorch"): _fgsm_advertorch,
    ("fgsm", "foolbox"): _fgsm_foolbox,
    ("fgsm", "cleverhans"): _fgsm_cleverhans,
    ("pgd", "ours"): _pgd_ours,
    ("pgd", "art"): _pgd_art,
    ("pgd", "torchattacks"): _pgd_torchattacks,
    ("pgd", "advertorch"): _pgd_advertorch,
    ("pgd", "foolbox"): _pgd_foolbox,
    ("pgd", "cleverhans"): _pgd_cleverhans,
    ("jsma", "ours"): _jsma_ours,
    ("jsma", "art"): _jsma_art,
    ("jsma", "torchattacks"): _jsma_torchattacks,
    ("jsma", "advertorch"): _jsma_advertorch,
    ("cw", "ours"): _cw_ours,
    ("cw", "art"): _cw_art,
    ("cw", "torchattacks"): _cw_torchattacks,
    ("cw", "advertorch"): _cw_advertorch,
    ("cw", "foolbox"): _cw_foolbox,
    ("cw", "cleverhans"): _cw_cleverhans,
    ("lbfgs", "ours"): _lbfgs_ours,
    ("lbfgs", "advertorch"): _lbfgs_advertorch,
}
#: The implementations of each attack, ours first.
ATTACK_LIBRARIES: dict[str, tuple[str, ...]] = {
    attack: tuple(lib for (a, lib) in ADAPTERS if a == attack)
    for attack in dict.fromkeys(a for a, _ in ADAPTERS)
}


def craft(
    attack: str, library: str, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, **settings: Any
) -> torch.Tensor:
    """The adversarial batch of ``attack`` by ``library`` (``"ours"`` or one of :data:`LIBRARIES`).

    A library attacks a copy of the model; ours the model itself. Either is put in eval mode and
    its parameters' ``requires_grad`` flags are restored after (some libraries switch them on).
    Raises ``ValueError`` naming an unknown attack or a library that does not ship it, and
    :class:`MissingPeer` when the library is not installed.
    """
    if attack not in ATTACK_LIBRARIES:
        raise ValueError(f"unknown attack={attack!r}; choose one of {list(ATTACK_LIBRARIES)}")
    if (attack, library) not in ADAPTERS:
        raise ValueError(
            f"library={library!r} has no {attack} here; choose one of {list(ATTACK_LIBRARIES[attack])}"
        )
    # A library gets its own copy of the model (in eval mode), so that nothing it sets on it (its
    # mode, requires_grad flags, hooks, device) reaches the next implementation; ours gets the model.
    net = model if library == "ours" else copy.deepcopy(model)
    flags = [p.requires_grad for p in net.parameters()]
    mode = net.training
    net.eval()
    try:
        out = ADAPTERS[(attack, library)](net, x.detach().cpu(), labels.detach().cpu().long(), **settings)
    finally:
        for p, f in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(f)
        net.train(mode)
    return out
