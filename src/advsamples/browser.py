"""The built book as a reader sees it: every page opened in headless Chromium, with no network.

``python -m advsamples check-book`` (``make browser-test``) opens each page of ``_build/html``
and checks, page by page:

- it loads without JavaScript errors (the console's errors and uncaught exceptions);
- its math is typeset: MathJax's output elements are present where the page has math, and no raw
  ``\\(``, ``\\[`` or ``$$`` is left in the text;
- every figure's image file is there;
- no glue placeholder, error output or traceback is visible;
- no absolute path of the build machine appears (the project's folder, the builder's home folder);
- nothing runs off the page at a desktop width: the page does not scroll sideways, and a table
  wider than the text column sits in a container that scrolls it (a copy of the page with a probe
  script, its links resolved against the original's folder, reports what it measured).

It saves a screenshot of each page under ``_build/screenshots/`` so that a person can look. The
network is cut off with a dead proxy, so a page that needs a CDN (MathJax by default) fails.
Chromium is Debian's ``chromium`` package (``apt-get install chromium``); without it the check
says so and stops.
"""

from __future__ import annotations

import html as _html
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAYOUT_WIDTH", "PageReport", "check_book", "check_page", "chromium", "layout_problems"]

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: Flags for a headless, sandbox-free (root in a container), network-less run.
_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--proxy-server=http://127.0.0.1:9",  # a dead proxy: no page reaches the network
    "--proxy-bypass-list=<-loopback>",
    "--allow-file-access-from-files",
    "--hide-scrollbars",
)


def chromium() -> str:
    """The path of a headless-capable Chromium.

    Raises:
        FileNotFoundError: naming the package to install when there is none.
    """
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(
        "no Chromium found (looked for " + ", ".join(_BROWSERS) + "); install Debian's package: "
        "apt-get update && apt-get install -y chromium"
    )


@dataclass
class PageReport:
    """What the check found on one page (``problems`` empty when it passed)."""

    page: str
    math: bool = False
    typeset: int = 0
    images: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _visible_text(dom: str) -> str:
    body = re.sub(r"(?is)<(script|style|mjx-container|noscript)\b.*?</\1>", " ", dom)
    return _html.unescape(re.sub(r"(?s)<[^>]+>", " ", body))


#: Chromium's log of the page's console: ``...:INFO:CONSOLE:1] "message", source: ...``. Uncaught
#: exceptions and failed loads are errors (console.error is logged like console.log).
_CONSOLE = re.compile(r"CONSOLE[:(]\d+\)?\] \"(.*?)\", source: (\S+)")


