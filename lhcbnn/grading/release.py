"""Generate the student notebooks ``exercises/`` from the single source ``solutions/``.

nbgrader's convention: in code cells every region between a line ``### BEGIN SOLUTION`` and a
line ``### END SOLUTION`` becomes ``# YOUR CODE HERE`` plus ``raise NotImplementedError()``,
indented like the ``BEGIN`` marker; in markdown cells the region becomes ``YOUR ANSWER HERE``.
Outputs, execution counts and execution metadata are cleared. The result is deterministic
(same input, same bytes), so a test can compare the committed exercises with a fresh release.

nbgrader's cell metadata (schema version 3) is derived from the same markers by
:func:`annotate`, so an instructor with nbgrader can run ``nbgrader generate_assignment`` on
``solutions/`` and hand out the same notebooks:

* a cell with a solution region is an autograded answer: ``solution: true, grade: false``,
  ``grade_id`` the name of the function it defines (else its cell id);
* a cell tagged ``self-check`` is read-only: ``locked: true``, ``grade_id`` ``self-check-<id>``;
* every other cell carries no ``nbgrader`` metadata.

``python -m lhcbnn.grading release`` writes this metadata back into ``solutions/`` (only
where it changed) before it writes ``exercises/``, so a new solution notebook gets it without
editing by hand. The exercises keep it too and lock cells as nbgrader's ``LockCells`` does
(answer cells cannot be deleted; self-check cells cannot be edited or deleted), so both
releases give a student the same notebook.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "END",
    "NBGRADER_SCHEMA_VERSION",
    "annotate",
    "annotation_diff",
    "nbgrader_metadata",
    "release",
    "release_diff",
    "release_notebook",
    "strip_solutions",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"
KEPT_CELL_METADATA = ("tags", "nbgrader")
SELF_CHECK_TAG = "self-check"  # as lhcbnn.grading.notebook.SELF_CHECK_TAG
NBGRADER_SCHEMA_VERSION = 3


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


def _has_region(cell: nbformat.NotebookNode) -> bool:
    return any(line.strip() == BEGIN for line in cell.source.split("\n"))


def nbgrader_metadata(notebook: nbformat.NotebookNode) -> list[dict | None]:
    """nbgrader's cell metadata for every cell of a solution notebook (``None``: no entry).

    Raises:
        ValueError: two cells would get the same ``grade_id``.
    """
    entries: list[dict | None] = []
    for index, cell in enumerate(notebook.cells):
        cell_id = cell.get("id") or f"cell-{index + 1}"
        if _has_region(cell):
            defined = re.search(r"^def ([A-Za-z_]\w*)\(", cell.source, re.M)
            grade_id = defined.group(1) if defined else cell_id
            entry = {"solution": True, "grade": False, "locked": False, "grade_id": grade_id}
        elif cell.cell_type == "code" and SELF_CHECK_TAG in cell.metadata.get("tags", []):
            entry = {
                "solution": False,
                "grade": False,
                "locked": True,
                "grade_id": f"self-check-{cell_id}",
            }
        else:
            entries.append(None)
            continue
        entry["cell_type"] = cell.cell_type  # nbgrader records it to notice changed cells
        entry["schema_version"] = NBGRADER_SCHEMA_VERSION
        entries.append(entry)
    ids = [e["grade_id"] for e in entries if e is not None]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"cells with the same nbgrader grade_id: {', '.join(duplicated)}")
    return entries


def annotate(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``solution`` whose cells carry exactly :func:`nbgrader_metadata`."""
    notebook = copy.deepcopy(solution)
    for cell, entry in zip(notebook.cells, nbgrader_metadata(notebook), strict=True):
        if entry is None:
            cell.metadata.pop("nbgrader", None)
        else:
            cell.metadata["nbgrader"] = entry
    return notebook


def release_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of one solution notebook (the input is not modified)."""
    notebook = annotate(solution)
    total = 0
    for index, cell in enumerate(notebook.cells):
        try:
            cell.source, regions = strip_solutions(cell.source, cell.cell_type)
        except ValueError as exc:
            raise ValueError(f"cell {index + 1}: {exc}") from None
        total += regions
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA}
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("solution") or grading.get("locked"):
            cell.metadata["deletable"] = False  # nbgrader's LockCells
        if grading.get("locked"):
            cell.metadata["editable"] = False
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if total == 0:
        raise ValueError(f"no {BEGIN} ... {END} region found")
    nbformat.validate(notebook)
    return notebook


def _render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def release(
    solutions_dir: str | Path, exercises_dir: str | Path, annotate_solutions: bool = False
) -> list[Path]:
    """Write ``exercises_dir/<name>.ipynb`` for every ``solutions_dir/ex*.ipynb``.

    With ``annotate_solutions``, first write nbgrader's metadata (:func:`annotate`) into
    every solution notebook that lacks it or holds a stale one. Returns the written paths.
    Exercise notebooks without a solution are left alone.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    sources = sorted(solutions_dir.glob("ex*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no ex*.ipynb notebooks in {solutions_dir}")
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        try:
            solution = nbformat.read(source, as_version=4)
            if annotate_solutions:
                annotated = _render(annotate(solution))
                if source.read_text(encoding="utf-8") != annotated:
                    source.write_text(annotated, encoding="utf-8")
                    written.append(source)
            student = release_notebook(solution)
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


def annotation_diff(solutions_dir: str | Path) -> list[str]:
    """Names of solution notebooks whose nbgrader metadata is missing or differs from
    :func:`annotate`; empty when every solution is annotated."""
    stale = []
    for source in sorted(Path(solutions_dir).glob("ex*.ipynb")):
        solution = nbformat.read(source, as_version=4)
        if _render(annotate(solution)) != source.read_text(encoding="utf-8"):
            stale.append(source.name)
    return stale
