"""environment.yml (conda) lists exactly the pins of requirements.lock (pip)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def lock_pins() -> list[str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_environment_yml_matches_requirements_lock() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = [p for p in pip if not p.startswith("-e")]
    assert sorted(pins) == sorted(lock_pins())
    assert "python=3.11" in env["dependencies"]


def test_every_pin_is_exact() -> None:
    pins = lock_pins()
    assert all("==" in p and ";" not in p for p in pins), [p for p in pins if "==" not in p]
    assert {"torch==2.14.1", "torchvision==0.29.1"} <= set(pins)
    jb = next(p for p in pins if p.startswith("jupyter-book=="))
    assert jb.split("==")[1].startswith("1."), "the book needs Jupyter Book 1.x"
