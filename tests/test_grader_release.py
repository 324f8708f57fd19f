"""The single source: exercises/ is exactly what release makes of solutions/, minus answers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lhcbnn.grading import EXERCISES
from lhcbnn.grading.notebook import SELF_CHECK_TAG
from lhcbnn.grading.release import (
    BEGIN,
    END,
    release,
    release_diff,
    release_notebook,
    strip_solutions,
)

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
EXERCISES_DIR = REPO / "exercises"
NAMES = sorted(EXERCISES)


def test_every_exercise_has_a_solution_and_an_exercise_notebook() -> None:
    # one hidden-check module per solution notebook and per exercise notebook, no more
    assert {"ex02_elbo", "ex03_limits", "ex04_heteroskedastic"} <= set(NAMES)
    assert NAMES == sorted(path.stem for path in SOLUTIONS.glob("ex[0-9][0-9]_*.ipynb"))
    assert NAMES == sorted(path.stem for path in EXERCISES_DIR.glob("ex[0-9][0-9]_*.ipynb"))
    for name in NAMES:
        assert (SOLUTIONS / f"{name}.ipynb").is_file()
        assert (EXERCISES_DIR / f"{name}.ipynb").is_file()


def test_committed_exercises_equal_a_fresh_release(tmp_path: Path) -> None:
    assert release_diff(SOLUTIONS, EXERCISES_DIR) == [], (
        "exercises/ is out of date: run `python -m lhcbnn.grading release`"
    )
    written = release(SOLUTIONS, tmp_path)
    for path in written:
        assert path.read_bytes() == (EXERCISES_DIR / path.name).read_bytes()


def test_release_check_fails_on_a_stale_exercise(tmp_path: Path) -> None:
    release(SOLUTIONS, tmp_path)
    stale = tmp_path / "ex03_limits.ipynb"
    stale.write_text(stale.read_text().replace("Task 1", "Task one"))
    assert release_diff(SOLUTIONS, tmp_path) == ["ex03_limits.ipynb"]
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "lhcbnn.grading",
            "release",
            "--check",
            "--solutions",
            str(SOLUTIONS),
            "--exercises",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and "ex03_limits.ipynb" in check.stdout


def _solution_lines(notebook: nbformat.NotebookNode) -> list[str]:
    lines = []
    for cell in notebook.cells:
        inside = False
        for line in cell.source.split("\n"):
            if line.strip() == BEGIN:
                inside = True
            elif line.strip() == END:
                inside = False
            elif inside and len(line.strip()) > 12 and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


@pytest.mark.parametrize("name", NAMES)
def test_exercises_hold_no_solution_text(name: str) -> None:
    solution = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    exercise_text = (EXERCISES_DIR / f"{name}.ipynb").read_text()
    exercise = nbformat.read(EXERCISES_DIR / f"{name}.ipynb", as_version=4)
    lines = _solution_lines(solution)
    assert lines, "the solution notebook has no solution regions"
    sources = "\n".join(cell.source for cell in exercise.cells)
    leaked = [line for line in lines if line in sources]
    assert leaked == [], f"solution lines in the exercise: {leaked}"
    assert "SOLUTION" not in exercise_text
    for cell in exercise.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("name", NAMES)
def test_exercise_layout_statement_function_selfcheck(name: str) -> None:
    """2-5 tasks; each: a statement with a formula, a stub function, a tagged self-check."""
    exercise = EXERCISES[name]
    assert 2 <= len(exercise.tasks) <= 5
    notebook = nbformat.read(EXERCISES_DIR / f"{name}.ipynb", as_version=4)
    cells = notebook.cells
    assert any("import lhcbnn" in c.source for c in cells if c.cell_type == "code")
    for task in exercise.tasks:
        where = [
            i for i, c in enumerate(cells) if re.search(rf"^def {task.function}\(", c.source, re.M)
        ]
        assert len(where) == 1, f"{task.function}: expected one defining cell"
        index = where[0]
        assert "raise NotImplementedError()" in cells[index].source
        statement = next(c for c in reversed(cells[:index]) if c.cell_type == "markdown")
        assert "$" in statement.source and "point" in statement.source
        checks = [
            c
            for c in cells[index + 1 :]
            if SELF_CHECK_TAG in c.metadata.get("tags", []) and task.function in c.source
        ]
        assert checks, f"{task.function}: no self-check cell"


def test_strip_solutions_keeps_indentation() -> None:
    source = (
        "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    )
    stripped, regions = strip_solutions(source)
    assert regions == 1
    assert stripped == (
        "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    )
    assert strip_solutions("a = 1", "code") == ("a = 1", 0)
    text, _ = strip_solutions(f"{BEGIN}\nthe answer\n{END}", "markdown")
    assert text == "YOUR ANSWER HERE"


@pytest.mark.parametrize(
    "source, problem",
    [
        (f"{BEGIN}\nx = 1\n", "without"),
        (f"x = 1\n{END}\n", "without"),
        (f"{BEGIN}\n{BEGIN}\n{END}\n{END}\n", "nested"),
    ],
)
def test_broken_markers_are_errors(source: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        strip_solutions(source)


def test_a_notebook_without_solution_regions_is_refused() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="no ### BEGIN SOLUTION"):
        release_notebook(notebook)
