"""Building blocks of the hidden graded checks: tasks, cases, known mistakes.

A task is one function the student writes. The grader chooses the inputs (:class:`Case`),
the runner calls the student's function on them in the sandbox, and :func:`check_task`
compares what came back with :attr:`Task.reference` (float64 numpy, analytic truth) in the
grader's process. A task scores its points only if every case agrees (or, with
``partial=True``, its share of the points for the cases that agree). When a case disagrees
and the value matches one of the task's known :class:`Mistake` s, the feedback names it.

A task graded by its *outcome* (the student trains or measures something, so there is no
single right array) sets :attr:`Task.judge` instead of comparing with the reference: the
judge receives the case's arguments and the returned arrays and says whether the outcome is
within the tolerance measured over many seeds of the reference solution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Tensor",
    "TensorList",
    "Case",
    "Mistake",
    "Task",
    "Exercise",
    "CaseOutcome",
    "TaskResult",
    "check_task",
    "plain",
]


@dataclass(frozen=True)
class Tensor:
    """An argument the student's function receives as a float64 ``torch.Tensor``."""

    array: np.ndarray


@dataclass(frozen=True)
class TensorList:
    """An argument the student's function receives as a list of float64 tensors."""

    arrays: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Case:
    """Arguments of one call, and what the case probes (shown in feedback)."""

    args: tuple[Any, ...]
    label: str


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer: the value it gives, and the hint to show when it is seen."""

    hint: str
    wrong: Callable[..., Any]


@dataclass(frozen=True)
class Task:
    """One graded function.

    Attributes:
        function: the name the student's function must have.
        points: what the task is worth (all cases must pass).
        title: one line shown in feedback.
        cases: builds the grader-chosen inputs (deterministic).
        reference: the correct result for the same arguments (numpy in, numpy out).
        mistakes: known plausible mistakes, for targeted feedback.
        outputs: names of the returned values (more than one: the function returns a tuple).
        rtol, atol: tolerance of the comparison (float64 inputs; float32 work passes too).
        forbidden: attribute names the definition may not use (the reference implementations
            in lhcbnn, which would answer the task without doing it).
        judge: for an outcome-graded task, ``judge(args, values) -> (passed, message)``
            decides a case from the arguments (as :func:`plain` gives them) and the returned
            arrays; ``reference`` is then only used by the self-test and may be ``None``.
        partial: score ``points * passed_cases // n_cases`` instead of all or nothing (for
            tasks whose cases are independent).
    """

    function: str
    points: int
    title: str
    cases: Callable[[], Sequence[Case]]
    reference: Callable[..., Any] | None
    mistakes: Sequence[Mistake] = ()
    outputs: tuple[str, ...] = ("result",)
    rtol: float = 1e-5
    atol: float = 1e-8
    forbidden: tuple[str, ...] = ()
    judge: Callable[[list[Any], tuple[np.ndarray, ...]], tuple[bool, str]] | None = None
    partial: bool = False

    def __post_init__(self) -> None:
        if self.reference is None and self.judge is None:
            raise ValueError(f"task {self.function!r} needs a reference or a judge")


@dataclass(frozen=True)
class Exercise:
    """A notebook ``<name>.ipynb`` with its graded tasks."""

    name: str
    title: str
    tasks: tuple[Task, ...]
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def max_score(self) -> int:
        return sum(task.points for task in self.tasks)

    def task(self, function: str) -> Task:
        for task in self.tasks:
            if task.function == function:
                return task
        raise KeyError(f"{self.name} has no task {function!r}")


@dataclass(frozen=True)
class CaseOutcome:
    """What the runner reported for one call: a status, an error or the returned arrays."""

    status: str  # ok, error, timeout, not_implemented, missing, not_callable, not_run
    values: tuple[np.ndarray, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class TaskResult:
    function: str
    points: int
    max_points: int
    passed: bool
    message: str


def plain(arg: Any) -> Any:
    """An argument as the reference sees it: arrays for tensors, lists for tensor lists."""
    if isinstance(arg, Tensor):
        return arg.array.copy()
    if isinstance(arg, TensorList):
        return [a.copy() for a in arg.arrays]
    if isinstance(arg, np.ndarray):
        return arg.copy()
    return arg


def _as_tuple(value: Any) -> tuple[np.ndarray, ...]:
    items = value if isinstance(value, tuple) else (value,)
    return tuple(np.asarray(v, dtype=np.float64) for v in items)


def _close(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...], rtol: float, atol: float):
    """(agree, problem): shapes are compared up to singleton axes; NaN never agrees."""
    if len(got) != len(want):
        return False, f"returned {len(got)} value(s), expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        which = f"value {k + 1}: " if len(want) > 1 else ""
        if g.shape != w.shape:
            if g.size == w.size and np.squeeze(g).shape == np.squeeze(w).shape:
                g = g.reshape(w.shape)
            else:
                return False, f"{which}shape {g.shape}, expected {w.shape}"
        if not np.all(np.isfinite(g)):
            return False, f"{which}contains NaN or infinity"
        if not np.allclose(g, w, rtol=rtol, atol=atol):
            deviation = np.max(np.abs(g - w) / (atol + rtol * np.abs(w)))
            return False, f"{which}wrong values (off by {deviation:.2g} times the tolerance)"
    return True, ""


def _check_case(task: Task, case: Case, outcome: CaseOutcome, where: str) -> str:
    """An empty string when the case passes, else the feedback line for it."""
    if outcome.status == "missing":
        return f"no function named `{task.function}` was defined"
    if outcome.status == "not_callable":
        return f"`{task.function}` is defined but is not a function"
    if outcome.status == "not_implemented":
        return "not implemented yet (the function still raises NotImplementedError)"
    if outcome.status == "timeout":
        return f"{where}: {outcome.error or 'took too long'}"
    if outcome.status == "not_run":
        return outcome.error or "the notebook did not run to the end"
    if outcome.status != "ok":
        return f"{where}: raised {outcome.error}"
    args = [plain(a) for a in case.args]
    if task.judge is not None:
        if len(outcome.values) != len(task.outputs):
            return f"{where}: returned {len(outcome.values)} value(s), expected {len(task.outputs)}"
        if not all(np.all(np.isfinite(v)) for v in outcome.values):
            return f"{where}: contains NaN or infinity"
        agree, problem = task.judge(args, outcome.values)
    else:
        want = _as_tuple(task.reference(*args))
        agree, problem = _close(outcome.values, want, task.rtol, task.atol)
    if agree:
        return ""
    hint = ""
    for mistake in task.mistakes:
        try:
            wrong = _as_tuple(mistake.wrong(*[plain(a) for a in case.args]))
        except Exception:  # noqa: BLE001 - a mistake model that does not apply here
            continue
        if _close(outcome.values, wrong, task.rtol, task.atol)[0]:
            hint = f" Hint: {mistake.hint}"
            break
    return f"{where}: {problem}.{hint}"


# Statuses that stop the grading of a task at once: nothing further can pass.
_FATAL = ("missing", "not_callable", "not_implemented", "not_run")


def check_task(task: Task, cases: Sequence[Case], outcomes: Sequence[CaseOutcome]) -> TaskResult:
    """Compare the student's results with the reference (or the judge) on every case."""
    if len(outcomes) != len(cases) or not cases:
        return TaskResult(task.function, 0, task.points, False, "the grader got no result")
    problems: list[str] = []
    for number, (case, outcome) in enumerate(zip(cases, outcomes, strict=True), start=1):
        where = f"case {number} of {len(cases)} ({case.label})"
        problem = _check_case(task, case, outcome, where)
        if problem:
            problems.append(problem)
            if not task.partial or outcome.status in _FATAL:
                return TaskResult(task.function, 0, task.points, False, problem)
    if not problems:
        return TaskResult(task.function, task.points, task.points, True, "passed")
    n_passed = len(cases) - len(problems)
    points = task.points * n_passed // len(cases)
    message = f"{n_passed} of {len(cases)} cases passed; " + " ".join(problems)
    return TaskResult(task.function, points, task.points, False, message)
