"""Sphinx extension of the book's HTML build (listed in ``_config.yml``); not runtime code.

Jupyter Book loads it by name (``sphinx: extra_extensions: [lhcbnn._sphinx]``); nothing in
the package imports it.
"""

from __future__ import annotations

__all__ = ["setup"]


def _deduplicate_scripts(
    app: object, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """Drop repeated ``<script>`` entries from a page's context.

    With Sphinx 7 a script added by an extension after the builder started (as
    sphinx-thebe does for its inline ``const THEBE_JS_URL = ...``) is registered twice; the
    page then declares the same constant twice and the browser reports a SyntaxError.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in scripts:
        filename = str(getattr(script, "filename", script) or "")  # None and "" both: inline
        attributes = getattr(script, "attributes", {}) or {}
        key = (filename, tuple(sorted((name, str(value)) for name, value in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    # In place: handlers running later (MathJax's) append to this same list.
    scripts[:] = unique


def setup(app: object) -> dict[str, object]:
    """Sphinx extension hook: de-duplicate the script tags of every HTML page.

    The handler runs early (priority 100): ``html-page-context`` is emitted with
    ``emit_firstresult``, so a handler after one that returns a template name never runs.
    """
    app.connect("html-page-context", _deduplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
