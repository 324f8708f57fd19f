"""The gradebook: long format, one row per task of every grading, kept for the whole term.

Columns (:data:`COLUMNS`): ``student, exercise, task, points, max_points, status,
graded_at``, then ``sha256`` (of the graded file) and ``seconds``. One grading of one
notebook writes one row per task of its exercise, all with the same ``graded_at`` (UTC, in
microseconds); a grading without tasks (an unknown file name) writes one row with an empty
``task``. ``points`` is empty when the run is not a grade (``grader_error``).

The file only grows: a regrade, a new exercise added mid-term, another shard all append rows
with the same columns, and every earlier row stays. The current grade of a student and an
exercise is the grading with the latest ``graded_at`` (:func:`read_rows`). Tables for people
and learning-management systems are exported from it (:mod:`lhcbnn.grading.export`).

Crash safety: rows are appended and flushed to disk (``fsync``) as each grade finishes; a
torn last line from a crash is ignored when reading and closed before the next append.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lhcbnn.grading.grade import NOT_FINAL, GradeResult

__all__ = [
    "COLUMNS",
    "rows_of",
    "read_long",
    "read_rows",
    "append_result",
    "write_long",
    "merge",
]

COLUMNS = (
    "student",
    "exercise",
    "task",
    "points",
    "max_points",
    "status",
    "graded_at",
    "sha256",
    "seconds",
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rows_of(result: GradeResult, graded_at: str | None = None) -> list[dict[str, str]]:
    """The long rows of one grading."""
    stamp = graded_at or _now()
    final = result.status not in NOT_FINAL
    common = {
        "student": result.student,
        "exercise": result.exercise,
        "status": result.status,
        "graded_at": stamp,
        "sha256": result.sha256,
        "seconds": f"{result.seconds:.2f}",
    }
    if not result.tasks:
        points = str(result.score) if final else ""
        return [{**common, "task": "", "points": points, "max_points": str(result.max_score)}]
    return [
        {
            **common,
            "task": task.function,
            "points": str(task.points) if final else "",
            "max_points": str(task.max_points),
        }
        for task in result.tasks
    ]


def read_long(path: str | Path) -> list[dict[str, str]]:
    """Every row of a gradebook in file order (a missing file has none; torn lines skipped).

    Raises:
        ValueError: the file is a gradebook of another layout.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            return []
        if tuple(header) != COLUMNS:
            raise ValueError(
                f"{path} is not a long-format gradebook (columns {', '.join(header[:8])}...)"
            )
        for values in reader:
            if len(values) != len(COLUMNS):
                continue
            row = dict(zip(COLUMNS, values, strict=True))
            if not row["student"] or not row["exercise"] or not row["graded_at"]:
                continue
            try:
                int(row["max_points"])
                if row["points"]:
                    int(row["points"])
            except ValueError:
                continue
            rows.append(row)
    return rows


def current(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """The rows of the latest grading of every ``(student, exercise)``."""
    latest: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        key = (row["student"], row["exercise"])
        if key not in latest or row["graded_at"] > latest[key][0]["graded_at"]:
            latest[key] = [row]
        elif row["graded_at"] == latest[key][0]["graded_at"]:
            if all(r["task"] != row["task"] for r in latest[key]):
                latest[key].append(row)
    return latest


def summary(rows: Sequence[dict[str, str]]) -> dict[str, str]:
    """One grading as one record: score, max_score, status, and ``<exercise>.<task>``."""
    first = rows[0]
    record = {
        "student": first["student"],
        "exercise": first["exercise"],
        "score": "" if first["status"] in NOT_FINAL else str(sum(_int(r["points"]) for r in rows)),
        "max_score": str(sum(_int(r["max_points"]) for r in rows)),
        "status": first["status"],
        "graded_at": first["graded_at"],
        "sha256": first["sha256"],
        "seconds": first["seconds"],
    }
    for row in rows:
        if row["task"]:
            record[f"{first['exercise']}.{row['task']}"] = row["points"]
    return record


def _int(text: str) -> int:
    return int(text) if text else 0


def read_rows(path: str | Path) -> dict[tuple[str, str], dict[str, str]]:
    """The current grade of every ``(student, exercise)`` as a :func:`summary` record."""
    return {key: summary(rows) for key, rows in current(read_long(path)).items()}


def _line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def append_rows(path: str | Path, rows: Sequence[dict[str, str]]) -> None:
    """Append rows (writing the header first for a new file) and flush them to disk."""
    path = Path(path)
    new = not path.is_file() or path.stat().st_size == 0
    if not new:
        with open(path, newline="", encoding="utf-8") as handle:
            existing = tuple(next(csv.reader(handle), []))
        if existing != COLUMNS:
            raise ValueError(f"{path} is not a long-format gradebook; use a new --out file")
    text = "".join(_line([row.get(name, "") for name in COLUMNS]) for row in rows)
    with open(path, "a", newline="", encoding="utf-8") as handle:
        if new:
            handle.write(_line(COLUMNS))
        elif not _ends_with_newline(path):
            handle.write("\n")  # finish a torn line so the new rows start cleanly
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def append_result(path: str | Path, result: GradeResult) -> None:
    """Append the rows of one grading."""
    append_rows(path, rows_of(result))


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def write_long(path: str | Path, rows: Iterable[dict[str, str]]) -> None:
    """Write a complete gradebook atomically, ordered by student, exercise, time, task."""
    path = Path(path)
    ordered = sorted(rows, key=lambda r: (r["student"], r["exercise"], r["graded_at"], r["task"]))
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        handle.write(_line(COLUMNS))
        for row in ordered:
            handle.write(_line([row.get(name, "") for name in COLUMNS]))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def merge(inputs: Sequence[str | Path], output: str | Path) -> int:
    """Combine gradebooks (e.g. one per shard) into ``output``, keeping every row once.

    Returns the number of ``(student, exercise)`` pairs with a grade.

    Raises:
        FileNotFoundError: an input is missing.
    """
    seen: dict[tuple[str, ...], dict[str, str]] = {}
    for name in inputs:
        if not Path(name).is_file():
            raise FileNotFoundError(f"gradebook {name} does not exist")
        for row in read_long(name):
            seen.setdefault(tuple(row[c] for c in COLUMNS), row)
    write_long(output, seen.values())
    return len(current(seen.values()))
