"""One test per graded task: passes when the submission earns the task's points.

The points of each task are recorded as the test's ``points`` property (visible with
``--junitxml``) and summed per notebook in the ``grades`` section of the report.
"""

from __future__ import annotations

import pytest


def test_task(graded_task, grade_cache, score_board, record_property) -> None:  # noqa: ANN001
    path, function = graded_task
    if not path.is_file():
        pytest.fail(f"submission {path} does not exist")
    result = grade_cache(path)
    score_board[str(path)] = (result.score, result.max_score, result.status)
    if result.status == "unknown_exercise":
        pytest.fail("; ".join(result.notes))
    task = next(t for t in result.tasks if t.function == function)
    record_property("points", task.points)
    record_property("max_points", task.max_points)
    notes = "\n".join(result.notes)
    assert task.passed, f"{function}: {task.points}/{task.max_points} points: {task.message}" + (
        f"\nnotes:\n{notes}" if notes else ""
    )
