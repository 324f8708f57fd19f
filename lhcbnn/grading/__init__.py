"""Exercises and autograder: release, sandboxed grading, gradebook.

Command line (:mod:`lhcbnn.grading.cli`)::

    python -m lhcbnn.grading release                 # solutions/ -> exercises/, nbgrader metadata
    python -m lhcbnn.grading student-dist OUT [--zip]  # what students get: nothing secret
    python -m lhcbnn.grading grade SUBMISSIONS --out grades.csv [--jobs N] [--timeout S]
                                   [--shard K/N] [--force]
    python -m lhcbnn.grading merge shard1.csv shard2.csv --out grades.csv
    python -m lhcbnn.grading check NOTEBOOK.ipynb    # one notebook, feedback on stdout
    python -m lhcbnn.grading bench                   # timings

and ``pytest tests/grading --submission FILE`` (one test per task, worth its points).

How a notebook is graded: the grader parses the file (JSON only), writes the code cells
(without the cells tagged ``self-check``) and the grader-chosen inputs of every task to a job
folder, and starts a child process in the sandbox (:mod:`~lhcbnn.grading.sandbox`). The
child (:mod:`~lhcbnn.grading.runner`) executes the cells, calls each task function on the
inputs and sends back only numbers (an ``.npz`` bundle read with ``allow_pickle=False``,
tagged with a per-run random token). The grader compares the numbers with the analytic truth
(the hidden checks, ``tests/grading/tasks/exNN_*.py``, found by :mod:`~lhcbnn.grading.tasks`;
not part of the package) in its own process. Student code never runs in the grader.

What is isolated (with bubblewrap, the default when ``bwrap`` works):

* files: only system directories, the Python installation, the virtual environment, the
  ``lhcbnn`` package and the job inputs are visible, all read-only; the hidden checks
  (``tests/grading/tasks``) and the rest of the grader (``lhcbnn/grading``), the repository
  (tests, solutions), home directories and the rest of
  ``/tmp`` are not visible; the only writable place is a private 256 MiB memory-backed
  ``/tmp``; results leave through inherited file descriptors only;
* processes: own PID namespace (nothing outside is visible; everything inside dies with the
  run, including daemonised children), own session, ``--die-with-parent``; a supervisor per
  run enforces the wall-time limit and kills leftovers; when the grader runs as root, the
  student's code runs under a random unprivileged uid with no capabilities;
* network: none (own network namespace); IPC and hostname: own namespaces;
* limits: wall time (hard, whole process tree), a soft time budget per cell and per call
  (one endless loop costs one task), CPU time, address space per process, file size (which
  caps captured output), number of processes and threads, open files, no core dumps;
* environment: scrubbed (``HOME`` is the private folder, minimal ``PATH``, one thread).

What is not isolated:

* memory is limited per process, not per sandbox: up to ``nproc_margin`` processes could
  each use the address-space limit (cgroups would be needed for a per-sandbox cap);
* CPU time is limited, but there is no CPU share: a busy submission slows the others;
* no seccomp filter: the kernel's system-call surface is the usual one;
* the task inputs are readable by the student's code, so a determined student can compute
  answers in ways the syntactic check for forbidden reference calls does not see;
* without bubblewrap (``--sandbox none`` or bwrap unavailable, with a warning) the child has
  the limits, its own working folder and a scrubbed environment, but can read and write
  every file the grader's user can, and a child that kills the supervisor can escape the
  process clean-up.
"""

from __future__ import annotations

from lhcbnn.grading.grade import STATUSES, GradeResult, grade_notebook
from lhcbnn.grading.sandbox import Limits, sandbox_mode
from lhcbnn.grading.tasks import EXERCISES

__all__ = ["EXERCISES", "STATUSES", "GradeResult", "Limits", "grade_notebook", "sandbox_mode"]
