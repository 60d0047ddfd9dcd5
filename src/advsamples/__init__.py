"""advsamples: a reproducible study of adversarial-sample crafting against deep networks."""

__version__ = "0.1.0"
