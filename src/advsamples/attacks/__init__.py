"""Adversarial-sample crafting attacks, as plain functions (cleverhans v4 style).

>>> from advsamples.attacks import cw_l2, fgsm, jsma, lbfgs, pgd     # the attack functions themselves

============  ==========================================  ===================================
function      what                                        source
============  ==========================================  ===================================
``fgsm``      one signed gradient step (L∞)               Goodfellow et al. 2015
``lbfgs``     box-constrained L-BFGS, c searched (L2)     Szegedy et al. 2014
``jsma``      saliency-map pair search (L0)               Papernot et al. 2016
``pgd``       projected signed-gradient steps (L∞)        Madry et al. 2018
``cw_l2``     Adam on C&W's objective, c searched (L2)    Carlini and Wagner 2017
============  ==========================================  ===================================

:mod:`advsamples.attacks.blackbox` trains a substitute on a target's labels alone (Papernot et
al. 2017's Jacobian-based dataset augmentation); the attacks above, crafted on it, are then sent
to the target.

Their traces (:func:`lbfgs_trace`, :func:`jsma_trace`) also return per-sample statistics. The
modules of the same names stay importable: ``from advsamples.attacks.fgsm import fgsm``.
"""

from .cw import cw_l2, cw_l2_trace
from .fgsm import fgsm
from .jsma import jsma, jsma_trace
from .lbfgs import lbfgs, lbfgs_trace
from .pgd import pgd

__all__ = ["cw_l2", "cw_l2_trace", "fgsm", "jsma", "jsma_trace", "lbfgs", "lbfgs_trace", "pgd"]
