"""Unit tests of the grader's parts that need no sandbox: parsing, checks, report validation."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from lhcbnn.grading.exchange import InvalidReport, read_report
from lhcbnn.grading.gradebook import COLUMNS, append_rows, merge, read_long, read_rows
from lhcbnn.grading.notebook import (
    CodeCell,
    InvalidNotebook,
    code_cells,
    forbidden_uses,
    python_source,
    read_notebook,
)
from lhcbnn.grading.runner import MagicsNotRun, to_float_arrays
from lhcbnn.grading.sandbox import Limits
from lhcbnn.grading.tasks.base import Case, CaseOutcome, Mistake, Task, check_task

TASKS = [("square", [Case((np.ones(2),), "ones")], 1)]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"{ broken", "not valid JSON"),
        (b"[1, 2, 3]", "not a Jupyter notebook"),
        (b'{"nbformat": 3, "cells": []}', "format 4"),
        (b'{"nbformat": 4, "cells": [{"cell_type": "code", "source": 5}]}', "source"),
        (b'{"nbformat": 4, "cells": [{"cell_type": "weird", "source": ""}]}', "cell_type"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unreadable_notebooks_are_rejected_with_a_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "ex02_elbo.ipynb"
    path.write_bytes(content)
    with pytest.raises(InvalidNotebook, match=reason):
        read_notebook(path)


def test_self_check_cells_are_not_graded(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("a = 1"),
        nbformat.v4.new_code_cell("assert False", metadata={"tags": ["self-check"]}),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    cells = code_cells(read_notebook(path))
    assert [(c.index, c.source) for c in cells] == [(1, "a = 1")]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("%matplotlib inline\nx = 1\nif x:\n    !pip install foo\ny = 2", {"x": 1, "y": 2}),
        ("x = !ls\ny = 2", {"x": [], "y": 2}),  # a regex on line starts missed this one
        ("%%writefile helper.py\nimport os\nos._exit(3)\n", {}),  # the body is not code
        ("%time y = 3\nz = 4", {"y": 3, "z": 4}),  # the timed statement still runs
        ("a = %env\nb = 1", {"a": None, "b": 1}),
    ],
)
def test_magics_become_calls_that_do_nothing(source: str, expected: dict) -> None:
    code = python_source(source)
    namespace: dict = {}
    namespace["get_ipython"] = lambda: MagicsNotRun(namespace)
    exec(compile(code, "<cell>", "exec"), namespace)
    assert {k: namespace[k] for k in expected} == expected
    assert not {"helper", "os"} & set(namespace)


@pytest.mark.parametrize(
    "source, found",
    [
        ("def kl_gaussian(a, b, c, d):\n    return lb.losses.kl_gaussian(a, b, c, d)", True),
        ("from lhcbnn.losses import kl_gaussian", True),
        ("kl_gaussian = lb.losses.kl_gaussian", True),
        ("def kl_gaussian(a, b, c, d):\n    return a - b", False),
        ("def other(a):\n    return lb.losses.kl_gaussian(a, a, 0, 1)", False),
        ("def kl_gaussian(:", False),
    ],
)
def test_calls_of_the_reference_implementation_are_found(source: str, found: bool) -> None:
    uses = forbidden_uses([CodeCell(0, source, ())], "kl_gaussian", ("kl_gaussian",))
    assert bool(uses) is found


def _task(reference, mistakes=()) -> Task:  # noqa: ANN001
    return Task("f", 2, "f", lambda: [Case((np.arange(3.0),), "c")], reference, mistakes)


@pytest.mark.parametrize(
    "values, passed, message",
    [
        ((np.array([0.0, 2.0, 4.0]),), True, "passed"),
        ((np.array([[0.0], [2.0], [4.0]]),), True, "passed"),  # singleton axes are fine
        ((np.array([0.0, 2.0]),), False, "shape"),
        ((np.array([0.0, np.nan, 4.0]),), False, "NaN"),
        ((np.array([0.0, 1.0, 2.0]),), False, "Hint: forgot the 2"),
        ((np.array([0.0, 2.0, 4.0]), np.ones(3)), False, "returned 2 value(s)"),
    ],
)
def test_check_task(values: tuple, passed: bool, message: str) -> None:
    task = _task(lambda x: 2 * x, [Mistake("forgot the 2", lambda x: x)])
    result = check_task(task, task.cases(), [CaseOutcome("ok", values)])
    assert result.passed is passed and message in result.message
    assert result.points == (2 if passed else 0)


def test_check_task_reports_the_students_error() -> None:
    task = _task(lambda x: x)
    outcome = CaseOutcome("error", error="ZeroDivisionError: division by zero (line 3)")
    result = check_task(task, task.cases(), [outcome])
    assert not result.passed and "ZeroDivisionError" in result.message


def _judged_task(partial: bool = False) -> Task:
    """An outcome-graded task: the returned width must be within 10% of 1."""

    def judge(args, values):  # noqa: ANN001, ANN202
        width = float(values[0])
        return abs(width - 1) <= 0.1, f"width {width:.3f}, allowed 1 +- 0.1"

    cases = lambda: [Case((seed,), f"seed {seed}") for seed in range(4)]  # noqa: E731
    return Task("w", 4, "w", cases, None, judge=judge, partial=partial)


def test_a_judged_task_is_graded_by_its_outcome() -> None:
    task = _judged_task()
    good = [CaseOutcome("ok", (np.array(w),)) for w in (0.95, 1.0, 1.08, 0.91)]
    assert check_task(task, task.cases(), good).points == 4
    bad = good[:3] + [CaseOutcome("ok", (np.array(1.3),))]
    result = check_task(task, task.cases(), bad)
    assert result.points == 0 and "width 1.300" in result.message
    nan = good[:3] + [CaseOutcome("ok", (np.array(np.nan),))]
    assert check_task(task, task.cases(), nan).points == 0


def test_partial_credit_counts_the_cases_that_pass() -> None:
    task = _judged_task(partial=True)
    outcomes = [CaseOutcome("ok", (np.array(w),)) for w in (1.0, 1.3, 1.0, 0.5)]
    result = check_task(task, task.cases(), outcomes)
    assert (result.points, result.passed) == (2, False)
    assert result.message.startswith("2 of 4 cases passed")
    stub = [CaseOutcome("not_implemented")] * 4
    assert check_task(task, task.cases(), stub).points == 0


def test_a_task_needs_a_reference_or_a_judge() -> None:
    with pytest.raises(ValueError, match="reference or a judge"):
        Task("f", 1, "f", lambda: [], None)


def test_returned_values_become_float_arrays() -> None:
    torch = pytest.importorskip("torch")
    assert to_float_arrays(torch.ones(2, dtype=torch.float32), 1)[0].dtype == np.float64
    assert to_float_arrays([1, 2, 3], 1)[0].shape == (3,)
    assert len(to_float_arrays((torch.ones(2), 3.0), 2)) == 2
    for bad, n in (("text", 1), ({"a": 1}, 1), (np.ones(2), 2), (np.array([1j]), 1)):
        with pytest.raises(TypeError):
            to_float_arrays(bad, n)


def _bundle(path: Path, report: dict | None, **arrays: np.ndarray) -> Path:
    if report is not None:
        arrays["__report__"] = np.frombuffer(json.dumps(report).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


GOOD_REPORT = {
    "protocol": 1,
    "nonce": "abc",
    "cells": [{"index": 0, "status": "ok"}],
    "tasks": {"square": {"status": "ok", "cases": [{"status": "ok", "n_outputs": 1}]}},
}


def test_a_valid_report_is_read(tmp_path: Path) -> None:
    path = _bundle(tmp_path / "r.npz", GOOD_REPORT, **{"square/0/0": np.ones(2)})
    report = read_report(path, "abc", TASKS, n_cells=1)
    assert report.outcomes["square"][0].status == "ok"
    np.testing.assert_array_equal(report.outcomes["square"][0].values[0], np.ones(2))


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"nonce": "forged"}, "token"),
        ({"protocol": 99}, "protocol"),
        ({"cells": [{"index": 0, "status": "fine"}]}, "cell entry"),
        ({"tasks": {}}, "no valid result"),
        ({"tasks": {"square": {"status": "ok", "cases": []}}}, "number of cases"),
        (
            {"tasks": {"square": {"status": "ok", "cases": [{"status": "ok", "n_outputs": 3}]}}},
            "output count",
        ),
    ],
)
def test_tampered_reports_are_rejected(tmp_path: Path, change: dict, problem: str) -> None:
    path = _bundle(tmp_path / "r.npz", {**GOOD_REPORT, **change}, **{"square/0/0": np.ones(2)})
    with pytest.raises(InvalidReport, match=problem):
        read_report(path, "abc", TASKS, n_cells=1)


def test_pickles_and_junk_are_never_loaded(tmp_path: Path) -> None:
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{"square/0/0": np.array([object()], dtype=object)})
    with pytest.raises(InvalidReport):
        read_report(pickled, "abc", TASKS, n_cells=1)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidReport, match="cannot be read"):
        read_report(junk, "abc", TASKS, n_cells=1)
    bomb = tmp_path / "bomb.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(10**7))
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("square/0/0.npy", buffer.getvalue())
    with pytest.raises(InvalidReport, match="too large"):
        read_report(bomb, "abc", TASKS, n_cells=1)
    with pytest.raises(InvalidReport, match="no report"):
        read_report(tmp_path / "missing.npz", "abc", TASKS, n_cells=1)


def _rows(student: str, score: int, stamp: str, exercise: str = "ex02_elbo") -> list[dict]:
    return [
        {
            "student": student,
            "exercise": exercise,
            "task": task,
            "points": str(points),
            "max_points": "5",
            "status": "ok",
            "graded_at": stamp,
        }
        for task, points in (("a", score), ("b", 0))
    ]


def test_gradebook_survives_a_torn_line_and_merges(tmp_path: Path) -> None:
    out = tmp_path / "grades.csv"
    append_rows(out, _rows("ann", 3, "2026-01-01T00:00:00.000000Z"))
    with open(out, "a") as handle:
        handle.write("bob,ex02_elbo,a")  # a crash in the middle of a line
    append_rows(out, _rows("cid", 5, "2026-01-01T00:00:00.000000Z"))
    rows = read_rows(out)
    assert set(rows) == {("ann", "ex02_elbo"), ("cid", "ex02_elbo")}
    assert (rows[("cid", "ex02_elbo")]["score"], rows[("cid", "ex02_elbo")]["max_score"]) == (
        "5",
        "10",
    )
    other = tmp_path / "other.csv"
    append_rows(other, _rows("ann", 4, "2026-02-01T00:00:00.000000Z"))
    assert merge([out, other], tmp_path / "merged.csv") == 2
    assert read_rows(tmp_path / "merged.csv")[("ann", "ex02_elbo")]["score"] == "4"
    assert len(read_long(tmp_path / "merged.csv")) == 6  # the older grading of ann stays
    with pytest.raises(FileNotFoundError):
        merge([tmp_path / "nope.csv"], tmp_path / "x.csv")


def test_gradebook_keeps_every_row_when_an_exercise_is_added_mid_term(tmp_path: Path) -> None:
    out = tmp_path / "grades.csv"
    append_rows(out, _rows("ann", 3, "2026-01-01T00:00:00.000000Z"))
    append_rows(out, _rows("bob", 1, "2026-01-01T00:00:01.000000Z"))
    before = out.read_text()
    # a new exercise with other tasks, and a regrade of one student
    append_rows(out, _rows("ann", 2, "2026-03-01T00:00:00.000000Z", exercise="ex09_new"))
    append_rows(out, _rows("bob", 5, "2026-03-02T00:00:00.000000Z"))
    assert out.read_text().startswith(before)  # nothing rewritten, nothing lost
    assert len(read_long(out)) == 8
    rows = read_rows(out)
    assert rows[("bob", "ex02_elbo")]["score"] == "5" and rows[("ann", "ex09_new")]["score"] == "2"
    with open(out) as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        Limits(memory_mb=10)
    assert Limits(timeout=30).soft == 10


def test_exports_for_people_moodle_and_canvas(tmp_path: Path) -> None:
    from lhcbnn.grading.export import export

    out = tmp_path / "grades.csv"
    append_rows(out, _rows("ann", 3, "2026-01-01T00:00:00.000000Z"))
    append_rows(out, _rows("bob", 1, "2026-01-01T00:00:01.000000Z"))
    append_rows(out, _rows("bob", 5, "2026-01-02T00:00:00.000000Z", exercise="ex03_limits"))
    error = _rows("ann", 0, "2026-01-03T00:00:00.000000Z", exercise="ex03_limits")
    append_rows(out, [{**row, "points": "", "status": "grader_error"} for row in error])

    def table(fmt: str) -> list[list[str]]:
        target = tmp_path / f"{fmt}.csv"
        export(out, fmt, target)
        with open(target, newline="") as handle:
            return list(csv.reader(handle))

    wide = table("wide")
    assert wide[0][:6] == ["student", "exercise", "score", "max_score", "status", "graded_at"]
    assert "ex02_elbo.a" in wide[0] and "ex03_limits.b" in wide[0] and len(wide) == 5
    assert table("moodle") == [
        ["Username", "ex02_elbo", "ex03_limits"],
        ["ann", "3", ""],  # a grader error is not a zero
        ["bob", "1", "5"],
    ]
    canvas = table("canvas")
    assert canvas[0] == [
        *("Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ex02_elbo", "ex03_limits")
    ]
    assert canvas[1] == ["Points Possible", "", "", "", "", "10", "10"]
    assert canvas[2] == ["ann", "", "", "ann", "", "3", ""]
    with pytest.raises(ValueError, match="format"):
        export(out, "excel", tmp_path / "x.csv")
