"""Adversarial-sample crafting attacks, as plain functions (cleverhans v4 style)."""
