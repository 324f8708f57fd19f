"""nbgrader interoperability: the solution notebooks carry nbgrader's cell metadata, and
``nbgrader generate_assignment`` on them gives exactly the committed ``exercises/``.

nbgrader 0.9.6 installs beside the pinned packages without changing any of them (measured
with ``pip install --dry-run``), so it is pinned in ``requirements.txt`` and listed in the
``test`` extra; the test runs the ``nbgrader`` command of the current environment and
skips only when it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lhcbnn.grading.notebook import SELF_CHECK_TAG
from lhcbnn.grading.release import BEGIN, annotate, annotation_diff, release_notebook

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
EXERCISES_DIR = REPO / "exercises"
NAMES = sorted(path.stem for path in SOLUTIONS.glob("ex*.ipynb"))


def test_every_solution_notebook_carries_nbgrader_metadata() -> None:
    assert NAMES, "no solution notebooks"
    assert annotation_diff(SOLUTIONS) == [], (
        "solution notebooks without nbgrader metadata: run `python -m lhcbnn.grading release`"
    )
    for name in NAMES:
        notebook = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
        answers = checks = 0
        for cell in notebook.cells:
            grading = cell.metadata.get("nbgrader")
            if BEGIN in cell.source:
                assert grading and grading["solution"] and not grading["grade"], cell.source
                answers += 1
            elif SELF_CHECK_TAG in cell.metadata.get("tags", []):
                assert grading and grading["locked"] and not grading["solution"], cell.source
                checks += 1
            else:
                assert grading is None, f"{name}: nbgrader metadata on a plain cell"
            if grading:
                assert grading["schema_version"] == 3 and grading["grade_id"]
        assert answers >= 2 and checks >= answers, name


def test_a_solution_without_metadata_is_reported(tmp_path: Path) -> None:
    source = nbformat.read(SOLUTIONS / f"{NAMES[0]}.ipynb", as_version=4)
    for cell in source.cells:
        cell.metadata.pop("nbgrader", None)
    nbformat.write(source, tmp_path / f"{NAMES[0]}.ipynb")
    assert annotation_diff(tmp_path) == [f"{NAMES[0]}.ipynb"]
    (tmp_path / f"{NAMES[0]}.ipynb").write_text(nbformat.writes(annotate(source)) + "\n")
    assert annotation_diff(tmp_path) == []


def test_duplicate_grade_ids_are_refused() -> None:
    notebook = nbformat.v4.new_notebook()
    body = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION"
    notebook.cells = [nbformat.v4.new_code_cell(body), nbformat.v4.new_code_cell(body)]
    with pytest.raises(ValueError, match="same nbgrader grade_id: f"):
        release_notebook(notebook)


def _nbgrader() -> str:
    beside = Path(sys.executable).with_name("nbgrader")
    found = str(beside) if beside.exists() else shutil.which("nbgrader")
    if not found:
        pytest.skip("nbgrader is not installed (pip install nbgrader==0.9.6, in requirements.txt)")
    return found


def _seen_by_student(notebook: nbformat.NotebookNode) -> list[tuple]:
    """Cell type, source, outputs and cell metadata (nbgrader's checksum left out)."""
    cells = []
    for cell in notebook.cells:
        metadata = {key: value for key, value in cell.metadata.items()}
        if "nbgrader" in metadata:
            metadata["nbgrader"] = {
                k: v for k, v in metadata["nbgrader"].items() if k != "checksum"
            }
        cells.append(
            (cell.cell_type, cell.source, cell.get("outputs", []), metadata, cell.get("id"))
        )
    return cells


def test_nbgrader_generate_assignment_equals_the_exercises(tmp_path: Path) -> None:
    """One nbgrader course with one assignment holding every solution notebook."""
    command = _nbgrader()
    source = tmp_path / "source" / "all"
    source.mkdir(parents=True)
    for name in NAMES:
        shutil.copy(SOLUTIONS / f"{name}.ipynb", source / f"{name}.ipynb")
    run = subprocess.run(
        [command, "generate_assignment", "all", f"--CourseDirectory.root={tmp_path}", "--force"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in NAMES:
        released = nbformat.read(tmp_path / "release" / "all" / f"{name}.ipynb", as_version=4)
        ours = nbformat.read(EXERCISES_DIR / f"{name}.ipynb", as_version=4)
        assert _seen_by_student(released) == _seen_by_student(ours), name
        assert released.metadata.get("kernelspec") == ours.metadata.get("kernelspec")
