"""``from advsamples.attacks import fgsm, jsma, lbfgs`` gives the attack functions."""

from __future__ import annotations

import inspect


def test_the_package_exports_the_attack_functions() -> None:
    from advsamples.attacks import fgsm, jsma, jsma_trace, lbfgs, lbfgs_trace

    for fn, name in [(fgsm, "fgsm"), (jsma, "jsma"), (lbfgs, "lbfgs"), (jsma_trace, "jsma_trace")]:
        assert inspect.isfunction(fn) and fn.__name__ == name
    assert inspect.isfunction(lbfgs_trace)


def test_the_modules_stay_importable_by_path() -> None:
    import advsamples.attacks as A
    from advsamples.attacks.fgsm import fgsm
    from advsamples.attacks.jsma import saliency_map

    assert A.fgsm is fgsm and callable(saliency_map)
