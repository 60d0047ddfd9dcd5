"""The book as a reader sees it: the headless-Chromium page check, on pages made to fail and pass.

The check of the whole built book is ``make browser-test`` (after ``make book``); here it is tried
on small pages, so that a check that cannot fail would show. Without Chromium these tests skip and
say what to install.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from advsamples import browser

try:
    browser.chromium()
    HAVE = True
except FileNotFoundError as exc:
    HAVE, WHY = False, str(exc)

pytestmark = pytest.mark.skipif(not HAVE, reason=WHY if not HAVE else "")

MATHJAX = Path(sysconfig.get_paths()["purelib"]) / "sphinx-mathjax-offline" / "static" / "mathjax"


def _page(folder: Path, body: str, head: str = "") -> Path:
    page = folder / "page.html"
    page.write_text(f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>")
    return page


MATH = '<p>An equation: <span class="math notranslate nohighlight">\\(x^2 + r\\)</span>.</p>'


def test_math_without_mathjax_is_refused(tmp_path: Path) -> None:
    report = browser.check_page(_page(tmp_path, MATH))
    assert report.math and report.typeset == 0
    assert any("not typeset" in p for p in report.problems)
    assert any("raw TeX" in p for p in report.problems)


def test_math_from_a_cdn_is_refused_offline(tmp_path: Path) -> None:
    head = '<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
    report = browser.check_page(_page(tmp_path, MATH, head))
    assert any("not typeset" in p for p in report.problems)


@pytest.mark.skipif(not MATHJAX.is_dir(), reason="sphinx-mathjax-offline is not installed")
def test_math_with_a_local_mathjax_is_typeset(tmp_path: Path) -> None:
    shutil.copytree(MATHJAX, tmp_path / "mathjax")
    report = browser.check_page(
        _page(tmp_path, MATH, '<script src="mathjax/tex-chtml.js"></script>'),
        screenshot=tmp_path / "shot.png",
    )
    assert report.ok, report.problems
    assert report.typeset == 1 and (tmp_path / "shot.png").stat().st_size > 1000


def test_js_errors_missing_images_paths_and_tracebacks_are_found(tmp_path: Path) -> None:
    body = (
        '<img src="figure.png"><p>/root/work/results/x.json</p>'
        "<pre>Traceback (most recent call last):</pre><script>undefinedFunction();</script>"
    )
    problems = " | ".join(browser.check_page(_page(tmp_path, body), forbidden=("/root/work",)).problems)
    for what in (
        "JavaScript error: Uncaught ReferenceError",
        "image missing: figure.png",
        "path of the build",
        "traceback",
    ):
        assert what in problems, problems


WIDE = "<table><tr>" + "".join(f"<td>column{i:03d}</td>" for i in range(200)) + "</tr></table>"


def test_a_wide_table_that_runs_off_the_page_is_found(tmp_path: Path) -> None:
    body = f'<main><article style="width: 600px">{WIDE}</article></main>'
    problems = browser.layout_problems(_page(tmp_path, body))
    assert any("runs off the text column" in p for p in problems), problems
    assert any("scrolls sideways" in p for p in problems), problems


def test_a_wide_table_inside_a_scrolling_container_fits(tmp_path: Path) -> None:
    body = f'<main><article style="width: 600px"><div style="overflow-x: auto">{WIDE}</div></article></main>'
    assert browser.layout_problems(_page(tmp_path, body)) == []


def test_the_books_stylesheet_scrolls_wide_notebook_tables(tmp_path: Path) -> None:
    """book/_static/advsamples.css on the markup myst-nb gives a notebook's HTML output."""
    css = Path(__file__).resolve().parents[1] / "book" / "_static" / "advsamples.css"
    shutil.copy(css, tmp_path / "advsamples.css")
    body = (
        '<main><article style="width: 600px"><div class="cell_output docutils container">'
        f'<div class="output text_html">{WIDE}</div></div></article></main>'
    )
    page = _page(tmp_path, body, '<link rel="stylesheet" href="advsamples.css">')
    assert browser.layout_problems(page) == []
    (tmp_path / "advsamples.css").write_text("")  # without the stylesheet, the same table runs off
    assert browser.layout_problems(page)


def test_a_redirect_page_has_no_layout_to_check(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text('<meta http-equiv="Refresh" content="0; url=elsewhere.html" />')
    assert browser.layout_problems(page) == []


def test_a_figure_without_a_numbered_caption_is_found(tmp_path: Path) -> None:
    png = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
        "AAAABJRU5ErkJggg=="
    )
    bare = browser.check_page(_page(tmp_path, f'<figure><img src="{png}"></figure>'))
    assert any("without a numbered caption" in p for p in bare.problems), bare.problems
    caption = '<figcaption><span class="caption-number">Figure 1 </span>x</figcaption>'
    numbered = f'<figure><img src="{png}">{caption}</figure>'
    assert browser.check_page(_page(tmp_path, numbered)).ok
