"""The chapter shape: validated Params, safe Results, the cache and resumable chunks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from advsamples import params as P
from advsamples.chapter import ChapterParams, ChapterResult, cache_root, cached, chunked, param


@dataclass(frozen=True)
class Params(ChapterParams):
    chapter: ClassVar[str] = "fgsm"
    n_samples: int = param(20, "test images attacked")
    eps_values: list[float] = param([0.0, 0.25], "budgets")

    def validate(self) -> None:
        super().validate()
        P.check_int("n_samples", self.n_samples, 1, 10_000, "the test set's size")
        P.check_numbers("eps_values", self.eps_values, lo=0, hi=1, increasing=True)


@dataclass(frozen=True)
class Result(ChapterResult):
    error: float
    label: str
    per_eps: dict[str, float]
    curve: np.ndarray
    hits: np.ndarray


def a_result(scale: float = 1.0) -> Result:
    return Result(
        0.25 * scale, "higher than", {"0.25": 0.5}, np.linspace(0, scale, 5), np.array([True, False])
    )


@pytest.fixture(autouse=True)
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path))
    return tmp_path


def test_params_validate_on_construction_and_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"n_samples=0 must be an integer between 1 and 10000"):
        Params(n_samples=0)
    with pytest.raises(ValueError, match=r"schedule='slow'"):
        Params(schedule="slow")
    with pytest.raises(ValueError, match="duplicate"):
        Params(eps_values=[0.1, 0.1])
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_sample'\] for chapter 'fgsm'"):
        Params.from_mapping({"n_sample": 3})
    assert Params.from_namespace({"n_samples": 5, "unrelated": 1}).n_samples == 5


def test_params_table_lists_every_field_with_its_comment() -> None:
    styled = Params(n_samples=7).table()
    table = styled.data
    assert list(table.index) == ["profile", "schedule", "n_samples", "eps_values"]
    # the book shows every comment whole (a DataFrame's HTML cuts text at 50 characters)
    long = Params.docs()["profile"]
    assert len(long) > 50 and long.replace("<", "&lt;").replace(">", "&gt;") in styled.to_html()
    assert (
        table.loc["n_samples", "value"] == "7" and table.loc["n_samples", "meaning"] == "test images attacked"
    )
    assert table.loc["eps_values", "value"] == "0, 0.25"


def test_a_default_list_is_not_shared_between_instances() -> None:
    a, b = Params(), Params()
    assert a.eps_values == b.eps_values and a.eps_values is not b.eps_values


def test_result_round_trips_through_json_and_npz(tmp_path: Path) -> None:
    r = a_result()
    r.save(tmp_path / "r")
    back = Result.load(tmp_path / "r")
    assert back.error == r.error and back.label == r.label and back.per_eps == r.per_eps
    assert np.array_equal(back.curve, r.curve) and back.hits.dtype == np.bool_
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["arrays.npz", "result.json"]


def test_a_loaded_result_keeps_the_order_of_its_dicts(tmp_path: Path) -> None:
    """Sums over a dict's values depend on their order (floating point): a Result read from the
    cache must iterate its dicts as the computed one did, or a rerun's rounding would differ."""
    per = {"b": 0.1, "a": 0.2, "c": 0.3}
    r = Result(0.0, "", per, np.array([1.0]), np.array([True]))
    r.save(tmp_path / "r")
    back = Result.load(tmp_path / "r")
    assert list(back.per_eps) == ["b", "a", "c"]


def test_object_arrays_are_refused() -> None:
    with pytest.raises(TypeError, match="object arrays"):
        Result(0.0, "", {}, np.array([{}], dtype=object), np.array([True]))


