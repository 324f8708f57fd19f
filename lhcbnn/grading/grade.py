"""Grade one handed-in notebook: read it, run it in the sandbox, check the values, explain.

Status of a graded submission (column ``status`` of the gradebook):

=================  ==============================================================  ======
status             meaning                                                         points
=================  ==============================================================  ======
ok                 every cell ran; each task scored on its own                     earned
cell_error         some cell raised; the tasks were still called and scored        earned
cell_timeout       a cell or call ran too long and was interrupted; rest scored    earned
memory_limit       a cell or call ran out of memory (MemoryError); rest scored     earned
output_limit       output hit the size limit; was cut (graded) or killed (0)       earned/0
timeout            the whole run exceeded the time limit and was killed            0
exited             the process ended before the grader's report (os._exit, ...)    0
crashed            the process died from a signal (segfault, kill, ...)            0
invalid_report     the report was missing pieces or forged                         0
invalid_notebook   the file is not a readable notebook                             0
unknown_exercise   the file name matches no exercise                               0
grader_error       the grader failed (sandbox did not start, job folder vanished,  none
                   disk full): not a grade; a re-run grades the file again
=================  ==============================================================  ======

A reference shortcut costs its task: a task whose cases called a function the task forbids
(:attr:`~lhcbnn.grading.tasks.base.Task.forbidden`; seen by the tripwires inside the sandbox
however the call was reached, or written in the function's definition) scores 0, and the
feedback names the function and the line that called it.
"""

from __future__ import annotations

import hashlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from lhcbnn.grading import sandbox as sandbox_module
from lhcbnn.grading.exchange import InvalidReport, read_report, write_job
from lhcbnn.grading.notebook import InvalidNotebook, code_cells, forbidden_uses, read_notebook
from lhcbnn.grading.sandbox import Limits
from lhcbnn.grading.tasks import EXERCISES
from lhcbnn.grading.tasks.base import Exercise, TaskResult, check_task

__all__ = ["GradeResult", "grade_notebook", "STATUSES", "NOT_FINAL"]

STATUSES = (
    "ok",
    "cell_error",
    "cell_timeout",
    "memory_limit",
    "output_limit",
    "timeout",
    "exited",
    "crashed",
    "invalid_report",
    "invalid_notebook",
    "unknown_exercise",
    "grader_error",
)
#: statuses that are not a grade: the submission is graded again by the next run
NOT_FINAL = ("grader_error", "sandbox_error")
_MEMORY_ERRORS = ("MemoryError", "OutOfMemoryError")


