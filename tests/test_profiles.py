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
    assert runner.profile_schedule("paper", ROOT) == "paper"
    assert runner.profile_schedule("quick", ROOT) == "quick"
    with pytest.raises(ValueError, match="unknown profile='fast'"):
        runner.profile_schedule("fast", ROOT)


@pytest.mark.parametrize("doc", ["README.md", "book/reproduce.md"])
def test_documented_papermill_commands_use_real_parameters(doc: str) -> None:
    """Every `papermill notebooks/X.ipynb … -p NAME VALUE` shown to readers names a parameter of X."""
    commands = re.findall(r"papermill notebooks/(\w+\.ipynb[^\n]*)", (ROOT / doc).read_text())
    assert commands, f"{doc} shows no papermill command"
    for line in commands:
        name = re.match(r"\w+", line).group(0)  # type: ignore[union-attr]
        for param in re.findall(r"-p (\w+) ", line):
            assert param in parameters_cell(name), f"{doc}: {name}.ipynb has no parameter {param!r}"


def test_a_profile_key_that_is_not_a_parameter_is_rejected(tmp_path: Path) -> None:
    import shutil

    for f in ("_toc.yml",):
        shutil.copy(ROOT / f, tmp_path / f)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "bad.yml").write_text("notebooks:\n  fgsm: {n_sampels: 3}\n")
    with pytest.raises(ValueError, match=r"params/bad.yml sets \['n_sampels'\] for notebook 'fgsm'"):
        runner.notebook_parameters("bad", "fgsm", tmp_path)


def test_run_only_with_no_names_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs at least one notebook name"):
        runner.run_profile("quick", [])


def test_a_failed_run_leaves_the_last_good_chapter_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """papermill writes elsewhere; book/chapters/<name>.ipynb is replaced only on success."""
    import shutil

    import papermill

    for f in ("_toc.yml", "pyproject.toml"):
        shutil.copy(ROOT / f, tmp_path / f)
    for d in ("notebooks", "params"):
        shutil.copytree(ROOT / d, tmp_path / d)
    (tmp_path / "src" / "advsamples").mkdir(parents=True)
    monkeypatch.setenv("ADVSAMPLES_ROOT", str(tmp_path))
    monkeypatch.setenv("ADVSAMPLES_RESULTS", str(tmp_path / "results"))
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    good = chapters / "fgsm.ipynb"
    good.write_text("the last good chapter")

    def dies_half_way(src: str, out: str, **kwargs: object) -> None:
        Path(out).write_text("half a chapter")
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        runner.run_profile("quick", ["fgsm"])
    assert good.read_text() == "the last good chapter"
    assert sorted(p.name for p in chapters.iterdir()) == ["fgsm.ipynb"]

    def succeeds(src: str, out: str, **kwargs: object) -> None:
        nb = json.loads(Path(src).read_text())
        nb["cells"].insert(
            1,
            {
                "cell_type": "code",
                "metadata": {"tags": ["injected-parameters"]},
                "source": "",
                "outputs": [],
                "execution_count": None,
            },
        )
        Path(out).write_text(json.dumps(nb))

    monkeypatch.setattr(papermill, "execute_notebook", succeeds)
    runner.run_profile("quick", ["fgsm"])
    cells = json.loads(good.read_text())["cells"]
    hidden = [c for c in cells if "remove-cell" in c["metadata"].get("tags", [])]
    assert sorted(t for c in hidden for t in c["metadata"]["tags"] if t != "remove-cell") == [
        "injected-parameters",
        "parameters",
    ]


def test_every_chapter_has_a_module() -> None:
    from advsamples.experiments import CHAPTER_MODULES

    assert sorted(CHAPTER_MODULES) == sorted(CHAPTERS)


@pytest.mark.parametrize("profile", ["quick", "paper"])
@pytest.mark.parametrize("name", CHAPTERS)
def test_every_profile_builds_valid_params(profile: str, name: str) -> None:
    """A bad profile fails here, in the unit tests, not an hour into a build."""
    from advsamples.experiments import chapter_module

    module = chapter_module(name)
    params = module.Params(**runner.notebook_parameters(profile, name, ROOT))
    assert params.profile == profile and module.Params.chapter == name


@pytest.mark.parametrize("name", CHAPTERS)
def test_params_fields_are_the_parameters_cell(name: str) -> None:
    """Each notebook's parameters cell and its chapter's Params list the same names, in order,
    with the same defaults: a parameter is written in the cell and in Params, nowhere else."""
    from advsamples.experiments import chapter_module

    module = chapter_module(name)
    cell = parameters_cell(name)
    assert module.Params.field_names() == list(cell)
    defaults = module.Params().as_dict()
    assert defaults == {k: list(v) if isinstance(v, tuple) else v for k, v in cell.items()}
