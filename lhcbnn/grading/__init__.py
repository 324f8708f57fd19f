"""Exercises and autograder: release, sandboxed grading, gradebook.

Command line (:mod:`lhcbnn.grading.cli`)::

    python -m lhcbnn.grading release                 # solutions/ -> exercises/, nbgrader metadata
    python -m lhcbnn.grading student-dist OUT [--zip]  # what students get: nothing secret
    python -m lhcbnn.grading grade SUBMISSIONS --out grades.csv [--jobs N] [--timeout S]
                                   [--shard K/N] [--force]
    python -m lhcbnn.grading merge shard1.csv shard2.csv --out grades.csv
    python -m lhcbnn.grading export grades.csv --format wide|moodle|canvas --out table.csv
    python -m lhcbnn.grading check NOTEBOOK.ipynb    # one notebook, feedback on stdout
    python -m lhcbnn.grading bench                   # timings

and ``pytest tests/grading --submission FILE`` (one test per task, worth its points); the
instructor's guide (sandbox, limits, gradebook, Moodle/Canvas, Slurm) is ``GRADING.md``.

How a notebook is graded: the grader parses the file (JSON only), writes the code cells
(without the cells tagged ``self-check``) and the grader-chosen inputs of every task to a job
folder, and starts a child process in the sandbox (:mod:`~lhcbnn.grading.sandbox`). The
child (:mod:`~lhcbnn.grading.runner`) executes the cells, calls each task function on the
inputs and sends back only numbers (an ``.npz`` bundle read with ``allow_pickle=False``,
tagged with a per-run random token). The grader compares the numbers with the analytic truth
(the hidden checks, ``tests/grading/tasks/exNN_*.py``, found by :mod:`~lhcbnn.grading.tasks`;
not part of the package) in its own process. Student code never runs in the grader.

What is isolated (with bubblewrap, the default; where it cannot run, grading stops with an
error naming the fix instead of going on without it):

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
  (one endless loop costs one task), CPU time, memory and number of processes/threads of the
  whole submission (a cgroup per run, :mod:`~lhcbnn.grading.cgroup`), address space per
  process, file size (which caps captured output), open files, no core dumps;
* reference shortcuts: tripwires on the functions a task forbids, armed while its cases run
  (:mod:`~lhcbnn.grading.sandbox_tripwires`);
* environment: scrubbed (``HOME`` is the private folder, minimal ``PATH``, one thread).

What is not isolated:

* where no cgroup can be created (unprivileged grader, read-only ``/sys/fs/cgroup``), memory
  is limited per process only (the grader warns);
* CPU time is limited, but there is no CPU share: a busy submission slows the others;
* no seccomp filter: the kernel's system-call surface is the usual one;
* the task inputs are readable by the student's code, so a determined student can compute
  answers in other ways, and code set on it can disarm the tripwires from inside its own
  process (they live there);
* with an explicit ``--sandbox none`` the child has the limits, the cgroup, its own working
  folder, a scrubbed environment and (as root) an unprivileged uid that keeps only read
  access, but it can read every file, reach the network, and without a cgroup a child that
  kills the supervisor can escape the process clean-up.
"""

from __future__ import annotations

from lhcbnn.grading.grade import STATUSES, GradeResult, grade_notebook
from lhcbnn.grading.sandbox import Limits, sandbox_mode
from lhcbnn.grading.tasks import EXERCISES

__all__ = ["EXERCISES", "STATUSES", "GradeResult", "Limits", "grade_notebook", "sandbox_mode"]
