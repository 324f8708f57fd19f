"""Wall time to execute the book's chapters and to grade one exercise submission.

Neither touches a committed file: the book folder is copied to a temporary folder and
the copies are executed there with ``lhcbnn.book.execute_notebook``; the grader works on
a temporary ``SUBMISSIONS`` folder holding one student with a copy of a solution notebook.
Each figure is None with a reason when the notebooks or the grader are not there.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lhcbnn.book import chapter_notebooks, execute_notebook

REPO = Path(__file__).resolve().parent.parent
"""The repository root (benchmarks/ lives in it)."""

PREFERRED_EXERCISE = "ex04"
"""The exercise whose solution is graded, when it exists; otherwise the first one."""


def execute_book(
    threads: int, timeout: int = 600, only: int | None = None
) -> tuple[float | None, dict[str, float] | None, dict[str, object]]:
    """Execute copies of ``book/NN_*.ipynb``; returns (total s, seconds per chapter, details).

    Args:
        threads: ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` of each kernel.
        timeout: seconds allowed per cell.
        only: execute only the first ``only`` chapters (None: all).

    The details hold the tool used, failures and, when nothing ran, the reason.
    """
    book = REPO / "book"
    notebooks = chapter_notebooks(book) if book.is_dir() else []
    if not notebooks:
        return None, None, {"reason": "no chapter notebooks book/NN_*.ipynb at run time"}
    if only is not None:
        notebooks = notebooks[:only]
    seconds: dict[str, float] = {}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lhcbnn-bench-book-") as scratch:
        copy = Path(scratch) / "book"
        shutil.copytree(book, copy, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
        # the chapters read their measured seed spreads from ../benchmarks/*.json
        shutil.copytree(
            REPO / "benchmarks", Path(scratch) / "benchmarks", ignore=shutil.ignore_patterns("*.py")
        )
        for notebook in notebooks:
            target = copy / notebook.name
            result = execute_notebook(target, timeout=timeout, threads=threads)
            seconds[notebook.stem] = result.seconds
            if not result.ok:
                failures[notebook.stem] = result.error
    details: dict[str, object] = {
        "tool": "lhcbnn.book.execute_notebook",
        "threads": threads,
        "failures": failures,
    }
    if only is not None:
        details["only_first"] = only
    return sum(seconds.values()), seconds, details


def grade_one_submission(timeout: float = 300.0) -> tuple[float | None, dict[str, object]]:
    """Seconds for ``python -m lhcbnn.grading grade`` on one student with one solution.

    The whole command is timed (interpreter start, grader, sandboxed child, gradebook).
    Returns (seconds, details); seconds is None with a reason when grading is not possible.
    """
    try:
        import lhcbnn.grading  # noqa: F401
    except ImportError as error:
        return None, {"reason": f"lhcbnn.grading cannot be imported: {error}"}
    solutions = sorted((REPO / "solutions").glob("ex[0-9][0-9]_*.ipynb"))
    if not solutions:
        return None, {"reason": "no solution notebooks solutions/exNN_*.ipynb at run time"}
    preferred = [path for path in solutions if path.name.startswith(PREFERRED_EXERCISE)]
    solution = (preferred or solutions)[0]
    with tempfile.TemporaryDirectory(prefix="lhcbnn-bench-grade-") as scratch:
        submissions = Path(scratch) / "SUBMISSIONS"
        (submissions / "student01").mkdir(parents=True)
        shutil.copy(solution, submissions / "student01" / solution.name)
        gradebook = Path(scratch) / "grades.csv"
        command = [
            sys.executable,
            "-m",
            "lhcbnn.grading",
            "grade",
            str(submissions),
            "--out",
            str(gradebook),
            "--no-progress",
        ]
        start = time.perf_counter()
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
        )
        elapsed = time.perf_counter() - start
        details: dict[str, object] = {"exercise": solution.name, "returncode": completed.returncode}
        if completed.returncode != 0 or not gradebook.is_file():
            details["reason"] = "grading failed: " + completed.stderr.strip()[-500:]
            return None, details
        with gradebook.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            row = rows[0]
            details.update(
                status=row.get("status"), score=row.get("score"), max_score=row.get("max_score")
            )
    return elapsed, details
