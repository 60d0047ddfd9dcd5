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
