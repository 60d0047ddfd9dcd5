"""The command line: every user error exits 2 with one line naming what is wrong, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from advsamples import cli
from advsamples import models as M


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "advsamples", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "--threads", "-1"], ["--threads", "'-1'"]),
        (["bench", "jsma", "--threads", "0"], ["--threads", "'0'"]),
        (["bench", "jsma", "--samples", "0"], ["--samples"]),
        (["run", "--only"], ["--only"]),
        (["run", "--profile", "fast"], ["profile='fast'"]),
        (["bench", "jsma", "--profile", "fast"], ["profile='fast'"]),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], needles: list[str]) -> None:
    one_line_error(run_cli(*args), *needles)


def test_bench_with_a_published_profile_attacks_its_committed_models(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    import advsamples.bench as B

    seen: list[tuple[str, str, str]] = []

    def fake(samples: int, *, schedule: str, model: str = "lenet_paper", **_: object) -> dict[str, object]:
        seen.append((schedule, model, os.environ.get("ADVSAMPLES_CHECKPOINTS", "")))
        return {}

    monkeypatch.setattr(B, "bench_jsma_test_set", fake)
    monkeypatch.setattr(B, "format_bench", lambda d: "bench printed")
    monkeypatch.delenv("ADVSAMPLES_CHECKPOINTS", raising=False)
    assert cli.main(["bench", "jsma", "--model", "cwnet", "--profile", "paper", "--threads", "1"]) == 0
    assert cli.main(["bench", "jsma", "--threads", "1"]) == 0
    (schedule, model, folder), plain = seen
    assert (schedule, model) == ("paper", "cwnet")
    assert Path(folder).parts[-3:] == ("results", "paper", "checkpoints")
    assert plain == ("quick", "lenet_paper", "") and "ADVSAMPLES_CHECKPOINTS" not in os.environ
    assert capsys.readouterr().out.count("bench printed") == 2


def test_a_bad_threads_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADVSAMPLES_THREADS", "abc")
    assert cli.main(["train", "logreg_3v7"]) == 2
    err = capsys.readouterr().err
    assert "ADVSAMPLES_THREADS='abc'" in err and "positive integer" in err


def test_a_damaged_mnist_cache_exits_2_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist.npz").write_bytes(b"not a zip")
    (data / "mnist.json").write_text("{}")
    proc = run_cli("data", env={"ADVSAMPLES_DATA": str(data)})
    one_line_error(proc, str(data / "mnist.npz"), "Delete")


def test_a_damaged_checkpoint_exits_2_naming_it_without_torch_advice(tmp_path: Path) -> None:
    cfg = M.config_for("logreg_3v7")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    path = ckpt / f"logreg_3v7-{cfg.key()}.pt"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("never",))

    torch.save({"state_dict": {}, "meta": Evil()}, path)
    proc = run_cli("train", "logreg_3v7", "--threads", "1", env={"ADVSAMPLES_CHECKPOINTS": str(ckpt)})
    one_line_error(proc, str(path), "retrain=True")
    assert "weights_only=False" not in proc.stderr and "never" not in proc.stdout
