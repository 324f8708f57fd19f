"""Wall time of grading: one submission of each exercise, and a whole class.

``python -m lhcbnn.grading bench [--students 20] [--jobs 2]`` or :func:`time_grading` from a
benchmark script. The class is made of copies of the solution notebooks (half of the students)
and of the unmodified exercises (the other half), so it is graded exactly like real work.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from lhcbnn.grading.classgrade import grade_class
from lhcbnn.grading.grade import grade_notebook
from lhcbnn.grading.sandbox import Limits, sandbox_mode
from lhcbnn.grading.tasks import EXERCISES

__all__ = ["time_grading"]

REPO = Path(__file__).resolve().parents[2]


def time_grading(
    n_students: int = 20,
    jobs: int = 2,
    exercises: tuple[str, ...] | None = None,
    repo: str | Path = REPO,
    sandbox: str = "auto",
) -> dict[str, object]:
    """Measure grading times.

    Args:
        n_students: size of the class.
        jobs: notebooks graded in parallel in the class run.
        exercises: exercise names each student hands in (default: all).
        repo: the repository with ``solutions/`` and ``exercises/``.
        sandbox: ``"auto"``, ``"bwrap"`` or ``"none"``.

    Returns:
        ``{"sandbox": mode, "single": {exercise: seconds of one solution notebook},
        "class": {"students", "notebooks", "jobs", "seconds", "per_notebook"},
        "scores_ok": bool}`` where ``scores_ok`` says that every solution scored full marks
        and every unmodified exercise zero.
    """
    if n_students < 1:
        raise ValueError(f"n_students must be positive, got {n_students}")
    repo = Path(repo)
    names = tuple(exercises or sorted(EXERCISES))
    mode = sandbox_mode(sandbox)
    limits = Limits()
    single: dict[str, float] = {}
    scores_ok = True
    for name in names:
        started = time.monotonic()
        result = grade_notebook(repo / "solutions" / f"{name}.ipynb", limits=limits, sandbox=mode)
        single[name] = round(time.monotonic() - started, 2)
        scores_ok &= result.score == result.max_score
    with tempfile.TemporaryDirectory(prefix="lhcbnn-bench-") as folder:
        root = Path(folder) / "submissions"
        for k in range(n_students):
            student = root / f"student{k:03d}"
            student.mkdir(parents=True)
            source = "solutions" if k % 2 == 0 else "exercises"
            for name in names:
                shutil.copy(repo / source / f"{name}.ipynb", student / f"{name}.ipynb")
        started = time.monotonic()
        results = grade_class(
            root,
            Path(folder) / "grades.csv",
            jobs=jobs,
            limits=limits,
            sandbox=mode,
            progress=False,
        )
        seconds = time.monotonic() - started
    for result in results:
        solution = int(result.student[-3:]) % 2 == 0
        scores_ok &= result.score == (result.max_score if solution else 0)
    return {
        "sandbox": mode,
        "single": single,
        "class": {
            "students": n_students,
            "notebooks": len(results),
            "jobs": jobs,
            "seconds": round(seconds, 1),
            "per_notebook": round(seconds / max(len(results), 1), 2),
        },
        "scores_ok": scores_ok,
    }
