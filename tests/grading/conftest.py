"""Graded tests: one test per task of each submission, worth the task's points.

``pytest tests/grading --submission FILE`` grades FILE (its name selects the exercise);
without ``--submission`` every ``solutions/ex*.ipynb`` is graded. Each notebook runs once, in
the sandbox, through :func:`lhcbnn.grading.grade_notebook`; the checks live in
``tests/grading/tasks/exNN_*.py`` (registered by ``lhcbnn.grading.tasks``) and compare values
in this process. A summary of points per
notebook is printed at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCORES_KEY = pytest.StashKey[dict]()


def submissions(config: pytest.Config) -> list[Path]:
    chosen = config.getoption("submission") or []
    if chosen:
        return [Path(p) for p in chosen]
    return sorted((REPO / "solutions").glob("ex*.ipynb"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "graded_task" not in metafunc.fixturenames:
        return
    from lhcbnn.grading import EXERCISES

    params, ids = [], []
    for path in submissions(metafunc.config):
        exercise = EXERCISES.get(path.stem)
        functions = [t.function for t in exercise.tasks] if exercise else ["<unknown exercise>"]
        for function in functions:
            params.append((path, function))
            ids.append(f"{path.name}::{function}")
    metafunc.parametrize("graded_task", params, ids=ids)


@pytest.fixture(scope="session")
def score_board(request: pytest.FixtureRequest) -> dict:
    """Points per graded notebook, printed in the terminal summary."""
    return request.config.stash.setdefault(SCORES_KEY, {})


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    scores = config.stash.get(SCORES_KEY, {})
    if not scores:
        return
    terminalreporter.section("grades")
    for name, (score, max_score, status) in sorted(scores.items()):
        terminalreporter.write_line(f"{name}: {score} / {max_score} points (status {status})")
