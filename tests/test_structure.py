"""The chapter shape as a rule: thin notebooks, and chapter modules that do not import each other."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from advsamples.experiments import CHAPTER_MODULES

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "src" / "advsamples" / "experiments"
#: Modules every chapter may use: the shared pieces, and the JSMA runs both JSMA chapters read.
SHARED = {"common", "jsma_runs"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.py")), ids=lambda p: p.stem)
def test_chapter_modules_do_not_import_each_other(path: Path) -> None:
    chapters = set(CHAPTER_MODULES.values()) - {path.stem}
    bad = {
        m
        for m in imported_modules(path)
        for c in chapters
        if m in (f"advsamples.experiments.{c}", f".{c}") or m.startswith(f"advsamples.experiments.{c}.")
    }
    assert not bad, f"{path.name} imports chapter module(s) {sorted(bad)}; move what they share to common.py"


def test_the_bench_imports_no_chapter() -> None:
    names = imported_modules(ROOT / "src" / "advsamples" / "bench.py")
    assert not {m for m in names if m.startswith("advsamples.experiments.") and m.split(".")[2] not in SHARED}


def code_lines(name: str) -> int:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    return sum(
        1
        for c in nb["cells"]
        if c["cell_type"] == "code" and "parameters" not in c.get("metadata", {}).get("tags", [])
        for line in "".join(c["source"]).splitlines()
        if line.strip()
    )


@pytest.mark.parametrize("name", list(CHAPTER_MODULES))
def test_notebooks_are_thin_views(name: str) -> None:
    assert code_lines(name) <= 60, f"{name}.ipynb has {code_lines(name)} lines of code outside its parameters"


@pytest.mark.parametrize("name", list(CHAPTER_MODULES))
def test_no_cell_shows_a_path_of_the_build_machine(name: str) -> None:
    """``rec.save()`` returns the results file's absolute path: a cell ending in it prints it."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            lines = [line for line in "".join(cell["source"]).splitlines() if line.strip()]
            assert not lines or lines[-1].strip() != "rec.save()", f"{name}: end the cell with `rec.save();`"


#: Chapters without a paper to set beside (the run record is the appendix of timings).
NO_HEADLINE = {"runrecord"}


def _cells(name: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]


@pytest.mark.parametrize("name", list(CHAPTER_MODULES))
def test_every_figure_has_a_numbered_caption(name: str) -> None:
    """A cell that shows a figure carries myst-nb's figure options: a caption (numbered by the
    book) and a name to refer to it by, unique in the book."""
    for cell in _cells(name):
        if cell["cell_type"] == "code" and "rec.figure(" in "".join(cell["source"]):
            fig = cell["metadata"].get("mystnb", {}).get("figure", {})
            assert fig.get("caption", "").strip(), f"{name}: a figure cell without a caption"
            assert fig.get("name", "").startswith(f"fig-{name}-"), f"{name}: figure name {fig.get('name')!r}"


def test_figure_names_are_unique() -> None:
    names = [
        c["metadata"]["mystnb"]["figure"]["name"]
        for n in CHAPTER_MODULES
        for c in _cells(n)
        if "figure" in c["metadata"].get("mystnb", {})
    ]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("name", [n for n in CHAPTER_MODULES if n not in NO_HEADLINE])
def test_every_chapter_opens_with_its_headline(name: str) -> None:
    """The chapter's first code cell (the run) ends by showing ``chapter.headline(result)``, and
    the module has the function; the parameters table comes after, once."""
    import importlib

    module = importlib.import_module(f"advsamples.experiments.{CHAPTER_MODULES[name]}")
    assert callable(getattr(module, "headline", None)), f"{name} has no headline()"
    code = [
        c
        for c in _cells(name)
        if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])
    ]
    assert "".join(code[0]["source"]).strip().endswith("chapter.headline(result)")
    tables = [c for c in code if "params.table()" in "".join(c["source"])]
    assert len(tables) == 1, f"{name}: the parameters table should appear once, found {len(tables)}"
