"""Grade a class: ``SUBMISSIONS/<student>/<exercise>.ipynb`` into a gradebook and feedback.

Each submission runs in its own sandboxed child (:func:`~lhcbnn.grading.grade.grade_notebook`);
``jobs`` of them at a time (threads in the grader that wait on child processes). Each result
is appended to the long-format gradebook (:mod:`~lhcbnn.grading.gradebook`) and its feedback
file written the moment it finishes, so an interrupted run loses at most the submissions in
flight; a re-run skips every submission whose current grade is for the same file content
(sha256) unless ``force``. A ``grader_error`` is not a grade: it is recorded (without points,
and without touching the student's feedback) and the next run grades that file again.
``shard=(k, n)`` grades the k-th of n disjoint parts (by a stable hash of student and
exercise), for batch systems; merge the shard CSVs with :func:`~lhcbnn.grading.gradebook.merge`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from lhcbnn.grading import gradebook
from lhcbnn.grading.grade import NOT_FINAL, GradeResult, _sha256, grade_notebook
from lhcbnn.grading.sandbox import Limits, remove_abandoned, sandbox_mode
from lhcbnn.grading.tasks import EXERCISES, Exercise

__all__ = ["Submission", "find_submissions", "in_shard", "parse_shard", "grade_class"]


@dataclass(frozen=True)
class Submission:
    student: str
    exercise: str
    path: Path


def find_submissions(root: str | Path) -> list[Submission]:
    """Every ``root/<student>/*.ipynb`` (hidden folders and checkpoints skipped), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder {root} does not exist")
    found = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if student_dir.name.startswith("."):
            continue
        for notebook in sorted(student_dir.glob("*.ipynb")):
            if notebook.is_file():
                found.append(Submission(student_dir.name, notebook.stem, notebook))
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` with ``1 <= K <= N`` as ``(K, N)``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N, got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def in_shard(submission: Submission, shard: tuple[int, int]) -> bool:
    """Stable assignment: adding students does not move others to another shard."""
    k, n = shard
    key = f"{submission.student}/{submission.exercise}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % n == k - 1


def _grade_safely(submission: Submission, **kwargs) -> GradeResult:
    """grade_notebook, with a failure of the grader itself recorded as ``grader_error``."""
    try:
        return grade_notebook(submission.path, student=submission.student, **kwargs)
    except Exception as exc:  # noqa: BLE001 - one broken run must not stop the class
        return GradeResult(
            submission.student,
            submission.exercise,
            0,
            0,
            "grader_error",
            notes=[f"the grader failed: {type(exc).__name__}: {exc}"],
            sha256=_sha256(submission.path),
        )


def _write_feedback(folder: Path, result: GradeResult) -> Path:
    target = folder / result.student / f"{result.exercise}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".md.tmp")
    temporary.write_text(result.feedback(), encoding="utf-8")
    temporary.replace(target)
    return target


def grade_class(
    submissions: str | Path,
    out: str | Path,
    *,
    feedback_dir: str | Path | None = None,
    jobs: int = 2,
    limits: Limits | None = None,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    sandbox: str = "auto",
    progress: bool = True,
    on_result: Callable[[GradeResult], None] | None = None,
    exercises: Mapping[str, Exercise] | None = None,
) -> list[GradeResult]:
    """Grade every submission under ``submissions`` into the CSV ``out``.

    Args:
        submissions: folder with one sub-folder per student.
        out: the long-format gradebook CSV (appended to; created if missing).
        feedback_dir: where ``<student>/<exercise>.md`` go (default: ``feedback/`` beside
            ``out``).
        jobs: submissions graded at the same time.
        limits: resource limits per submission.
        shard: ``(k, n)``: grade only the k-th of n parts.
        force: regrade submissions that already have a row.
        sandbox: ``"auto"``, ``"bwrap"`` or ``"none"``.
        progress: show a tqdm progress bar on stderr.
        on_result: called in the main thread after each result is saved.
        exercises: exercises by name (default: the registry); tests use made-up ones.

    Returns:
        The results graded in this run (skipped submissions are not included).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    out = Path(out)
    feedback_dir = Path(feedback_dir) if feedback_dir else out.parent / "feedback"
    limits = limits or Limits()
    mode = sandbox_mode(sandbox)  # decide (and warn) once, before the threads start
    remove_abandoned()  # what a grader killed mid-run could not clean up
    exercises = EXERCISES if exercises is None else exercises
    todo = find_submissions(submissions)
    if shard is not None:
        todo = [s for s in todo if in_shard(s, shard)]
    done = gradebook.read_rows(out)
    if not force:  # skip what is graded, unless the file changed or the grader failed
        todo = [
            s
            for s in todo
            if (s.student, s.exercise) not in done
            or done[(s.student, s.exercise)].get("sha256") != _sha256(s.path)
            or done[(s.student, s.exercise)].get("status") in NOT_FINAL
        ]
    gradebook.append_rows(out, [])  # the file exists (with its header) even with no work
    results: list[GradeResult] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="grading", unit="notebook", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        pending = {
            pool.submit(
                _grade_safely,
                s,
                exercise=exercises.get(s.exercise),
                limits=limits,
                sandbox=mode,
            ): s
            for s in todo
        }
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    submission = pending.pop(future)
                    result = future.result()
                    result.student = submission.student
                    gradebook.append_result(out, result)
                    if result.status not in NOT_FINAL:
                        _write_feedback(feedback_dir, result)
                    else:
                        print(
                            f"grader error, {submission.path} will be graded again: "
                            + "; ".join(result.notes)[:500],
                            file=sys.stderr,
                        )
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"{submission.student}/{submission.exercise}")
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
    return results
