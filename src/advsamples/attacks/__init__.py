"""Adversarial-sample crafting attacks, as plain functions (cleverhans v4 style).

>>> from advsamples.attacks import fgsm, jsma, lbfgs     # the attack functions themselves

============  ==========================================  ===================================
function      what                                        source
============  ==========================================  ===================================
``fgsm``      one signed gradient step (L∞)               Goodfellow et al. 2015
``lbfgs``     box-constrained L-BFGS, c searched (L2)     Szegedy et al. 2014
``jsma``      saliency-map pair search (L0)               Papernot et al. 2016
============  ==========================================  ===================================

Their traces (:func:`lbfgs_trace`, :func:`jsma_trace`) also return per-sample statistics. The
modules of the same names stay importable: ``from advsamples.attacks.fgsm import fgsm``.
"""

from .fgsm import fgsm
from .jsma import jsma, jsma_trace
from .lbfgs import lbfgs, lbfgs_trace

__all__ = ["fgsm", "jsma", "jsma_trace", "lbfgs", "lbfgs_trace"]
