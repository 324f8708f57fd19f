"""Tables exported from the long gradebook: a wide table for people, and the CSV shapes that
the Moodle and Canvas gradebook imports accept.

``wide``
    one row per student and exercise (the current grade): ``student, exercise, score,
    max_score, status, graded_at``, then one column ``<exercise>.<task>`` per task seen in the
    gradebook (so an exercise added mid-term simply adds columns).
``moodle``
    one row per student, one column per exercise, for Moodle's *Grades > Import > CSV file*:
    the first column ``Username`` holds the submission folder's name; on the import page map
    it ("Identify user by: Map from Username, Map to username", or to *Email address* /
    *ID number* if the folders are named that way) and map each exercise column to its grade
    item (or "new grade item").
``canvas``
    Canvas's gradebook CSV (*Grades > Import*): the columns ``Student, ID, SIS User ID, SIS
    Login ID, Section`` that Canvas reads to find the student (here ``Student`` and ``SIS
    Login ID`` hold the folder name, so name the folders by SIS login), then one column per
    exercise, and a second row ``Points Possible`` with each exercise's maximum. A column
    whose name matches no assignment creates one; to fill an existing assignment, rename the
    column to Canvas's ``Name (assignment id)`` as in Canvas's own export.

Cells stay empty where a student has no grade for an exercise or the last run was a grader
error (so an import does not overwrite a grade with a zero that nobody gave).
"""

from __future__ import annotations

import csv
from pathlib import Path

from lhcbnn.grading.gradebook import read_rows

__all__ = ["FORMATS", "export"]

FORMATS = ("wide", "moodle", "canvas")
CANVAS_ID_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def _table(gradebook: str | Path, fmt: str) -> list[list[str]]:
    grades = read_rows(gradebook)
    exercises = sorted({exercise for _, exercise in grades})
    students = sorted({student for student, _ in grades})
    if fmt == "wide":
        task_columns = sorted({key for record in grades.values() for key in record if "." in key})
        head = ["student", "exercise", "score", "max_score", "status", "graded_at"]
        table = [head + task_columns]
        for key in sorted(grades):
            record = grades[key]
            table.append([record.get(name, "") for name in head + task_columns])
        return table
    maxima = {}
    for (_, exercise), record in grades.items():
        if record["status"] not in ("unknown_exercise",):
            maxima[exercise] = max(maxima.get(exercise, 0), int(record["max_score"] or 0))
    exercises = [e for e in exercises if e in maxima]

    def score(student: str, exercise: str) -> str:
        record = grades.get((student, exercise))
        return record["score"] if record else ""

    if fmt == "moodle":
        table = [["Username", *exercises]]
        table += [[s, *(score(s, e) for e in exercises)] for s in students]
        return table
    if fmt == "canvas":
        table = [CANVAS_ID_COLUMNS + exercises]
        table.append(["Points Possible", "", "", "", ""] + [str(maxima[e]) for e in exercises])
        table += [[s, "", "", s, "", *(score(s, e) for e in exercises)] for s in students]
        return table
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def export(gradebook: str | Path, fmt: str, out: str | Path) -> int:
    """Write the ``fmt`` table of ``gradebook`` to ``out``; returns the number of data rows.

    Raises:
        FileNotFoundError: the gradebook does not exist.
        ValueError: unknown format, or not a long-format gradebook.
    """
    if not Path(gradebook).is_file():
        raise FileNotFoundError(f"gradebook {gradebook} does not exist")
    table = _table(gradebook, fmt)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    return len(table) - (2 if fmt == "canvas" else 1)