@pytest.mark.parametrize("damage", ["truncate_npz", "alter_npz", "bad_json", "missing"])
def test_a_damaged_result_is_refused_by_load(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "r"
    a_result().save(folder)
    if damage == "truncate_npz":
        data = (folder / "arrays.npz").read_bytes()
        (folder / "arrays.npz").write_bytes(data[: len(data) // 2])
    elif damage == "alter_npz":
        np.savez(folder / "arrays.npz", curve=np.zeros(5), hits=np.array([True, False]))
    elif damage == "bad_json":
        (folder / "result.json").write_text("{")
    else:
        (folder / "arrays.npz").unlink()
    with pytest.raises(ValueError, match="is damaged"):
        Result.load(folder)


def test_cached_computes_once_and_recomputes_a_damaged_entry() -> None:
    calls: list[int] = []

    def compute() -> Result:
        calls.append(1)
        return a_result(len(calls))

    p = Params()
    first = cached(p, Result, compute, version=1)
    again = cached(p, Result, compute, version=1)
    assert len(calls) == 1 and np.array_equal(first.curve, again.curve)
    # any change of parameters, models or version is another entry
    cached(Params(n_samples=21), Result, compute, version=1)
    cached(p, Result, compute, version=2)
    cached(p, Result, compute, version=1, models=["abc"])
    assert len(calls) == 4
    # the profile is not part of the key: the same computation under another profile is shared
    cached(Params(profile="paper"), Result, compute, version=1)
    assert len(calls) == 4
    for d in (cache_root() / "fgsm").iterdir():
        (d / "arrays.npz").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="damaged cache entry"):
        fresh = cached(p, Result, compute, version=1)
    assert len(calls) == 5 and fresh.error == a_result(5).error
    assert cached(p, Result, compute, version=1).error == fresh.error and len(calls) == 5


def test_chunked_resumes_where_it_stopped_and_ends_identical() -> None:
    def values(a: int, b: int) -> dict[str, np.ndarray]:
        return {"x": np.arange(a, b) ** 2, "ok": np.arange(a, b) % 3 == 0}

    straight = chunked(Params(n_samples=1), 10, 3, values, version=1, step="plain")
    computed: list[int] = []

    def dies_on_third(a: int, b: int) -> dict[str, np.ndarray]:
        computed.append(a)
        if len(computed) == 3:
            raise KeyboardInterrupt
        return values(a, b)

    p = Params(n_samples=2)
    with pytest.raises(KeyboardInterrupt):
        chunked(p, 10, 3, dies_on_third, version=1, step="s")
    assert computed == [0, 3, 6]
    computed.clear()
    resumed = chunked(p, 10, 3, dies_on_third, version=1, step="s")
    assert computed == [6, 9]  # the chunk being computed when it died, and the rest: no more
    for k in straight:
        assert np.array_equal(resumed[k], straight[k]) and resumed[k].dtype == straight[k].dtype


def test_a_damaged_chunk_is_recomputed() -> None:
    p = Params(n_samples=3)
    chunked(p, 6, 3, lambda a, b: {"x": np.arange(a, b)}, version=1, step="s")
    (folder,) = (cache_root() / "fgsm").iterdir()
    first = sorted(folder.glob("*.npz"))[0]
    first.write_bytes(first.read_bytes()[:-10])
    redone: list[int] = []

    def values(a: int, b: int) -> dict[str, np.ndarray]:
        redone.append(a)
        return {"x": np.arange(a, b)}

    with pytest.warns(UserWarning, match="damaged chunk"):
        out = chunked(p, 6, 3, values, version=1, step="s")
    assert redone == [0] and np.array_equal(out["x"], np.arange(6))


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_chunked_rejects_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        chunked(Params(), bad, 3, lambda a, b: {}, version=1, step="s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive integer"):
        chunked(Params(), 3, bad, lambda a, b: {}, version=1, step="s")  # type: ignore[arg-type]


def test_non_finite_floats_round_trip_as_floats(tmp_path: Path) -> None:
    r = Result(float("nan"), "x", {"inf": float("inf")}, np.array([np.nan]), np.array([True]))
    r.save(tmp_path / "r")
    back = Result.load(tmp_path / "r")
    assert isinstance(back.error, float) and np.isnan(back.error) and back.per_eps == {"inf": float("inf")}


# --------------------------------------------------------------------------- headline
def test_headline_renders_a_box_and_escapes_its_text() -> None:
    from advsamples.chapter import Headline

    h = Headline(
        "Paper <2016>", (("success", "97.05%", "95.97%"), ("a & b", "1", "2")), "90,000 attacks", "ours"
    )
    html = h._repr_html_()
    assert html.startswith('<div class="headline">') and html.endswith("</div>")
    assert "Paper &lt;2016&gt;" in html and "a &amp; b" in html and "<2016>" not in html
    assert html.count("<tr>") == 3  # the header and the two rows
    assert "<td>97.05%</td><td>95.97%</td>" in html
    assert "<b>Paper:</b> 90,000 attacks." in html and "<b>This study:</b> ours." in html


@pytest.mark.parametrize(
    "rows, match",
    [
        ((), "at least one row"),
        ((("a", "b"),), "quantity, paper, ours"),
        ((("a", "b", 3),), "quantity, paper, ours"),
    ],
)
def test_headline_refuses_bad_rows(rows: tuple, match: str) -> None:
    from advsamples.chapter import Headline

    with pytest.raises(ValueError, match=match):
        Headline("p", rows, "a", "b")
