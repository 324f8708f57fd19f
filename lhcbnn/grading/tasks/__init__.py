"""The hidden graded checks, one module per exercise, and the registry by file name.

These modules are never visible inside the sandbox (bubblewrap hides ``lhcbnn/grading``):
the student's code only ever sees the inputs of its own calls.
"""

from __future__ import annotations

from lhcbnn.grading.tasks import ex02_elbo, ex03_limits, ex04_heteroskedastic, ex08_flows
from lhcbnn.grading.tasks.base import Exercise

__all__ = ["EXERCISES", "Exercise"]

EXERCISES: dict[str, Exercise] = {
    module.EXERCISE.name: module.EXERCISE
    for module in (ex02_elbo, ex03_limits, ex04_heteroskedastic, ex08_flows)
}
