"""Recorder: what a chapter glues is what its results file holds, as plain JSON values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from advsamples.record import Recorder, load_results


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    return tmp_path


def test_numbers_are_glued_and_saved_as_plain(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder("demo", "quick", {"eps": np.float32(0.25), "models": ("a", "b")})
    rec("err", np.float64(0.125))
    rec("n", torch.tensor(7))
    assert type(rec.values["err"]) is float and type(rec.values["n"]) is int
    rec("curve", torch.tensor([0.5, 1.0]))
    rec("bad", float("nan"))
    path = rec.save()
    assert path == results / "quick" / "demo.json"
    saved = json.loads(path.read_text())
    assert saved["params"] == {"eps": 0.25, "models": ["a", "b"]}
    assert saved["results"] == {"err": 0.125, "n": 7, "curve": [0.5, 1.0], "bad": "nan"}
    assert load_results("quick", "demo") == saved and load_results("paper", "demo") is None
    assert "np.float64" not in capsys.readouterr().out  # the glued text is a plain number


def test_a_key_is_recorded_once(results: Path) -> None:
    rec = Recorder("demo", "quick", {})
    rec("x", 1)
    with pytest.raises(KeyError, match="'x' was already recorded in chapter demo"):
        rec("x", 2)
