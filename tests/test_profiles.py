"""Profiles, notebooks and the book's table of contents agree with each other."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from advsamples import runner

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = runner.chapter_order(ROOT)


def parameters_cell(name: str) -> dict[str, object]:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), (
        f"{name}: first code cell must be tagged parameters"
    )
    tree = ast.parse("".join(first["source"]))
    return {
        t.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
    }  # type: ignore[attr-defined]


def test_toc_chapters_and_notebooks_match() -> None:
    templates = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(CHAPTERS) == templates


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_defaults_are_the_quick_profile(name: str) -> None:
    """nbval runs the notebooks as committed, so their defaults must be the quick profile."""
    defaults = parameters_cell(name)
    for key, value in runner.notebook_parameters("quick", name, ROOT).items():
        assert key in defaults, f"{name}: quick profile sets {key!r}, which is not a parameter"
        assert defaults[key] == value, f"{name}: default {key}={defaults[key]!r} but quick.yml says {value!r}"


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_profiles_only_set_existing_parameters(profile: str) -> None:
    for name in CHAPTERS:
        defaults = parameters_cell(name)
        unknown = set(runner.notebook_parameters(profile, name, ROOT)) - set(defaults)
        assert not unknown, f"{profile}.yml sets unknown parameters of {name}: {unknown}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None


def test_unknown_profile_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown profile='fast'"):
        runner.load_profile("fast", ROOT)


def test_paper_profile_is_the_papers_schedule() -> None:
    assert yaml.safe_load((ROOT / "params" / "paper.yml").read_text())["common"]["schedule"] == "paper"


@pytest.mark.parametrize("doc", ["README.md", "book/reproduce.md"])
def test_documented_papermill_commands_use_real_parameters(doc: str) -> None:
    """Every `papermill notebooks/X.ipynb … -p NAME VALUE` shown to readers names a parameter of X."""
    commands = re.findall(r"papermill notebooks/(\w+\.ipynb[^\n]*)", (ROOT / doc).read_text())
    assert commands, f"{doc} shows no papermill command"
    for line in commands:
        name = re.match(r"\w+", line).group(0)  # type: ignore[union-attr]
        for param in re.findall(r"-p (\w+) ", line):
            assert param in parameters_cell(name), f"{doc}: {name}.ipynb has no parameter {param!r}"
