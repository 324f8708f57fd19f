"""The online book: the Pages workflow, and the exercise box at the end of every chapter.

The box comes from the Sphinx extension :mod:`lhcbnn.exercise_links`; it is tested here on
a small Sphinx project (seconds) rather than on the whole book.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from lhcbnn.exercise_links import exercise_for

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "book.yml"


def test_pages_workflow_builds_with_warnings_as_errors_and_deploys() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]  # daily
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step.get("run", "") for step in build["steps"]]
    assert any("pip install -r requirements.txt" in run for run in runs)
    assert any(run.strip() == "jupyter-book build -W ." for run in runs)
    uploads = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages")]
    assert uploads and uploads[0]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert "pull_request" in deploy["if"] and "refs/heads/main" in deploy["if"]


def test_every_chapter_finds_at_most_one_exercise() -> None:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    found = {c: exercise_for(c, REPO / "exercises") for c in chapters}
    for chapter, notebook in found.items():
        if notebook is not None:
            assert notebook.name.startswith("ex" + Path(chapter).name[:2]), chapter
    assert found["book/02_elbo"] == REPO / "exercises" / "ex02_elbo.ipynb"
    assert found["book/01_error_bars"] is None
    assert exercise_for("intro", REPO / "exercises") is None


def _project(root: Path) -> None:
    (root / "book").mkdir(parents=True)
    (root / "exercises").mkdir()
    (root / "conf.py").write_text(
        "extensions = ['lhcbnn.exercise_links']\nexclude_patterns = ['exercises', '_build']\n"
    )
    (root / "index.rst").write_text(
        "Book\n====\n\n.. toctree::\n\n   book/01_first\n   book/02_second\n"
    )
    (root / "book" / "01_first.rst").write_text("First\n=====\n\nText.\n")
    (root / "book" / "02_second.rst").write_text(
        "Second\n======\n\nText.\n\nSummary\n-------\n\nThe end.\n"
    )
    nbformat.write(nbformat.v4.new_notebook(), root / "exercises" / "ex02_second.ipynb")


@pytest.mark.parametrize("github", [False, True])
def test_chapter_pages_end_with_their_exercise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: bool
) -> None:
    from sphinx.cmd.build import build_main

    for name in ("GITHUB_REPOSITORY", "GITHUB_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    if github:
        monkeypatch.setenv("GITHUB_REPOSITORY", "someone/fork")
    _project(tmp_path)
    out = tmp_path / "_build"
    assert build_main(["-W", "-q", "-b", "html", str(tmp_path), str(out)]) == 0
    second = (out / "book" / "02_second.html").read_text()
    first = (out / "book" / "01_first.html").read_text()
    assert "exercise-link" in second and "exercise-link" not in first
    assert 'href="../exercises/ex02_second.ipynb"' in second
    assert "jupyter lab exercises/ex02_second.ipynb" in second.replace(
        '<span class="w"> </span>', " "
    )
    # the box is the last thing of the last section (after the summary's text)
    assert second.index("The end.") < second.index("exercise-link")
    assert (out / "exercises" / "ex02_second.ipynb").is_file()
    repository_link = "https://github.com/someone/fork/blob/main/exercises/ex02_second.ipynb"
    assert (repository_link in second) == github
