"""Sphinx extension: every chapter page ends with a link to its exercise and how to run it.

Listed in ``_config.yml`` (``sphinx: extra_extensions``); no chapter needs a line of its own.
For a page ``book/NN_<name>`` and a notebook ``exercises/exNN_*.ipynb`` (the same ``NN``), the
extension appends an "Exercise" box to the end of the page with

* a download link to the notebook, which is copied into the built book
  (``_build/html/exercises/``), so the link works offline and on every fork;
* a link to the notebook in the repository when the repository is known: the Sphinx option
  ``exercise_links_repository`` (``https://github.com/OWNER/REPO``), else, in GitHub Actions,
  ``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY``;
* the commands that run it locally.

Chapters without an exercise (chapter 1) get nothing.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from docutils import nodes

__all__ = ["exercise_for", "setup"]

CHAPTER = re.compile(r"^book/(\d\d)_[^/]+$")


def exercise_for(docname: str, exercises_dir: Path) -> Path | None:
    """The exercise notebook of chapter page ``docname`` (``book/02_elbo`` ->
    ``exercises/ex02_elbo.ipynb``), or ``None`` when the chapter has none.

    Raises:
        ValueError: two notebooks claim the same chapter number.
    """
    match = CHAPTER.match(docname)
    if not match:
        return None
    found = sorted(exercises_dir.glob(f"ex{match.group(1)}_*.ipynb"))
    if len(found) > 1:
        raise ValueError(f"several exercises for {docname}: {[p.name for p in found]}")
    return found[0] if found else None


def _repository(app: object) -> str:
    configured = app.config.exercise_links_repository
    if configured:
        return configured.rstrip("/")
    if os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}"
    return ""


def _paragraph(*parts: nodes.Node | str) -> nodes.paragraph:
    paragraph = nodes.paragraph()
    for part in parts:
        paragraph += nodes.Text(part) if isinstance(part, str) else part
    return paragraph


def _link(text: str, uri: str) -> nodes.reference:
    return nodes.reference(text, text, refuri=uri)


def _exercise_box(app: object, docname: str, notebook: Path) -> nodes.admonition:
    relative = f"{app.config.exercise_links_dir}/{notebook.name}"
    depth = docname.count("/")
    download = "../" * depth + relative
    box = nodes.admonition(classes=["tip", "exercise-link"])
    box += nodes.title("", "Exercise")
    links: list[nodes.Node | str] = [
        "The exercise for this chapter is the notebook ",
        nodes.literal("", relative),
        " (",
        _link("download", download),
    ]
    repository = _repository(app)
    if repository:
        branch = app.config.exercise_links_branch
        links += [", ", _link("view in the repository", f"{repository}/blob/{branch}/{relative}")]
    links += [
        "). Fill in each function between the marked lines, run the self-check cell below "
        "it, and hand in the saved notebook. To run it on your machine (Linux or macOS, "
        "Python 3.11), in a copy of the repository:"
    ]
    box += _paragraph(*links)
    commands = (
        "python3.11 -m venv .venv && source .venv/bin/activate && pip install -r requirements.txt\n"
        f"jupyter lab {relative}"
    )
    box += nodes.literal_block(commands, commands, language="bash")
    box += _paragraph(
        "A course may hand out only the exercises and the package instead (",
        nodes.literal("", "python -m lhcbnn.grading student-dist"),
        "); its README gives the same two commands.",
    )
    return box


def _append_exercise(app: object, doctree: nodes.document) -> None:
    docname = app.env.docname
    notebook = exercise_for(docname, Path(app.srcdir) / app.config.exercise_links_dir)
    if notebook is None:
        return
    target: nodes.Element = doctree
    while True:
        sections = [child for child in target.children if isinstance(child, nodes.section)]
        if not sections:
            break
        target = sections[-1]
    target += _exercise_box(app, docname, notebook)


def _copy_exercises(app: object, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = Path(app.srcdir) / app.config.exercise_links_dir
    if not source.is_dir():
        return
    target = Path(app.outdir) / app.config.exercise_links_dir
    target.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(source.glob("ex[0-9][0-9]_*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)


def setup(app: object) -> dict[str, object]:
    """Register the options, the page hook and the copy of the notebooks."""
    app.add_config_value("exercise_links_dir", "exercises", "env")
    app.add_config_value("exercise_links_repository", "", "env")
    app.add_config_value("exercise_links_branch", "main", "env")
    app.connect("doctree-read", _append_exercise)
    app.connect("build-finished", _copy_exercises)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
