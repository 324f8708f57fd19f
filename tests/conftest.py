"""Root conftest of the test suite.

``--submission FILE`` (repeatable) selects the notebooks that ``tests/grading`` grades; without
it the solution notebooks are graded (each must score full marks). pytest honours
``pytest_addoption`` only in conftest files it loads at start-up, hence this file.

The session-scoped ``grade_cache`` grades each notebook once per session, so the graded tests
and the grader's self-check share the runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lhcbnn grading")
    group.addoption(
        "--submission",
        action="append",
        default=[],
        metavar="FILE",
        help="grade this notebook with tests/grading (repeatable; default: solutions/ex*.ipynb)",
    )


@pytest.fixture(scope="session")
def grade_cache() -> Callable:
    """``grade(path)`` -> :class:`~lhcbnn.grading.GradeResult`, one sandboxed run per file."""
    from lhcbnn.grading import grade_notebook

    results: dict[str, object] = {}

    def grade(path: str | Path):
        path = Path(path)
        key = f"{path.resolve()}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        if key not in results:
            results[key] = grade_notebook(path, student=path.parent.name)
        return results[key]

    return grade