#: The layout probe: appended to a copy of the page, it measures once the page has loaded and
#: writes what it found into ``<body data-advsamples-layout="...">`` for ``--dump-dom`` to read.
_PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const out = {page: null, tables: []};
  const d = document.documentElement;
  if (d.scrollWidth > d.clientWidth + 1) out.page = [d.scrollWidth, d.clientWidth];
  const column = document.querySelector("article") || document.querySelector("main") || document.body;
  const right = column.getBoundingClientRect().right;
  for (const t of column.querySelectorAll("table")) {
    const r = t.getBoundingClientRect();
    if (r.width === 0 || r.right <= right + 1) continue;
    let scrolls = false;
    for (let e = t.parentElement; e && e !== column.parentElement; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      const inside = e.getBoundingClientRect().right <= right + 1;
      if ((o === "auto" || o === "scroll") && inside) { scrolls = true; break; }
    }
    if (!scrolls) out.tables.push([Math.round(r.width), (t.innerText || "").trim().slice(0, 40)]);
  }
  document.body.setAttribute("data-advsamples-layout", JSON.stringify(out));
}, 300));
</script>"""
#: The width the layout is checked at (a desktop window).
LAYOUT_WIDTH = 1280


def layout_problems(page: Path, *, timeout: float = 60.0, width: int = LAYOUT_WIDTH) -> list[str]:
    """What runs off ``page`` at ``width`` pixels: the page scrolling sideways, or a table wider
    than the text column that no container scrolls. Empty when the layout fits."""
    source = page.read_text(errors="replace")
    if re.search(r'(?i)<meta[^>]+http-equiv="refresh"', source):
        return []  # a redirect (the book's index.html): the page it leads to is checked itself
    base = f'<base href="{page.resolve().parent.as_uri()}/">'
    probe = re.sub(r"(?i)<head\b[^>]*>", lambda m: m.group(0) + base, source, count=1)
    probe = re.sub(r"(?i)</body>", lambda m: _PROBE + m.group(0), probe, count=1)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(probe)
        dumped = _run(
            [
                chromium(),
                *_FLAGS,
                "--virtual-time-budget=20000",
                f"--window-size={width},2000",
                "--dump-dom",
                copy.as_uri(),
            ],
            timeout,
        )
    m = re.search(r'data-advsamples-layout="([^"]*)"', dumped.stdout)
    if not m:
        return ["the layout probe did not report (the page did not finish loading)"]
    found = json.loads(_html.unescape(m.group(1)))
    problems = []
    if found["page"]:
        problems.append(f"the page scrolls sideways at {width} px: {found['page'][0]} px of content")
    for w, text in found["tables"]:
        problems.append(f"a table runs off the text column at {width} px ({w} px wide): {text!r}")
    return problems


def check_page(
    page: Path,
    *,
    root: Path | None = None,
    screenshot: Path | None = None,
    forbidden: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> PageReport:
    """Open ``page`` in headless Chromium (no network) and check it; ``root`` is the build folder
    (for the report's page name), ``screenshot`` where to save one, ``forbidden`` the paths that
    must not appear in the text."""
    browser = chromium()
    name = page.relative_to(root).as_posix() if root else page.name
    report = PageReport(name)
    url = page.resolve().as_uri()
    source = page.read_text(errors="replace")
    report.math = bool(re.search(r'class="[^"]*\bmath\b', source))
    dumped = _run(
        [
            browser,
            *_FLAGS,
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        timeout,
    )
    dom = dumped.stdout
    if dumped.returncode != 0 or "<html" not in dom.lower():
        report.problems.append(f"the page did not load (chromium exit {dumped.returncode})")
        return report
    for m in _CONSOLE.finditer(dumped.stderr):
        message = m.group(1)
        if message.startswith("Uncaught") or "Failed to load resource" in message or "net::ERR" in message:
            report.problems.append(f"JavaScript error: {message} ({m.group(2)})")
    report.typeset = len(re.findall(r"<mjx-container\b", dom))
    text = _visible_text(dom)
    if report.math and report.typeset == 0:
        report.problems.append("math is not typeset (no MathJax output on a page with math)")
    for raw in ("\\(", "\\[", "$$"):
        if raw in text:
            i = text.index(raw)
            report.problems.append(f"raw TeX left in the text: {' '.join(text[i : i + 40].split())!r}")
            break
    for src in re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', dom):
        report.images += 1
        if src.startswith(("data:", "http://", "https://")):
            if src.startswith("http"):
                report.problems.append(f"image from the network: {src}")
            continue
        target = (page.parent / _html.unescape(src.split("#")[0].split("?")[0])).resolve()
        if not target.is_file():
            report.problems.append(f"image missing: {src}")
    for marker, what in (
        ("{glue:", "a glue placeholder"),
        ("Traceback (most recent call last)", "a traceback"),
        ("glue key not found", "a missing glue key"),
    ):
        if marker in text:
            report.problems.append(f"{what} is visible")
    figures = len(re.findall(r"<figure\b", dom))
    numbered = len(re.findall(r'<span class="caption-number">', dom))
    if figures > numbered:
        report.problems.append(f"{figures - numbered} of {figures} figure(s) without a numbered caption")
    if re.search(r'class="[^"]*\b(output error|stderr)\b', dom):
        report.problems.append("an error or stderr output is visible")
    for path in forbidden:
        if path in text:
            i = text.index(path)
            report.problems.append(
                f"a path of the build machine is visible: {' '.join(text[i : i + 60].split())!r}"
            )
            break
    report.problems += layout_problems(page, timeout=timeout)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = _run(
            [
                browser,
                *_FLAGS,
                "--virtual-time-budget=20000",
                "--window-size=1280,2400",
                f"--screenshot={screenshot}",
                url,
            ],
            timeout,
        )
        if shot.returncode != 0 or not screenshot.is_file():
            report.problems.append(f"no screenshot (chromium exit {shot.returncode})")
    return report


def check_book(
    html_dir: Path, shots_dir: Path | None = None, project_root: Path | None = None
) -> list[PageReport]:
    """:func:`check_page` on every page of the built book (the search and genindex pages aside)."""
    pages = sorted(
        p
        for p in html_dir.rglob("*.html")
        if "_static" not in p.parts
        and "_sources" not in p.parts
        and p.name not in ("search.html", "genindex.html")
    )
    # the build machine's own paths: the project's folder and the home folder of who built it
    forbidden = (str(Path.home()) + "/",) + ((str(project_root),) if project_root else ())
    out = []
    for page in pages:
        shot = (
            None
            if shots_dir is None
            else shots_dir / (page.relative_to(html_dir).with_suffix(".png").as_posix().replace("/", "__"))
        )
        out.append(check_page(page, root=html_dir, screenshot=shot, forbidden=forbidden))
    return out
