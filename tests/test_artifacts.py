"""Published results: the manifest, frozen reads that never recompute, and provenance."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from advsamples import artifacts as A
from advsamples import chapter as C
from advsamples.audit import Check, format_audit
from advsamples.record import Recorder
from tests.test_chapter import Params, a_result

Result = type(a_result())


@pytest.fixture(autouse=True)
def _results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    monkeypatch.delenv("ADVSAMPLES_CACHE", raising=False)
    monkeypatch.delenv(A.FROZEN_ENV, raising=False)
    return tmp_path


def _published(tmp_path: Path) -> Path:
    root = tmp_path / "paper"
    (root / "cache" / "x").mkdir(parents=True)
    (root / "cache" / "x" / "result.json").write_text('{"a": 1}\n')
    (root / "fgsm.json").write_text(json.dumps({"chapter": "fgsm", "provenance": {"seconds": 3.0}}))
    A.write_manifest("paper")
    return root


# --------------------------------------------------------------------------- manifest
def test_the_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    root = _published(tmp_path)
    body = json.loads((root / A.MANIFEST).read_text())
    assert sorted(body["files"]) == ["cache/x/result.json", "fgsm.json"]
    assert body["chapters"] == {"fgsm": {"seconds": 3.0}}
    assert set(body["written"]) >= {"commit", "date", "machine", "device", "threads"}
    assert A.verify_manifest("paper") == 2


@pytest.mark.parametrize("damage", ["alter", "delete"])
def test_an_altered_or_missing_artifact_is_refused_naming_the_file_and_the_ways_on(
    tmp_path: Path, damage: str
) -> None:
    root = _published(tmp_path)
    target = root / "cache" / "x" / "result.json"
    if damage == "alter":
        target.write_text('{"a": 2}\n')
    else:
        target.unlink()
    with pytest.raises(A.ArtifactError, match="altered" if damage == "alter" else "missing") as err:
        A.verify_manifest("paper")
    message = str(err.value)
    assert "result.json" in message and "make paper" in message and "make book PROFILE=quick" in message


def test_no_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(A.ArtifactError, match="no manifest"):
        A.verify_manifest("paper")


def test_the_runner_checks_the_manifest_before_any_notebook_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from advsamples import runner

    monkeypatch.setattr(runner, "_run_notebooks", lambda *a, **k: pytest.fail("ran a notebook"))
    with pytest.raises(A.ArtifactError, match="no manifest"):
        runner.run_profile("paper", ["models"])


def test_the_cli_says_it_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from advsamples.cli import main

    assert main(["run", "--profile", "paper", "--only", "models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make paper" in err and "Traceback" not in err


def test_paper_is_the_published_profile_and_quick_is_not() -> None:
    assert A.published("paper") and not A.published("quick")
    env = A.profile_env("paper")
    assert env["ADVSAMPLES_CACHE"].endswith("paper/cache")
    assert env["ADVSAMPLES_CHECKPOINTS"].endswith("paper/checkpoints")
    assert A.profile_env("quick") == {}


# --------------------------------------------------------------------------- frozen reads
def test_frozen_cached_refuses_a_missing_entry_and_never_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(A.FROZEN_ENV, "1")
    with pytest.raises(A.ArtifactError, match="missing published result of chapter 'fgsm'"):
        C.cached(Params(), Result, lambda: pytest.fail("computed"), version=1)


def test_frozen_cached_refuses_a_damaged_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    C.cached(Params(), Result, a_result, version=1)
    (entry,) = (C.cache_root() / "fgsm").iterdir()
    (entry / "arrays.npz").write_bytes(b"junk")
    monkeypatch.setenv(A.FROZEN_ENV, "1")
    with pytest.raises(A.ArtifactError, match="damaged published result"):
        C.cached(Params(), Result, lambda: pytest.fail("computed"), version=1)


def test_frozen_cached_reads_an_intact_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    first = C.cached(Params(), Result, a_result, version=1)
    monkeypatch.setenv(A.FROZEN_ENV, "1")
    assert C.cached(Params(), Result, lambda: pytest.fail("computed"), version=1).error == first.error


def test_frozen_chunks_are_never_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(A.FROZEN_ENV, "1")
    with pytest.raises(A.ArtifactError, match="missing published chunk"):
        C.chunked(Params(), 4, 2, lambda a, b: pytest.fail("computed"), version=1, step="s")


def test_frozen_training_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from advsamples import models as M

    monkeypatch.setenv("ADVSAMPLES_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv(A.FROZEN_ENV, "1")
    with pytest.raises(A.ArtifactError, match="missing published checkpoint of fc10"):
        M.get_model("fc10", "quick", progress=False)


def test_frozen_records_are_compared_not_rewritten(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("myst_nb")
    rec = Recorder("fgsm", "paper", {"n": 1})
    rec("error", 0.5)
    path = rec.save()
    before = path.read_text()
    monkeypatch.setenv(A.FROZEN_ENV, "1")
    same = Recorder("fgsm", "paper", {"n": 1})
    same("error", 0.5)
    assert same.save() == path and path.read_text() == before
    other = Recorder("fgsm", "paper", {"n": 1})
    other("error", 0.25)
    with pytest.raises(A.ArtifactError, match=r"results differ from the published record at \['error'\]"):
        other.save()
    assert path.read_text() == before


# --------------------------------------------------------------------------- provenance
def test_a_computed_entry_records_its_provenance() -> None:
    def slow() -> object:
        time.sleep(0.05)
        return a_result()

    C.cached(Params(n_samples=5), Result, slow, version=1)  # type: ignore[arg-type]
    prov = C.last_provenance("fgsm")
    assert prov is not None and prov["seconds"] >= 0.05
    assert set(prov) == {"commit", "date", "machine", "device", "threads", "torch", "seconds"}
    # read back from the cache, the entry keeps the provenance of the run that computed it
    C._PROVENANCE.clear()
    C.cached(Params(n_samples=5), Result, lambda: pytest.fail("computed"), version=1)
    assert C.last_provenance("fgsm") == prov


def test_a_resumed_run_counts_the_seconds_of_its_earlier_chunks() -> None:
    p = Params(n_samples=6)
    calls: list[int] = []

    def chunk(a: int, b: int) -> dict[str, np.ndarray]:
        calls.append(a)
        time.sleep(0.1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while computing the second chunk
        return {"x": np.arange(a, b)}

    def compute() -> object:
        C.chunked(p, 4, 2, chunk, version=1, step="s")
        return a_result()

    with pytest.raises(KeyboardInterrupt):
        C.cached(p, Result, compute, version=1)  # type: ignore[arg-type]
    calls.clear()
    C.cached(p, Result, compute, version=1)  # type: ignore[arg-type]
    prov = C.last_provenance("fgsm")
    assert calls == [2] and prov is not None and prov["seconds"] >= 0.2  # this session's chunk + the first


def test_a_step_read_back_counts_its_recorded_seconds_into_the_chapter() -> None:
    """A chapter's step cached apart (the libraries chapter's benchmark), computed earlier and
    read back inside the chapter's computation, adds the seconds it records to the chapter's."""
    p = Params(n_samples=6)

    def step() -> object:
        time.sleep(0.3)
        return a_result()

    C.cached(p, Result, step, version=1, step="bench")  # type: ignore[arg-type]
    C.cached(p, Result, lambda: C.cached(p, Result, step, version=1, step="bench"), version=1)  # type: ignore[arg-type]
    prov = C.last_provenance("fgsm")
    assert prov is not None and prov["seconds"] >= 0.3


def test_provenance_fields() -> None:
    prov = A.provenance(12.34)
    assert prov["seconds"] == 12.3 and prov["device"] == "cpu" and prov["threads"] >= 1
    assert "cores" in prov["machine"] and prov["date"].endswith("UTC")


# --------------------------------------------------------------------------- audit
def test_audit_checks_count_and_report_disagreements() -> None:
    c = Check("JSMA attacks")
    c.add(True, "")
    c.add(False, "digit 3 → 5: (True, 4, 0.01) against (True, 5, 0.0125)")
    assert (c.checked, c.agree, c.passed) == (2, 1, False)
    text = format_audit([c])
    assert "1 / 2" in text and "differs: digit 3 → 5" in text
    assert not Check("empty").passed  # an audit that checked nothing did not pass
    pending = Check("L-BFGS attacks", missing=["missing published result of chapter 'lbfgs'"])
    assert pending.passed and "not committed yet, not audited" in format_audit([pending])


def test_profiles_refuse_unknown_top_level_keys(tmp_path: Path) -> None:
    from advsamples import runner

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "params").mkdir()
    (tmp_path / "_toc.yml").write_text((root / "_toc.yml").read_text())
    (tmp_path / "params" / "x.yml").write_text("publsh: true\n")
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['publsh'\]"):
        runner.load_profile("x", tmp_path)
    (tmp_path / "params" / "y.yml").write_text("publish: 1\n")
    with pytest.raises(ValueError, match="publish=1 must be true or false"):
        runner.load_profile("y", tmp_path)


# --------------------------------------------------------------------------- device
def test_device_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from advsamples.device import device

    monkeypatch.setenv("ADVSAMPLES_DEVICE", "cpu")
    assert device().type == "cpu" and A.device_name() == "cpu"
    monkeypatch.setenv("ADVSAMPLES_DEVICE", "tpu")
    with pytest.raises(ValueError, match="ADVSAMPLES_DEVICE='tpu'"):
        device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("ADVSAMPLES_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA device"):
            device()
        monkeypatch.delenv("ADVSAMPLES_DEVICE")
        assert device().type == "cpu"
