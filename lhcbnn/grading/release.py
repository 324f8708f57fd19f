"""Generate the student notebooks ``exercises/`` from the single source ``solutions/``.

nbgrader's convention: in code cells every region between a line ``### BEGIN SOLUTION`` and a
line ``### END SOLUTION`` becomes ``# YOUR CODE HERE`` plus ``raise NotImplementedError()``,
indented like the ``BEGIN`` marker; in markdown cells the region becomes ``YOUR ANSWER HERE``.
Outputs, execution counts and execution metadata are cleared. The result is deterministic
(same input, same bytes), so a test can compare the committed exercises with a fresh release.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

__all__ = ["BEGIN", "END", "strip_solutions", "release_notebook", "release", "release_diff"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"
KEPT_CELL_METADATA = ("tags",)


def strip_solutions(source: str, cell_type: str = "code") -> tuple[str, int]:
    """Replace every solution region of one cell; return the new source and the count.

    Raises:
        ValueError: a region is not closed, an END comes without BEGIN, or regions nest.
    """
    out: list[str] = []
    inside = False
    regions = 0
    indent = ""
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"line {number}: nested {BEGIN}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            continue
        if marker == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
            regions += 1
            if cell_type == "code":
                out.extend(indent + stub for stub in CODE_STUB)
            else:
                out.append(indent + TEXT_STUB)
            continue
        if not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out), regions


def release_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of one solution notebook (the input is not modified)."""
    notebook = copy.deepcopy(solution)
    total = 0
    for index, cell in enumerate(notebook.cells):
        try:
            cell.source, regions = strip_solutions(cell.source, cell.cell_type)
        except ValueError as exc:
            raise ValueError(f"cell {index + 1}: {exc}") from None
        total += regions
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if total == 0:
        raise ValueError(f"no {BEGIN} ... {END} region found")
    nbformat.validate(notebook)
    return notebook


def _render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def release(solutions_dir: str | Path, exercises_dir: str | Path) -> list[Path]:
    """Write ``exercises_dir/<name>.ipynb`` for every ``solutions_dir/ex*.ipynb``.

    Returns the written paths. Exercise notebooks without a solution are left alone.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    sources = sorted(solutions_dir.glob("ex*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no ex*.ipynb notebooks in {solutions_dir}")
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        try:
            student = release_notebook(nbformat.read(source, as_version=4))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        target = exercises_dir / source.name
        target.write_text(_render(student), encoding="utf-8")
        written.append(target)
    return written


def release_diff(solutions_dir: str | Path, exercises_dir: str | Path) -> list[str]:
    """Names of exercise notebooks that differ from what :func:`release` would write
    (missing ones included); empty when the committed exercises are up to date."""
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    stale = []
    for source in sorted(solutions_dir.glob("ex*.ipynb")):
        expected = _render(release_notebook(nbformat.read(source, as_version=4)))
        target = exercises_dir / source.name
        if not target.is_file() or target.read_text(encoding="utf-8") != expected:
            stale.append(source.name)
    return stale