@dataclass
class GradeResult:
    """The grade of one notebook."""

    student: str
    exercise: str
    score: int
    max_score: int
    status: str
    tasks: list[TaskResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sha256: str = ""
    sandbox: str = ""

    def task_points(self) -> dict[str, int]:
        return {t.function: t.points for t in self.tasks}

    def feedback(self) -> str:
        """Markdown feedback for the student: tasks passed, why others failed, notes.

        Never contains the hidden checks, only what was probed and what went wrong.
        """
        lines = [
            f"# Feedback: {self.exercise}" + (f" ({self.student})" if self.student else ""),
            "",
            f"Score: **{self.score} / {self.max_score}**. Status: `{self.status}`"
            f" ({_STATUS_TEXT.get(self.status, '')}).",
            "",
        ]
        if self.tasks:
            lines += ["## Tasks", ""]
            for task in self.tasks:
                mark = "x" if task.passed else " "
                lines.append(
                    f"- [{mark}] `{task.function}` ({task.points}/{task.max_points}): "
                    f"{task.message}"
                )
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {note}" for note in self.notes] + [""]
        return "\n".join(lines)


_STATUS_TEXT = {
    "ok": "every cell ran",
    "cell_error": "some cells raised errors; the tasks were graded anyway",
    "cell_timeout": "a cell or a call ran too long and was interrupted",
    "memory_limit": "a cell or a call ran out of memory",
    "timeout": "the notebook ran longer than the time limit and was stopped; no points",
    "output_limit": "the notebook wrote too much output",
    "exited": "the notebook ended the Python process before grading finished; no points",
    "crashed": "the Python process crashed; no points",
    "invalid_report": "the grading report was missing or tampered with; no points",
    "invalid_notebook": "the file could not be read as a notebook; no points",
    "unknown_exercise": "the file name matches no exercise; no points",
    "grader_error": "the grader failed (not your notebook's fault); it will be graded again",
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def exercise_for(path: Path) -> Exercise | None:
    """The exercise whose file name the submission has, if any."""
    return EXERCISES.get(Path(path).stem)


def _zero(exercise: Exercise, message: str) -> list[TaskResult]:
    return [TaskResult(t.function, 0, t.points, False, message) for t in exercise.tasks]


def grade_notebook(
    path: str | Path,
    *,
    student: str = "",
    exercise: Exercise | None = None,
    limits: Limits | None = None,
    sandbox: str = "auto",
    keep_workdir: bool = False,
) -> GradeResult:
    """Grade one notebook in a sandboxed child process.

    Args:
        path: the notebook; its file name (``ex02_elbo.ipynb``) selects the exercise unless
            ``exercise`` is given.
        student: name used in the feedback.
        exercise: grade against this exercise (tests use small made-up ones).
        limits: resource limits of the child (default :class:`Limits`).
        sandbox: ``"auto"``, ``"bwrap"`` or ``"none"`` (see :func:`sandbox.sandbox_mode`).
        keep_workdir: leave the child's folder for debugging (path in ``notes``).

    Returns:
        :class:`GradeResult`; never raises for anything the notebook does.
    """
    started = time.monotonic()
    path = Path(path)
    limits = limits or Limits()
    exercise = exercise or exercise_for(path)
    digest = _sha256(path)
    if exercise is None:
        known = ", ".join(sorted(e.file_name for e in EXERCISES.values()))
        return GradeResult(
            student,
            path.stem,
            0,
            0,
            "unknown_exercise",
            notes=[f"`{path.name}` is not an exercise file name; expected one of: {known}"],
            seconds=time.monotonic() - started,
            sha256=digest,
        )
    result = GradeResult(student, exercise.name, 0, exercise.max_score, "ok", sha256=digest)
    try:
        notebook = read_notebook(path)
    except InvalidNotebook as exc:
        result.status = "invalid_notebook"
        result.tasks = _zero(exercise, "not graded: the notebook could not be read")
        result.notes.append(str(exc))
        result.seconds = time.monotonic() - started
        return result
    cells = code_cells(notebook)
    mode = sandbox_module.sandbox_mode(sandbox)
    result.sandbox = mode
    task_cases = [(task.function, list(task.cases()), len(task.outputs)) for task in exercise.tasks]
    forbidden = {task.function: task.forbidden for task in exercise.tasks}
    try:
        jobdir, logdir, uid = sandbox_module.prepare_workdir()
    except OSError as exc:  # disk full, no temporary folder
        return _grader_error(result, exercise, f"cannot create the work folder: {exc}", started)
    try:
        write_job(
            jobdir,
            cells,
            task_cases,
            limits.soft,
            uid,
            limits.nproc_margin,
            forbidden,
            keep_read_access=mode == "none",
        )
        nonce = sandbox_module.new_nonce()
        run = sandbox_module.run_in_sandbox(jobdir, nonce, limits, mode, logdir)
        if run.grader_fault:
            _grader_error(result, exercise, run.grader_fault, started)
        else:
            _judge(result, exercise, cells, task_cases, run, logdir, nonce, limits)
    except OSError as exc:  # the grader's own files: disk full, folder removed
        _grader_error(result, exercise, f"{type(exc).__name__}: {exc}", started)
    finally:
        if keep_workdir:
            result.notes.append(f"work folder kept: {jobdir.parent}")
        else:
            sandbox_module.remove_workdir(jobdir.parent)
    result.seconds = time.monotonic() - started
    return result


def _grader_error(result: GradeResult, exercise: Exercise, reason: str, started: float):  # noqa: ANN202
    """Mark ``result`` as the grader's failure: no points, not final, re-run regrades."""
    result.status = "grader_error"
    result.score = 0
    result.tasks = _zero(exercise, "not graded: the grader failed; it will be graded again")
    result.notes.append("the grader failed, not the notebook: " + reason)
    result.seconds = time.monotonic() - started
    return result


def _judge(result, exercise, cells, task_cases, run, logdir, nonce, limits) -> None:  # noqa: ANN001
    """Fill ``result`` from the run: status, per-task points, notes."""
    code = run.returncode
    if run.mode == "bwrap" and code is not None and code > 128:
        code = 128 - code  # bubblewrap reports a child killed by signal N as exit code 128+N
    if run.timed_out or code == -signal.SIGXCPU:
        where = _last_progress(logdir)
        result.status = "timeout"
        result.tasks = _zero(exercise, "not graded: the notebook ran out of time")
        result.notes.append(
            f"the run was stopped after {limits.timeout:.0f} s"
            + (f" while running {where}" if where else "")
            + "; look for an endless loop or a very long computation"
        )
        return
    if code == -signal.SIGXFSZ:
        result.status = "output_limit"
        result.tasks = _zero(exercise, "not graded: the notebook wrote too much output")
        result.notes.append(
            f"the run wrote more than {limits.output_mb} MiB (to a file or the terminal) and "
            "was stopped; print less"
        )
        return
    if code != 0:
        if code is not None and code < 0:
            result.status = "crashed"
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            result.notes.append(
                f"the Python process died from signal {name}"
                + (" (possibly out of memory)" if -code == signal.SIGKILL else "")
            )
        else:
            result.status = "exited"
            result.notes.append(
                f"the Python process ended with exit code {code} before grading finished "
                "(do not call os._exit or kill the process in a notebook)"
            )
        if "MemoryError" in run.stderr_tail or "std::bad_alloc" in run.stderr_tail:
            result.status = "memory_limit"
            result.notes.append(f"it ran out of memory (limit {limits.memory_mb} MiB)")
        if run.oom_kills:
            result.status = "memory_limit"
            result.notes.append(_cap_note(run, limits))
        result.tasks = _zero(exercise, "not graded: the notebook did not run to the end")
        tail = run.stderr_tail.strip()[-600:]
        if tail:
            result.notes.append("end of the error output:\n\n```\n" + tail + "\n```")
        return
    result_file = logdir / "result.npz"
    if not result_file.exists() or result_file.stat().st_size == 0:
        result.status = "exited"
        result.tasks = _zero(exercise, "not graded: the notebook did not run to the end")
        where = _last_progress(logdir)
        result.notes.append(
            "the Python process ended before grading finished"
            + (f" (while running {where})" if where else "")
            + "; do not call os._exit, sys.exit in a thread, or kill the process in a notebook"
        )
        return
    try:
        report = read_report(result_file, nonce, task_cases, len(cells))
    except InvalidReport as exc:
        result.status = "invalid_report"
        result.tasks = _zero(exercise, "not graded: no valid report")
        result.notes.append(f"the grading report was rejected: {exc}")
        return
    statuses = []
    for cell in report.cells:
        if cell.status != "ok":
            result.notes.append(f"{_describe_cell(cells, cell.index)} raised {cell.error}")
            statuses.append("cell_timeout" if cell.status == "timeout" else "cell_error")
    for task in exercise.tasks:
        cases = next(c for f, c, _ in task_cases if f == task.function)
        outcomes = report.outcomes[task.function]
        if any(o.status == "timeout" for o in outcomes):
            statuses.append("cell_timeout")
        checked = check_task(task, cases, outcomes)
        tripped = report.tripped.get(task.function, [])
        shortcuts = forbidden_uses(cells, task.function, task.forbidden)
        if tripped or shortcuts:
            seen = tripped or shortcuts
            checked = type(checked)(
                task.function,
                0,
                task.points,
                False,
                "scores 0: it calls the reference implementation ("
                + "; ".join(dict.fromkeys(seen))
                + ") instead of computing the result itself"
                + ("" if tripped else " (in its definition)"),
            )
        result.tasks.append(checked)
    if report.errors_of_type(*_MEMORY_ERRORS) or _torch_oom(report):
        statuses.append("memory_limit")
        result.notes.append(f"something ran out of memory (limit {limits.memory_mb} MiB)")
    if run.oom_kills:
        statuses.append("memory_limit")
        result.notes.append(_cap_note(run, limits))
    cap = limits.output_mb * 2**20
    if (
        run.stdout_bytes >= cap
        or run.stderr_bytes >= cap
        or any("File too large" in text for text in _error_texts(report))
    ):
        statuses.append("output_limit")
        result.notes.append(
            f"the notebook tried to write more than {limits.output_mb} MiB to a file or the "
            "terminal; writes beyond that failed"
        )
    if report.stdout_truncated:
        statuses.append("output_limit")
        result.notes.append("the printed output was very long and was cut off")
    for status in ("memory_limit", "output_limit", "cell_timeout", "cell_error"):
        if status in statuses:
            result.status = status
            break
    result.score = sum(t.points for t in result.tasks)


def _cap_note(run, limits) -> str:  # noqa: ANN001
    return (
        f"the notebook's processes together used more than {limits.submission_memory_mb} MiB; "
        f"the kernel ended {run.oom_kills} of them"
    )


def _error_texts(report) -> list[str]:  # noqa: ANN001
    return [c.error for c in report.cells] + [
        o.error for outs in report.outcomes.values() for o in outs
    ]


def _torch_oom(report) -> bool:  # noqa: ANN001
    return any("can't allocate memory" in t or "bad_alloc" in t for t in _error_texts(report))


def _describe_cell(cells, index: int) -> str:  # noqa: ANN001
    """'cell 7 (`def kl_gaussian(...`)': position in the notebook and its first line."""
    for cell in cells:
        if cell.index == index:
            first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
            first = first if len(first) <= 60 else first[:57] + "..."
            return f"cell {index + 1} (`{first}`)" if first else f"cell {index + 1}"
    return f"cell {index + 1}"


def _last_progress(logdir: Path) -> str:
    try:
        text = (logdir / "progress.log").read_bytes()[-2000:].decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1].strip()
    if last.startswith("cell "):
        return f"cell {int(last[5:]) + 1} of the notebook" if last[5:].isdigit() else ""
    if last.startswith("task "):
        return f"the task function `{last[5:]}`"
    return ""
