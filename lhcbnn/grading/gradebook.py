"""The CSV gradebook: one row per student and exercise, written as each grade finishes.

Columns: ``student, exercise, score, max_score, status``, then one column per task of every
known exercise (``<exercise>.<task>``, empty for other exercises), then ``seconds``,
``sha256`` (of the graded file) and ``graded_at``. The header depends only on the exercise
registry, so the CSVs of several shards have the same columns and merge by concatenation.

Crash safety: rows are appended one line at a time and flushed to disk (``fsync``); a torn
last line from a crash is ignored when reading. Reading keeps the last row of each
``(student, exercise)``, so a regrade simply appends. :func:`compact` rewrites the file sorted
and without duplicates, atomically (temporary file + rename).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lhcbnn.grading.grade import GradeResult
from lhcbnn.grading.tasks import EXERCISES

__all__ = ["columns", "row_of", "read_rows", "append_row", "compact", "merge"]

BASE_COLUMNS = ("student", "exercise", "score", "max_score", "status")
TAIL_COLUMNS = ("seconds", "sha256", "graded_at")


def columns() -> list[str]:
    """The gradebook header."""
    task_columns = [
        f"{name}.{task.function}" for name in sorted(EXERCISES) for task in EXERCISES[name].tasks
    ]
    return [*BASE_COLUMNS, *task_columns, *TAIL_COLUMNS]


def row_of(result: GradeResult) -> dict[str, str]:
    """One gradebook row for a graded submission."""
    row = {name: "" for name in columns()}
    row.update(
        student=result.student,
        exercise=result.exercise,
        score=str(result.score),
        max_score=str(result.max_score),
        status=result.status,
        seconds=f"{result.seconds:.2f}",
        sha256=result.sha256,
        graded_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    for task in result.tasks:
        key = f"{result.exercise}.{task.function}"
        if key in row:
            row[key] = str(task.points)
    return row


def read_rows(path: str | Path) -> dict[tuple[str, str], dict[str, str]]:
    """Rows of a gradebook by ``(student, exercise)``, the last one winning.

    A missing file gives no rows; malformed lines (a torn write) are skipped.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    rows: dict[tuple[str, str], dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            return {}
        for values in reader:
            if len(values) != len(header):
                continue
            row = dict(zip(header, values, strict=True))
            if not row.get("student") or not row.get("exercise"):
                continue
            try:
                int(row["score"]), int(row["max_score"])
            except (KeyError, ValueError):
                continue
            rows[(row["student"], row["exercise"])] = row
    return rows


def _line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def append_row(path: str | Path, row: dict[str, str]) -> None:
    """Append one row (writing the header first for a new file) and flush it to disk."""
    path = Path(path)
    header = columns()
    new = not path.is_file() or path.stat().st_size == 0
    if not new:
        with open(path, newline="", encoding="utf-8") as handle:
            existing = next(csv.reader(handle), [])
        if existing != header:
            raise ValueError(
                f"{path} has other columns than this grader writes; use a new --out file"
            )
    with open(path, "a", newline="", encoding="utf-8") as handle:
        if new:
            handle.write(_line(header))
        elif not _ends_with_newline(path):
            handle.write("\n")  # finish a torn line so the new row starts cleanly
        handle.write(_line([row.get(name, "") for name in header]))
        handle.flush()
        os.fsync(handle.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def write_rows(path: str | Path, rows: Iterable[dict[str, str]]) -> None:
    """Write a complete gradebook atomically, sorted by student and exercise."""
    path = Path(path)
    header = columns()
    ordered = sorted(rows, key=lambda r: (r["student"], r["exercise"]))
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        handle.write(_line(header))
        for row in ordered:
            handle.write(_line([row.get(name, "") for name in header]))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def compact(path: str | Path) -> None:
    """Rewrite a gradebook sorted, one row per student and exercise."""
    write_rows(path, read_rows(path).values())


def merge(inputs: Sequence[str | Path], output: str | Path) -> int:
    """Combine gradebooks (e.g. one per shard) into ``output``; returns the number of rows.

    Rows for the same student and exercise in several inputs: the one graded last wins.

    Raises:
        FileNotFoundError: an input is missing.
    """
    combined: dict[tuple[str, str], dict[str, str]] = {}
    for name in inputs:
        if not Path(name).is_file():
            raise FileNotFoundError(f"gradebook {name} does not exist")
        for key, row in read_rows(name).items():
            if key not in combined or row.get("graded_at", "") >= combined[key].get(
                "graded_at", ""
            ):
                combined[key] = row
    write_rows(output, combined.values())
    return len(combined)
