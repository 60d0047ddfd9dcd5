"""Sphinx extension: each page loads each script once.

Jupyter Book 1.x with Sphinx 7 registers sphinx-thebe's inline configuration script twice, and
the second copy stops with "Identifier 'THEBE_JS_URL' has already been declared" in every page's
console (found by ``make browser-test``). Identical scripts (same file, same attributes and body; no file
counts as the same whether it is None or "") are dropped from a page's list before it is written.
"""

from __future__ import annotations

from typing import Any


def _dedupe(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    kept = []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {}) or {}
        # an inline script is registered with filename None once and "" the other time
        name = str(getattr(script, "filename", script) or "")
        key = (name, tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
